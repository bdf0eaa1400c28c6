"""The engine on a ManualClock: exact schedules, ordering, lateness, failures. No sleeping."""

import math
import os
import signal
import sys
import threading
import time

import numpy as np
import pytest

from ldns_sim.core import Chunk
from ldns_sim.errors import ConfigError
from ldns_sim.realtime import (
    ConditionReading,
    ConditionSource,
    ConstantSource,
    Engine,
    ManualClock,
    install_signal_handlers,
)
from ldns_sim.sinks.base import MemorySink, Sink
from ldns_sim.testing import TuningCurveGenerator, make_stream_meta

BIN_S = 0.02


def tuning(bins_per_chunk=1, n_neurons=8, seed=0):
    return TuningCurveGenerator(n_neurons, BIN_S, bins_per_chunk, np.random.default_rng(seed))


def zeros():
    return ConstantSource.zeros(("vel_x", "vel_y"))


def bin_ends(sink):
    return np.concatenate([c.bin_end_s for c in sink.chunks])


class SlowGenerator(TuningCurveGenerator):
    """Pretends generation takes ``delays_s[k]`` seconds of (manual) clock time for chunk k."""

    def __init__(self, clock, delays_s, bins_per_chunk=1):
        super().__init__(8, BIN_S, bins_per_chunk, np.random.default_rng(1))
        self.clock, self.delays_s, self.k = clock, list(delays_s), 0

    def next_chunk(self, condition):
        self.clock.advance(self.delays_s[self.k % len(self.delays_s)])
        self.k += 1
        return super().next_chunk(condition)


class CountingReadsSource(ConditionSource):
    """Each read returns a fresh value: (read index, 0); remembers when each read happened."""

    name = "counting"
    channel_names = ("vel_x", "vel_y")

    def __init__(self):
        self.read_times_s = []
        self.events = []

    def read(self, now_s):
        self.read_times_s.append(now_s)
        value = np.array([len(self.read_times_s) - 1, 0], dtype=np.float32)
        return ConditionReading(value, now_s, now_s, True)

    def drain_events(self):
        events, self.events = self.events, []
        return events


class ClosingCountSink(MemorySink):
    def __init__(self, fail_on_chunk=None):
        super().__init__()
        self.n_close = 0
        self.fail_on_chunk = fail_on_chunk

    def write_chunk(self, chunk):
        if chunk.seq == self.fail_on_chunk:
            raise OSError("disk full")
        super().write_chunk(chunk)

    def close(self):
        self.n_close += 1
        super().close()


class StopAfterSink(Sink):
    """Calls ``action`` once it has seen ``n`` chunks (from inside the engine's loop)."""

    def __init__(self, n, action):
        self.n, self.action, self.seen = n, action, 0

    def write_chunk(self, chunk):
        self.seen += 1
        if self.seen == self.n:
            self.action()


@pytest.mark.parametrize(("bins_per_chunk", "n_chunks"), [(1, 50), (3, 16), (5, 10)])
def test_duration_gives_exact_chunk_count(bins_per_chunk, n_chunks):
    sink = MemorySink()
    stats = Engine(tuning(bins_per_chunk), zeros(), [sink], ManualClock(), duration_s=1.0).run()
    assert len(sink.chunks) == n_chunks == stats.n_chunks
    assert stats.n_bins == n_chunks * bins_per_chunk
    assert [t.seq for t in sink.telemetry] == list(range(n_chunks))


def test_max_chunks_wins_over_duration():
    sink = MemorySink()
    Engine(tuning(), zeros(), [sink], ManualClock(), duration_s=10.0, max_chunks=7).run()
    assert len(sink.chunks) == 7


def test_timestamps_at_bin_ends_seq_order_and_markers():
    clock = ManualClock(start_s=100.0, monotonic_offset_s=-40.0)
    sink = MemorySink()
    engine = Engine(tuning(4), zeros(), [sink], clock, max_chunks=25)
    engine.run()
    expected = 100.0 + np.arange(1, 101) * BIN_S
    np.testing.assert_array_equal(bin_ends(sink), expected)
    mono = np.concatenate([c.bin_end_monotonic_s for c in sink.chunks])
    np.testing.assert_allclose(mono, expected - 40.0, rtol=0, atol=1e-9)
    assert [c.seq for c in sink.chunks] == list(range(25))
    assert [c.first_bin for c in sink.chunks] == list(range(0, 100, 4))
    # every chunk handed out exactly at its last bin's end, never before
    assert [t.emitted_at_s for t in sink.telemetry] == [c.bin_end_s[-1] for c in sink.chunks]
    assert sink.markers[0] == ("start", 100.0)
    assert sink.markers[-1] == ("stop", expected[-1])
    assert [m for m, _ in sink.markers] == ["start", "stop"]
    assert engine.state == "stopped" and sink.closed


def test_no_drift_over_100k_bins():
    t0 = 12345.678
    sink = MemorySink()
    gen = TuningCurveGenerator(2, BIN_S, 100, np.random.default_rng(0))
    Engine(gen, zeros(), [sink], ManualClock(start_s=t0), max_chunks=1000).run()
    stamps = bin_ends(sink)
    assert len(stamps) == 100_000
    np.testing.assert_array_equal(stamps, t0 + np.arange(1, 100_001) * BIN_S)
    # what adding the period bin after bin would have produced drifts measurably
    accumulated = t0 + np.cumsum(np.full(100_000, BIN_S))
    assert np.abs(accumulated - stamps).max() > 0


def test_late_chunks_counted_emitted_at_once_and_stamped_on_target():
    clock = ManualClock()
    gen = SlowGenerator(clock, [0, 0.03, 0, 0, 0, 0])
    sink = MemorySink()
    stats = Engine(gen, zeros(), [sink], clock, lookahead_s=0.005, max_chunks=6).run()
    np.testing.assert_array_equal(bin_ends(sink), np.arange(1, 7) * BIN_S)
    late = [t.late for t in sink.telemetry]
    # chunk 1 takes 30 ms from 15 ms before its end; chunk 2 is due before chunk 1 is done
    assert late == [False, True, True, False, False, False]
    assert [t.n_late_total for t in sink.telemetry] == [0, 1, 2, 2, 2, 2]
    assert [t.queue_depth for t in sink.telemetry] == [0, 1, 0, 0, 0, 0]
    emitted = np.array([t.emitted_at_s for t in sink.telemetry])
    np.testing.assert_allclose(emitted - bin_ends(sink), [0, 0.025, 0.005, 0, 0, 0], atol=1e-12)
    assert stats.n_late == 2
    assert stats.jitter_max_s == pytest.approx(0.025)
    assert stats.latency_max_s == pytest.approx(0.03)


def test_adaptive_lookahead_learns_generation_time():
    clock = ManualClock()
    sink = MemorySink()
    stats = Engine(SlowGenerator(clock, [0.01]), zeros(), [sink], clock, max_chunks=20).run()
    # only the first chunk, before any latency was measured, overruns the quarter-bin budget
    assert [t.late for t in sink.telemetry] == [True] + [False] * 19
    assert stats.lookahead_s == pytest.approx(1.5 * 0.01)
    assert stats.latency_p50_s == pytest.approx(0.01)
    assert stats.real_time_factor == pytest.approx(BIN_S / 0.01)


def test_warmup_sets_first_lookahead():
    clock = ManualClock()
    sink = MemorySink()
    engine = Engine(SlowGenerator(clock, [0.01]), zeros(), [sink], clock, max_chunks=5,
                    warmup_chunks=3)
    stats = engine.run()
    assert stats.n_late == 0
    assert [c.seq for c in sink.chunks] == list(range(5))  # warm-up chunks are not emitted
    assert sink.chunks[0].first_bin == 0


def test_condition_is_causal_and_used_once():
    source = CountingReadsSource()
    sink = MemorySink()
    engine = Engine(tuning(4), source, [sink], ManualClock(), lookahead_s=0.005, max_chunks=30)
    engine.run()
    read_times = np.array(source.read_times_s)
    assert len(read_times) == 30 * 4  # one read per bin
    indices = np.concatenate([c.condition[:, 0] for c in sink.chunks]).astype(int)
    # each read drives exactly one bin, in read order: no value ever shows up earlier
    np.testing.assert_array_equal(indices, np.arange(len(read_times)))
    # and each bin's value was read exactly the look-ahead before that bin's end
    np.testing.assert_allclose(read_times[indices], bin_ends(sink) - 0.005, atol=1e-12)
    for chunk in sink.chunks:  # the last row is the read just before generation
        assert read_times[int(chunk.condition[-1, 0])] < chunk.bin_end_s[-1]


def test_immediate_emission_reads_at_bin_end_and_hands_out_when_done():
    clock = ManualClock()
    # chunk 2 takes 30 ms, so chunk 3 starts 10 ms after its end; the deadline is BIN_S / 4
    gen = SlowGenerator(clock, [0.002, 0.001, 0.03, 0.0, 0.004, 0.0])
    source = CountingReadsSource()
    sink = MemorySink()
    stats = Engine(gen, source, [sink], clock, max_chunks=6, emission="immediate").run()
    ends = bin_ends(sink)
    np.testing.assert_allclose(ends, np.arange(1, 7) * BIN_S, atol=1e-12)  # stamps regular
    reads = np.array(source.read_times_s)
    np.testing.assert_allclose(reads, [0.02, 0.04, 0.06, 0.09, 0.10, 0.12], atol=1e-12)
    emitted = np.array([t.emitted_at_s for t in sink.telemetry])
    np.testing.assert_allclose(emitted - ends, [0.002, 0.001, 0.03, 0.01, 0.004, 0.0],
                               atol=1e-12)
    assert [t.late for t in sink.telemetry] == [False, False, True, True, False, False]
    np.testing.assert_array_equal(np.concatenate([c.condition[:, 0] for c in sink.chunks]),
                                  np.arange(6))  # each read drives its own bin
    assert stats.n_late == 2 and stats.lookahead_s == 0.0
    assert stats.jitter_max_s == pytest.approx(0.03)
    # hand-out intervals 19, 49, 0, 14, 16 ms against 20: the largest deviation is 29 ms
    assert stats.interval_jitter_max_s == pytest.approx(0.029)
    assert [t.condition_age_s for t in sink.telemetry] == pytest.approx(emitted - reads)


def test_immediate_emission_reads_every_bin_of_a_chunk_at_its_end():
    clock = ManualClock()
    source = CountingReadsSource()
    sink = MemorySink()
    Engine(SlowGenerator(clock, [0.003], bins_per_chunk=4), source, [sink], clock,
           max_chunks=3, emission="immediate", deadline_s=0.002).run()
    np.testing.assert_allclose(source.read_times_s, bin_ends(sink), atol=1e-12)
    emitted = np.array([t.emitted_at_s for t in sink.telemetry])
    np.testing.assert_allclose(emitted, [c.bin_end_s[-1] + 0.003 for c in sink.chunks],
                               atol=1e-12)
    assert all(t.late for t in sink.telemetry)  # 3 ms after the end, deadline 2 ms


def test_immediate_default_deadline_is_a_quarter_chunk_and_lookahead_stays_zero():
    clock = ManualClock()
    # 4-bin chunks of 80 ms: the deadline is 20 ms; generations of 19 and 21 ms after warm-up
    gen = SlowGenerator(clock, [0.019, 0.021], bins_per_chunk=4)
    sink = MemorySink()
    stats = Engine(gen, zeros(), [sink], clock, max_chunks=4, emission="immediate",
                   warmup_chunks=2).run()
    assert [t.late for t in sink.telemetry] == [False, True, False, True]
    assert stats.lookahead_s == 0.0


def test_immediate_emission_stops_when_a_sink_asks():
    sink = ClosingCountSink()
    stopper = StopAfterSink(5, None)
    engine = Engine(tuning(), zeros(), [sink, stopper], ManualClock(), max_chunks=50,
                    emission="immediate")
    stopper.action = engine.stop  # from inside the loop, right after a hand-out
    engine.run()
    assert len(sink.chunks) == 5 and sink.n_close == 1
    assert [m for m, _ in sink.markers] == ["start", "stop"]


def test_immediate_chunk_generated_while_stop_is_asked_is_still_handed_out():
    class StopsWhileGenerating(TuningCurveGenerator):
        def next_chunk(self, condition):
            self.k = getattr(self, "k", 0) + 1
            if self.k == 3:
                engine.stop()  # the loop's own thread: only asks it to stop
            return super().next_chunk(condition)

    sink = MemorySink()
    gen = StopsWhileGenerating(8, BIN_S, 1, np.random.default_rng(0))
    engine = Engine(gen, zeros(), [sink], ManualClock(), max_chunks=50, emission="immediate")
    engine.run()
    assert [c.seq for c in sink.chunks] == [0, 1, 2]  # the third is out, no fourth


def test_interval_jitter_covers_the_newest_chunks_only():
    clock = ManualClock()
    # hand-out delays 0, 9, 0, 1, 0, 2, 0 ms: intervals off by 9, 9, 1, 1, 2, 2 ms
    gen = SlowGenerator(clock, [0.0, 0.009, 0.0, 0.001, 0.0, 0.002, 0.0])
    engine = Engine(gen, zeros(), [MemorySink()], clock, max_chunks=7, emission="immediate",
                    stats_capacity=4)
    stats = engine.run()
    assert stats.interval_jitter_max_s == pytest.approx(0.002)  # the 9 ms ones left the ring
    one = Engine(tuning(), zeros(), [MemorySink()], ManualClock(), max_chunks=1).run()
    assert math.isnan(one.interval_jitter_p99_s)  # no interval after a single chunk


def test_condition_age_reported():
    sink = MemorySink()
    Engine(tuning(), CountingReadsSource(), [sink], ManualClock(), lookahead_s=0.004,
           max_chunks=5).run()
    assert [t.condition_age_s for t in sink.telemetry] == pytest.approx([0.004] * 5)


def test_source_events_become_markers_in_order():
    source = CountingReadsSource()
    source.events = ["condition_lost:test:x", "condition_restored:test:x"]
    sink = MemorySink()
    Engine(tuning(), source, [sink], ManualClock(), max_chunks=3).run()
    assert [m for m, _ in sink.markers] == ["start", "condition_lost:test:x",
                                            "condition_restored:test:x", "stop"]


def test_raising_sink_is_closed_once_and_dropped_stream_goes_on(caplog):
    bad, good = ClosingCountSink(fail_on_chunk=3), ClosingCountSink()
    engine = Engine(tuning(), zeros(), [bad, good], ManualClock(), max_chunks=10)
    engine.run()
    assert [c.seq for c in good.chunks] == list(range(10))
    assert [c.seq for c in bad.chunks] == [0, 1, 2]
    assert bad.n_close == 1 and good.n_close == 1
    assert bad not in engine.sinks
    assert sum("disk full" in r.exc_text for r in caplog.records if r.exc_text) == 1
    engine.stop()
    assert bad.n_close == 1 and good.n_close == 1


def test_failing_source_holds_last_value_and_stream_goes_on():
    class BreaksAfter(CountingReadsSource):
        def read(self, now_s):
            if len(self.read_times_s) >= 3:
                raise OSError("device unplugged")
            return super().read(now_s)

    sink = MemorySink()
    Engine(tuning(), BreaksAfter(), [sink], ManualClock(), max_chunks=6).run()
    assert len(sink.chunks) == 6
    assert [c.condition[0, 0] for c in sink.chunks] == [0, 1, 2, 2, 2, 2]
    ages = [t.condition_age_s for t in sink.telemetry]
    assert ages[3:] == sorted(ages[3:]) and ages[5] > ages[2]


def test_stop_is_idempotent_and_closes_sinks_once():
    sink = ClosingCountSink()
    stopper = StopAfterSink(5, None)
    engine = Engine(tuning(), zeros(), [sink, stopper], ManualClock())
    stopper.action = engine.stop  # called from inside the loop: must not deadlock
    engine.run()
    engine.stop()
    engine.stop()
    assert len(sink.chunks) == 5
    assert sink.n_close == 1
    assert [m for m, _ in sink.markers] == ["start", "stop"]
    assert engine.state == "stopped"
    with pytest.raises(RuntimeError, match="already run"):
        engine.run()


def test_stop_before_start_closes_sinks():
    sink = ClosingCountSink()
    engine = Engine(tuning(), zeros(), [sink], ManualClock())
    engine.stop()
    engine.stop()
    assert sink.n_close == 1 and sink.markers == []


def test_background_thread_start_stop_and_context_manager():
    sink = ClosingCountSink()
    with Engine(tuning(), zeros(), [sink], ManualClock()) as engine:
        assert engine.state == "on"
        assert "ON" in repr(engine)
        deadline = time.monotonic() + 10
        while len(sink.chunks) < 5:
            assert time.monotonic() < deadline, "engine produced no chunks"
            time.sleep(0.001)
    assert engine.state == "stopped" and sink.n_close == 1
    assert engine.join(timeout_s=0) is True
    n = len(sink.chunks)
    assert [c.seq for c in sink.chunks] == list(range(n))
    assert sink.markers[-1][0] == "stop"
    assert "STOPPED" in repr(engine)


def test_generator_error_stops_stream_and_reraises():
    class Broken(TuningCurveGenerator):
        def next_chunk(self, condition):
            if self._n_chunks == 2:
                raise ValueError("NaN in latents")
            return super().next_chunk(condition)

    sink = ClosingCountSink()
    engine = Engine(Broken(8, BIN_S, 1, np.random.default_rng(0)), zeros(), [sink],
                    ManualClock(), max_chunks=10)
    with pytest.raises(ValueError, match="NaN in latents"):
        engine.run()
    assert len(sink.chunks) == 2 and sink.n_close == 1
    assert [m for m, _ in sink.markers] == ["start", "error:ValueError", "stop"]
    assert engine.state == "failed"


def test_wrong_chunk_shape_is_an_error():
    class Short(TuningCurveGenerator):
        def next_chunk(self, condition):
            chunk = super().next_chunk(condition)
            return Chunk(chunk.seq, chunk.first_bin, chunk.counts[:1], chunk.rates_hz[:1],
                         chunk.latents[:1], chunk.condition[:1])

    engine = Engine(Short(8, BIN_S, 2, np.random.default_rng(0)), zeros(), [], ManualClock(),
                    max_chunks=3)
    with pytest.raises(RuntimeError, match="expected 2 bins of 8 neurons"):
        engine.run()


def test_engine_opens_sinks_with_meta():
    gen = tuning()
    sink = MemorySink()
    Engine(gen, zeros(), [sink], ManualClock(), max_chunks=1, meta=make_stream_meta(gen)).run()
    assert sink.meta.n_neurons == 8 and sink.meta.bin_s == BIN_S


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"lookahead_s": 0.05}, "lookahead_s must be between 0 and one chunk"),
    ({"duration_s": 0.001}, "duration_s must be at least one chunk"),
    ({"max_chunks": 0}, "max_chunks must be >= 1"),
    ({"source_wait_s": -1.0}, "source_wait_s must be 0 or more"),
    ({"emission": "asap"}, "emission must be one of"),
    ({"emission": "immediate", "lookahead_s": 0.005}, "a look-ahead .* does not apply"),
    ({"emission": "immediate", "deadline_s": 0.0}, "deadline_s must be more than 0"),
    ({"deadline_s": 0.005}, "deadline_s applies to immediate emission only"),
    ({"meta": make_stream_meta(n_neurons=3)}, "does not match"),
])
def test_bad_arguments_raise_config_error(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Engine(tuning(), zeros(), [], ManualClock(), **kwargs)


def test_condition_channel_mismatch_names_both_sides():
    with pytest.raises(ConfigError, match=r"1 channels \('speed',\).*expects 2"):
        Engine(tuning(), ConstantSource([0.0], ["speed"]), [], ManualClock())


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                    reason="signal handlers need the main thread")
def test_sigint_stops_cleanly():
    sink = ClosingCountSink()
    sender = StopAfterSink(5, lambda: os.kill(os.getpid(), signal.SIGINT))
    engine = Engine(tuning(), zeros(), [sink, sender], ManualClock(), max_chunks=100_000)
    previous = install_signal_handlers(engine)
    try:
        engine.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    assert 5 <= len(sink.chunks) < 100_000
    assert sink.markers[-1][0] == "stop" and sink.n_close == 1
    assert engine.state == "stopped"


def test_join_reraises_error_of_background_loop():
    class Broken(TuningCurveGenerator):
        def next_chunk(self, condition):
            raise ValueError("out of memory")

    sink = ClosingCountSink()
    engine = Engine(Broken(8, BIN_S, 1, np.random.default_rng(0)), zeros(), [sink],
                    ManualClock()).start()
    with pytest.raises(ValueError, match="out of memory"):
        engine.join(timeout_s=10)
    assert engine.state == "failed" and sink.n_close == 1


class ProbeSink(Sink):
    """Records, from inside the loop, the GC freeze count and the thread's scheduling policy."""

    def __init__(self):
        self.frozen, self.policies = [], []

    def write_chunk(self, chunk):
        import gc

        self.frozen.append(gc.get_freeze_count())
        self.policies.append(os.sched_getscheduler(0) if hasattr(os, "sched_getscheduler")
                             else None)


def test_gc_frozen_while_streaming_and_lifted_after():
    import gc

    before = gc.get_freeze_count()
    sink = ProbeSink()
    Engine(tuning(), zeros(), [sink], ManualClock(), max_chunks=3).run()
    assert all(n > before for n in sink.frozen)  # everything built before is frozen
    assert gc.get_freeze_count() == before
    sink = ProbeSink()
    Engine(tuning(), zeros(), [sink], ManualClock(), max_chunks=3, freeze_gc=False).run()
    assert sink.frozen == [before] * 3


class SwitchProbeSink(Sink):
    """Records, from inside the loop, the process's GIL switch interval."""

    def __init__(self):
        self.intervals = []

    def write_chunk(self, chunk):
        self.intervals.append(sys.getswitchinterval())


def test_gil_switch_interval_shortened_while_streaming_and_restored_after():
    before = sys.getswitchinterval()
    sink = SwitchProbeSink()
    Engine(tuning(), zeros(), [sink], ManualClock(), max_chunks=3, gil_switch_s=2e-4).run()
    assert sink.intervals == [pytest.approx(2e-4)] * 3
    assert sys.getswitchinterval() == before
    sink = SwitchProbeSink()
    Engine(tuning(), zeros(), [sink], ManualClock(), max_chunks=2).run()
    assert sink.intervals == [before] * 2  # None: left alone
    with pytest.raises(ConfigError, match="gil_switch_s"):
        Engine(tuning(), zeros(), [sink], ManualClock(), max_chunks=2, gil_switch_s=0.0)


@pytest.mark.skipif(not hasattr(os, "sched_setscheduler"), reason="Linux scheduling API")
def test_rt_priority_applies_to_the_loop_thread_and_is_restored(caplog):
    policy = os.sched_getscheduler(0)
    sink = ProbeSink()
    with caplog.at_level("INFO", logger="ldns_sim.realtime.engine"):
        engine = Engine(tuning(), zeros(), [sink], ManualClock(), max_chunks=3, rt_priority=5)
        engine.run()
    refused = "refused" in caplog.text
    assert engine.rt_granted is not refused
    assert sink.policies == [policy if refused else os.SCHED_FIFO] * 3
    assert os.sched_getscheduler(0) == policy  # the caller's thread got its policy back


def test_rt_priority_refused_streams_at_normal_priority(monkeypatch, caplog):
    def refuse(*args):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse, raising=False)
    monkeypatch.setattr(os, "sched_getscheduler", lambda pid: 0, raising=False)
    monkeypatch.setattr(os, "sched_getparam", lambda pid: None, raising=False)
    sink = MemorySink()
    stats = Engine(tuning(), zeros(), [sink], ManualClock(), max_chunks=4, rt_priority=10).run()
    assert stats.n_chunks == 4 and "stays at normal priority" in caplog.text


def test_bad_rt_priority_is_a_config_error():
    with pytest.raises(ConfigError, match="rt_priority"):
        Engine(tuning(), zeros(), [], ManualClock(), rt_priority=100)


@pytest.mark.parametrize("granted", [False, True])
def test_lookahead_floor_depends_on_real_time_priority(monkeypatch, granted):
    """50 ms bins: a quarter bin at normal priority, 6 ms with a real-time loop thread."""
    monkeypatch.setattr(os, "sched_setscheduler", lambda *a: None, raising=False)
    monkeypatch.setattr(os, "sched_getscheduler", lambda pid: 0, raising=False)
    monkeypatch.setattr(os, "sched_getparam", lambda pid: None, raising=False)
    clock = ManualClock()
    gen = SlowGenerator(clock, [0.001, 0.002])
    gen.bin_s = 0.05
    stats = Engine(gen, zeros(), [MemorySink()], clock, max_chunks=20,
                   rt_priority=10 if granted else None).run()
    assert stats.lookahead_s == pytest.approx(0.006 if granted else 0.0125)
    assert stats.lead_max_s == pytest.approx(0.002) and stats.n_late == 0
    assert stats.lead_p99_s == pytest.approx(0.002)


def test_a_few_stalls_do_not_raise_the_lookahead():
    clock = ManualClock()
    delays = [0.002] * 250 + [0.03] * 5  # 5 stalls in the newest 256 leads: above the p95
    stats = Engine(SlowGenerator(clock, delays), zeros(), [MemorySink()], clock,
                   max_chunks=len(delays)).run()
    assert stats.lookahead_s == pytest.approx(BIN_S / 4)  # the floor, not a whole chunk
    assert stats.n_late == 5


class AffinityProbeSink(MemorySink):
    """Records, from inside the loop, the CPUs the loop's thread may run on."""

    def __init__(self):
        super().__init__()
        self.cpus = []

    def write_chunk(self, chunk):
        super().write_chunk(chunk)
        self.cpus.append(os.sched_getaffinity(0))


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="Linux affinity API")
def test_cpu_pins_the_loop_thread_and_is_restored():
    before = os.sched_getaffinity(0)
    cpu = max(before)
    sink = AffinityProbeSink()
    engine = Engine(tuning(), zeros(), [sink], ManualClock(), max_chunks=3, cpu=cpu)
    assert engine.run().n_chunks == 3
    assert engine.cpu_pinned and sink.cpus == [{cpu}] * 3
    assert os.sched_getaffinity(0) == before  # the caller's thread got its CPUs back


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="Linux affinity API")
def test_cpu_that_does_not_exist_streams_unpinned(caplog):
    before = os.sched_getaffinity(0)
    sink = AffinityProbeSink()
    engine = Engine(tuning(), zeros(), [sink], ManualClock(), max_chunks=3, cpu=4096)
    assert engine.run().n_chunks == 3
    assert not engine.cpu_pinned and sink.cpus == [before] * 3
    assert "not pinned" in caplog.text and "4096" in caplog.text


def test_negative_cpu_is_a_config_error():
    with pytest.raises(ConfigError, match="cpu"):
        Engine(tuning(), zeros(), [], ManualClock(), cpu=-1)
