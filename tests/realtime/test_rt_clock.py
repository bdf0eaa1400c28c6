"""The clocks, the tuning generator, the benchmark plumbing, and one wall-clock stream."""

import numpy as np
import pytest

from ldns_sim.errors import ConfigError
from ldns_sim.realtime import ConstantSource, Engine, LslClock, ManualClock
from ldns_sim.realtime.bench import run_bench, run_scaling
from ldns_sim.sinks.base import MemorySink
from ldns_sim.testing import TuningCurveGenerator


def test_manual_clock_moves_only_forward_when_told():
    clock = ManualClock(start_s=5.0, monotonic_offset_s=2.0)
    clock.sleep_until(4.0)
    assert clock.now() == 5.0
    clock.sleep_until(6.5)
    clock.advance(0.25)
    assert clock.now() == 6.75 and clock.monotonic() == 8.75
    with pytest.raises(ValueError, match="dt_s must be >= 0"):
        clock.advance(-1)


@pytest.mark.realtime
def test_lsl_clock_never_wakes_early():
    clock = LslClock()
    for _ in range(20):
        target = clock.now() + 0.002
        clock.sleep_until(target)
        assert clock.now() >= target
    assert clock.monotonic() > 0


def test_lsl_clock_rejects_negative_spin():
    with pytest.raises(ConfigError, match="spin_s must be >= 0"):
        LslClock(spin_s=-0.001)


def test_tuning_generator_follows_velocity_and_is_reproducible():
    def make():
        return TuningCurveGenerator(50, 0.05, 200, np.random.default_rng(3))

    gen = make()
    right = np.tile([1.0, 0.0], (200, 1)).astype(np.float32)
    chunk = gen.next_chunk(right)
    # mean counts follow the rates: Poisson with mean rate * bin_s
    np.testing.assert_allclose(chunk.counts.mean(axis=0), chunk.rates_hz[0] * 0.05, atol=0.5)
    preferred_right = gen.tuning_hz[0] > 0
    left = gen.next_chunk(-right)
    assert np.all(chunk.rates_hz[0, preferred_right] > left.rates_hz[0, preferred_right])
    assert np.all(chunk.rates_hz >= 0) and chunk.counts.dtype == np.int16
    np.testing.assert_array_equal(make().next_chunk(right).counts, chunk.counts)
    with pytest.raises(ConfigError, match=r"expected \(200, 2\)"):
        gen.next_chunk(right[:10])


def test_bench_plumbing_on_manual_clock():
    def factory():
        return TuningCurveGenerator(16, 0.02, 1, np.random.default_rng(0))

    report = run_bench(factory, 2.0, ManualClock())
    assert report["n_chunks"] == 100 and report["n_late"] == 0
    assert report["n_neurons"] == 16 and report["peak_rss_mb"] > 0
    scaling = run_scaling(factory, 3, 1.0, ManualClock())
    assert scaling["n_streams"] == 3 and scaling["n_neurons"] == 48
    assert scaling["n_chunks"] == 50


@pytest.mark.realtime
def test_lsl_clock_stream_records_jitter():
    gen = TuningCurveGenerator(96, 0.02, 1, np.random.default_rng(0))
    sink = MemorySink()
    clock = LslClock()
    stats = Engine(gen, ConstantSource.zeros(gen.condition_names), [sink], clock,
                   duration_s=1.0).run()
    assert stats.n_chunks == len(sink.chunks) == 50
    stamps = np.concatenate([c.bin_end_s for c in sink.chunks])
    np.testing.assert_allclose(np.diff(stamps), 0.02, atol=1e-9)
    emitted = np.array([t.emitted_at_s for t in sink.telemetry])
    assert np.all(emitted >= stamps)  # never handed out before the bin has ended
    assert np.isfinite(stats.jitter_p99_s) and stats.jitter_p99_s >= 0
    mono = np.concatenate([c.bin_end_monotonic_s for c in sink.chunks])
    np.testing.assert_allclose(np.diff(mono), 0.02, atol=1e-6)
    print(f"LslClock 1 s, 20 ms bins: jitter p99 {stats.jitter_p99_s * 1e3:.3f} ms, "
          f"latency p99 {stats.latency_p99_s * 1e3:.3f} ms, {stats.n_late} late")
