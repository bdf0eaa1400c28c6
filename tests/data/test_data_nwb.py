"""NWB loader on files written here in the NLB layout (and our own continuous layout)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from pynwb import NWBHDF5IO, NWBFile, TimeSeries
from pynwb.behavior import Position, SpatialSeries

from ldns_sim.data.adapters import DatasetAdapter
from ldns_sim.data.load import load_spike_data
from ldns_sim.data.nwb_loader import load_nwb
from ldns_sim.errors import DataError

BIN_S = 0.01
FS_HZ = 1000.0  # behaviour sampling rate
N_TRIALS = 6
STARTS = 0.5 + 2.0 * np.arange(N_TRIALS)  # trial i: [start, start + 1 s)
ONSETS = STARTS + 0.4
ANGLES_DEG = np.array([0, 45, 90, 135, 180, 270], dtype=float)
SPLIT_LABELS = ["train", "train", "val", "val", "test", "train"]
T_END = 12.5
NAN_TRIAL = 3  # hand_vel is NaN for 20 ms inside this trial's windows
EXPLICIT_SPIKES = [0.9055, 0.9071, 0.9152]  # unit 2, around trial 0's onset (0.9 s)


def _new_file() -> NWBFile:
    return NWBFile(session_description="ldns-sim loader test", identifier="test-file",
                   session_start_time=datetime(2024, 1, 1, tzinfo=timezone.utc))


def _spike_trains() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    trains = [np.sort(rng.uniform(0, T_END, n)) for n in (400, 250)]
    return [*trains, np.array(EXPLICIT_SPIKES)]


def _velocity(times: np.ndarray) -> np.ndarray:
    """(n, 2): linear in time, so linear interpolation is exact: v = (t, -2 t)."""
    return np.stack([times, -2.0 * times], axis=1)


def _position(times: np.ndarray) -> np.ndarray:
    """(n, 2): inside trial i the hand moves along ANGLES_DEG[i] at 1 unit/s."""
    pos = np.zeros((len(times), 2))
    for start, angle in zip(STARTS, np.deg2rad(ANGLES_DEG)):
        inside = (times >= start) & (times < start + 1.0)
        pos[inside] = (times[inside, None] - start) * [np.cos(angle), np.sin(angle)]
    return pos


def _add_units(nwb: NWBFile, trains: list[np.ndarray]) -> None:
    for train in trains:
        nwb.add_unit(spike_times=train)


def write_nlb_file(path: Path, *, units: bool = True, trials: bool = True,
                   durations_s: np.ndarray | None = None, vel_rate_hz: float = FS_HZ) -> Path:
    """An NWB file in the NLB MC_Maze layout, with known spikes, trials and behaviour."""
    nwb = _new_file()
    if units:
        _add_units(nwb, _spike_trains())
    if trials:
        nwb.add_trial_column(name="move_onset_time", description="movement onset (s)")
        nwb.add_trial_column(name="target_angle", description="reach angle (deg)")
        nwb.add_trial_column(name="split", description="NLB split")
        durations = np.ones(N_TRIALS) if durations_s is None else durations_s
        for i in range(N_TRIALS):
            nwb.add_trial(start_time=STARTS[i], stop_time=STARTS[i] + durations[i],
                          move_onset_time=ONSETS[i], target_angle=ANGLES_DEG[i],
                          split=SPLIT_LABELS[i])
    times = np.arange(0, T_END, 1 / vel_rate_hz)
    vel = _velocity(times)
    gap = (times >= ONSETS[NAN_TRIAL]) & (times < ONSETS[NAN_TRIAL] + 0.02)
    vel[gap] = np.nan
    short_gap = (times > ONSETS[1] + 0.0345) & (times < ONSETS[1] + 0.0365)  # 2 samples
    vel[short_gap] = np.nan
    module = nwb.create_processing_module(name="behavior", description="hand kinematics")
    module.add(TimeSeries(name="hand_vel", data=vel, timestamps=times, unit="m/s"))
    module.add(Position(spatial_series=SpatialSeries(
        name="cursor_pos", data=_position(times), timestamps=times, reference_frame="centre",
        unit="m")))
    with NWBHDF5IO(str(path), mode="w") as io:
        io.write(nwb)
    return path


def write_session_file(path: Path, duration_s: float) -> Path:
    """A continuous recording as ldns-sim writes it: Units, and one condition sample per bin
    stamped at the bin's start (regular: rate + starting_time), channel names in comments."""
    nwb = _new_file()
    _add_units(nwb, _spike_trains())
    bin_starts = BIN_S * np.arange(round(duration_s / BIN_S))
    condition = np.stack([np.sin(bin_starts), bin_starts], axis=1)
    module = nwb.create_processing_module(name="behavior", description="condition used")
    module.add(TimeSeries(name="condition", data=condition, rate=1 / BIN_S, starting_time=0.0,
                          unit="a.u.", comments="columns=['cursor_x', 'cursor_t']"))
    with NWBHDF5IO(str(path), mode="w") as io:
        io.write(nwb)
    return path


def adapter(**overrides) -> DatasetAdapter:
    raw = {
        "name": "test_nlb", "format": "nwb", "bin_s": BIN_S,
        "behaviour": {"source": "hand_vel", "names": ["vel_x", "vel_y"], "lag_s": 0.1},
        "alignment": {"mode": "event", "event": "move_onset_time", "start_s": -0.1,
                      "end_s": 0.2},
        "direction": {"source": "column", "column": "target_angle", "units": "deg"},
        "split": {"column": "split"},
    }
    for key, value in overrides.items():
        raw[key] = value if not isinstance(value, dict) else {**raw.get(key, {}), **value}
    return DatasetAdapter.model_validate(raw)


def naive_counts(train: np.ndarray, start: float, n_bins: int) -> np.ndarray:
    """Count by looping over bins: spikes with lo <= t < hi."""
    return np.array([np.sum((train >= start + k * BIN_S) & (train < start + (k + 1) * BIN_S))
                     for k in range(n_bins)])


@pytest.fixture(scope="module")
def nlb_file(tmp_path_factory) -> Path:
    return write_nlb_file(tmp_path_factory.mktemp("nwb") / "nlb.nwb")


def test_event_aligned_counts_behaviour_lag_and_labels(nlb_file):
    data = load_nwb(nlb_file, adapter())
    kept = [i for i in range(N_TRIALS) if i != NAN_TRIAL]  # NaN gap inside trial 3's window
    assert data.n_trials == len(kept)
    assert data.bin_s == BIN_S and data.neuron_ids == ("unit0", "unit1", "unit2")
    trains = _spike_trains()
    for row, i in enumerate(kept):
        start = ONSETS[i] - 0.1
        assert data.counts[row].shape == (30, 3)
        for u, train in enumerate(trains):
            np.testing.assert_array_equal(data.counts[row][:, u], naive_counts(train, start, 30))
        # bin k pairs with behaviour at its centre + 100 ms lag; v(t) = (t, -2t) exactly
        expected_t = start + (np.arange(30) + 0.5) * BIN_S + 0.1
        np.testing.assert_allclose(data.behaviour[row], _velocity(expected_t), atol=1e-5)
    assert data.behaviour_names == ("vel_x", "vel_y")
    np.testing.assert_array_equal(data.align_bin, 10)
    np.testing.assert_allclose(data.direction_rad, np.deg2rad(ANGLES_DEG[kept]))
    assert list(data.split) == [SPLIT_LABELS[i] for i in kept]
    # unit 2's hand-placed spikes: window starts at 0.8 s, so 0.9055 and 0.9071 fall in bin
    # 10 and 0.9152 in bin 11
    assert data.counts[0][10, 2] == 2 and data.counts[0][11, 2] == 1
    assert data.counts[0][:, 2].sum() == 3


def test_whole_trials_short_nan_gap_bridged(nlb_file):
    data = load_nwb(nlb_file, adapter(alignment={"mode": "whole_trial", "start_s": None,
                                                 "end_s": None}))
    kept = [i for i in range(N_TRIALS) if i != NAN_TRIAL]  # a 20 ms gap > 5 samples
    assert data.n_trials == len(kept)
    assert [len(c) for c in data.counts] == [100] * len(kept)
    np.testing.assert_array_equal(data.align_bin, 40)
    # trial 1 has a 3 ms NaN stretch (2 samples): bridged, and v is linear, so still exact
    t = STARTS[1] + (np.arange(100) + 0.5) * BIN_S + 0.1
    np.testing.assert_allclose(data.behaviour[1], _velocity(t), atol=1e-5)
    for row, i in enumerate(kept):
        np.testing.assert_array_equal(data.counts[row][:, 0],
                                      naive_counts(_spike_trains()[0], STARTS[i], 100))


def test_max_gap_decides_which_nan_stretches_are_bridged(nlb_file):
    strict = load_nwb(nlb_file, adapter(behaviour={"max_gap_s": 0.0025}))
    assert strict.n_trials == N_TRIALS - 2  # trial 1's 3 ms gap is now too long as well
    lenient = load_nwb(nlb_file, adapter(behaviour={"max_gap_s": 0.05}))
    assert lenient.n_trials == N_TRIALS
    t = ONSETS[NAN_TRIAL] + (np.arange(30) + 0.5) * BIN_S  # -0.1 window start + 0.1 lag
    np.testing.assert_allclose(lenient.behaviour[NAN_TRIAL], _velocity(t), atol=1e-5)


def test_behaviour_in_position_container_and_displacement_direction(nlb_file):
    spec = adapter(behaviour={"source": "Position/cursor_pos", "names": ["x", "y"],
                              "lag_s": 0.0},
                   direction={"source": "displacement", "series": "cursor_pos",
                              "column": None, "from_s": 0.0, "to_s": 0.2},
                   split={"column": None, "train": 0.5, "val": 0.0, "test": 0.5})
    data = load_nwb(nlb_file, spec)
    assert data.n_trials == N_TRIALS
    expected = np.angle(np.exp(1j * np.deg2rad(ANGLES_DEG)))
    np.testing.assert_allclose(data.direction_rad, expected, atol=1e-6)
    t = ONSETS[2] - 0.1 + (np.arange(30) + 0.5) * BIN_S
    np.testing.assert_allclose(data.behaviour[2], _position(t), atol=1e-5)
    assert sorted(data.split.tolist()).count("train") == 3


def test_split_column_map_holdout_and_drop(nlb_file):
    data = load_nwb(nlb_file, adapter(split={"column_map": {"val": "holdout", "test": "drop"},
                                             "train": 0.0, "val": 0.5, "test": 0.5},
                                      behaviour={"max_gap_s": 0.05}))
    kept = [0, 1, 2, 3, 5]  # trial 4 is NLB 'test': dropped
    assert data.n_trials == len(kept)
    np.testing.assert_allclose(data.direction_rad, np.deg2rad(ANGLES_DEG[kept]))
    assert data.split.tolist()[:2] == ["train", "train"] and data.split[4] == "train"
    assert sorted(data.split[2:4].tolist()) == ["test", "val"]  # NLB 'val' halved


def test_unknown_split_label_is_named(nlb_file):
    with pytest.raises(DataError, match=r"nlb\.nwb: split column 'target_angle' has labels "
                                        r"\['0\.0', .*column_map"):
        load_nwb(nlb_file, adapter(split={"column": "target_angle"}))


def test_continuous_session_segments(tmp_path):
    short = write_session_file(tmp_path / "short_session.nwb", duration_s=3.2)
    # the default adapter for a file without trials is ldns_session: 10 s segments
    with pytest.raises(DataError, match=r"short_session\.nwb: the recording lasts 3\.2 s, "
                                        r"shorter than one segment of 10 s "
                                        r"\(adapter 'ldns_session'\)"):
        load_spike_data(short)
    data = load_spike_data(write_session_file(tmp_path / "session.nwb", duration_s=21.0))
    assert data.bin_s == pytest.approx(BIN_S)  # from the condition's sampling interval
    assert data.n_trials == 2 and [len(c) for c in data.counts] == [1000] * 2
    assert data.behaviour_names == ("cursor_x", "cursor_t")  # from the series' comments
    for j in range(2):  # bin k of segment j is [10 j + k bin, ...): its condition sample is
        starts = 10.0 * j + BIN_S * np.arange(1000)  # the one stamped at that bin start
        np.testing.assert_allclose(data.behaviour[j][:, 1], starts, atol=1e-5)
        np.testing.assert_allclose(data.behaviour[j][:, 0], np.sin(starts), atol=1e-5)
        for u, train in enumerate(_spike_trains()):
            np.testing.assert_array_equal(data.counts[j][:, u], naive_counts(train, 10.0 * j,
                                                                             1000))
    assert data.direction_rad is None and data.align_bin is None


def test_errors_name_file_and_missing_thing(tmp_path, nlb_file):
    no_units = write_nlb_file(tmp_path / "no_units.nwb", units=False)
    with pytest.raises(DataError, match=r"no_units\.nwb: no Units table"):
        load_nwb(no_units, adapter())
    no_trials = write_nlb_file(tmp_path / "no_trials.nwb", trials=False)
    with pytest.raises(DataError, match=r"no_trials\.nwb: no trials table.*test_nlb"):
        load_nwb(no_trials, adapter())
    with pytest.raises(DataError, match=r"nlb\.nwb: no behaviour TimeSeries 'eye_pos'.*"
                                        r"present: .*'cursor_pos'.*'hand_vel'"):
        load_nwb(nlb_file, adapter(behaviour={"source": "eye_pos"}))
    coarse = write_nlb_file(tmp_path / "coarse.nwb", vel_rate_hz=50.0)
    with pytest.raises(DataError, match=r"coarse\.nwb: behaviour 'hand_vel' is sampled every "
                                        r"0\.02 s, coarser than the 0\.01 s bin"):
        load_nwb(coarse, adapter())
    short = write_nlb_file(tmp_path / "short.nwb", durations_s=np.r_[1.0, 0.004, np.ones(4)])
    with pytest.raises(DataError, match=r"short\.nwb: trial 1 lasts 0\.004 s, shorter than "
                                        r"one 0\.01 s bin"):
        load_nwb(short, adapter(alignment={"mode": "whole_trial"}))
    with pytest.raises(DataError, match=r"trials table has no column 'go_cue_time'"):
        load_nwb(nlb_file, adapter(alignment={"event": "go_cue_time"}))
    with pytest.raises(DataError, match=r"not_nwb\.nwb: not a readable NWB"):
        (tmp_path / "not_nwb.nwb").write_text("hello")
        load_nwb(tmp_path / "not_nwb.nwb", adapter())
