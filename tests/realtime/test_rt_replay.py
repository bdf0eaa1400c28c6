"""Replaying a recording: exact counts and behaviour, on the engine clock."""

import numpy as np
import pytest

from ldns_sim.core import SpikeData
from ldns_sim.errors import DataError
from ldns_sim.realtime import ConstantSource, Engine, ManualClock
from ldns_sim.replay import RecordingReplayer, ReplaySource
from ldns_sim.sinks.base import MemorySink
from ldns_sim.testing import TuningCurveGenerator

BIN_S = 0.02


def recording(trial_lengths=(7, 5, 9), n_neurons=3, seed=0, behaviour=True):
    rng = np.random.default_rng(seed)
    counts = tuple(rng.poisson(2.0, (n, n_neurons)).astype(np.int64) for n in trial_lengths)
    # behaviour encodes (trial, bin) so every value is unique and easy to check
    beh = tuple(np.stack([np.full(n, i), np.arange(n)], axis=1).astype(np.float32)
                for i, n in enumerate(trial_lengths)) if behaviour else None
    return SpikeData(counts=counts, bin_s=BIN_S, neuron_ids=tuple(f"n{i}" for i in
                     range(n_neurons)), split=np.array(["train"] * len(trial_lengths)),
                     source="test.npz", behaviour=beh,
                     behaviour_names=("vel_x", "vel_y") if behaviour else ())


@pytest.mark.parametrize("bins_per_chunk", [1, 4])
def test_replayer_emits_the_recording_bin_after_bin_looping(bins_per_chunk):
    data = recording()
    replayer = RecordingReplayer(data, bins_per_chunk=bins_per_chunk, smoothing_s=0)
    assert replayer.condition_names == ("vel_x", "vel_y") and replayer.n_latents == 0
    sink = MemorySink()
    n_chunks = 50 // bins_per_chunk
    Engine(replayer, ConstantSource.zeros(replayer.condition_names), [sink], ManualClock(),
           max_chunks=n_chunks).run()
    counts = np.concatenate([c.counts for c in sink.chunks])
    behaviour = np.concatenate([c.condition for c in sink.chunks])
    idx = np.arange(n_chunks * bins_per_chunk) % 21
    np.testing.assert_array_equal(counts, np.concatenate(data.counts)[idx])
    np.testing.assert_array_equal(behaviour, np.concatenate(data.behaviour)[idx])
    rates = np.concatenate([c.rates_hz for c in sink.chunks])
    np.testing.assert_allclose(rates, counts / BIN_S, rtol=1e-6)
    assert counts.dtype == np.int16
    assert sink.chunks[0].latents.shape == (bins_per_chunk, 0)


def test_replayer_once_ends_stream_after_whole_chunks():
    data = recording()  # 21 bins
    sink = MemorySink()
    replayer = RecordingReplayer(data, bins_per_chunk=4, loop=False)
    engine = Engine(replayer, ConstantSource.zeros(replayer.condition_names), [sink],
                    ManualClock(), max_chunks=100)
    engine.run()
    assert len(sink.chunks) == 5
    assert [m for m, _ in sink.markers] == ["start", "end_of_source", "stop"]
    assert engine.state == "stopped"


def test_replayer_rates_are_smoothed_per_trial_and_finite():
    data = recording(trial_lengths=(30, 30))
    replayer = RecordingReplayer(data, smoothing_s=0.05)
    assert np.all(np.isfinite(replayer.rates_hz))
    # smoothing keeps each trial's mass: mean rate matches the counts' mean rate
    first = replayer.rates_hz[:30].mean(axis=0)
    np.testing.assert_allclose(first, data.counts[0].mean(axis=0) / BIN_S, rtol=0.15)
    assert replayer.rates_hz.std() < (replayer.counts / BIN_S).std()


def test_replayer_without_behaviour_has_no_condition_channels():
    replayer = RecordingReplayer(recording(behaviour=False))
    assert replayer.condition_names == ()
    chunk = replayer.next_chunk(np.zeros((1, 0), np.float32))
    assert chunk.condition.shape == (1, 0)


@pytest.mark.parametrize("bins_per_chunk", [1, 4])
def test_replay_source_drives_each_bin_with_its_own_behaviour(bins_per_chunk):
    data = recording()
    clock = ManualClock(start_s=3.0)
    gen = TuningCurveGenerator(4, BIN_S, bins_per_chunk, np.random.default_rng(0))
    sink = MemorySink()
    n_chunks = 60 // bins_per_chunk
    Engine(gen, ReplaySource(data, clock), [sink], clock, max_chunks=n_chunks).run()
    used = np.concatenate([c.condition for c in sink.chunks])
    expected = np.concatenate(data.behaviour)[np.arange(60) % 21]
    np.testing.assert_array_equal(used, expected)


def test_replay_source_sample_times_and_loop():
    data = recording()
    clock = ManualClock(start_s=10.0)
    source = ReplaySource(data, clock).start()
    reading = source.read(10.0 + 22.5 * BIN_S)  # bin 22 -> recording bin 1, trial 0
    np.testing.assert_array_equal(reading.value, [0, 1])
    assert reading.sample_time_s == pytest.approx(10.0 + 22 * BIN_S)
    assert reading.ok
    np.testing.assert_array_equal(source.read(10.0 + 7 * BIN_S).value, [1, 0])  # trial 1 starts


def test_replay_source_needs_behaviour():
    with pytest.raises(DataError, match="test.npz: no behaviour"):
        ReplaySource(recording(behaviour=False), ManualClock())
