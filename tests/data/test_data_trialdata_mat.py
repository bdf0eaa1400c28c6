"""TrialData .mat loader on the real M1 centre-out file (286 trials, 84 units, 50 ms bins)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io

import ldns_sim
from ldns_sim.data.adapters import load_adapter
from ldns_sim.data.load import load_spike_data
from ldns_sim.data.trialdata_mat import load_trialdata_mat
from ldns_sim.errors import DataError

MAT = (Path(ldns_sim.__file__).resolve().parents[2] / "shared" / "data"
       / "m1_center_out_trialdata" / "center_out_data.mat")
pytestmark = pytest.mark.skipif(not MAT.is_file(), reason=f"{MAT} not present")


@pytest.fixture(scope="module")
def raw() -> list:
    """The file read independently: per-trial structs."""
    return list(scipy.io.loadmat(str(MAT), squeeze_me=True,
                                 struct_as_record=False)["trial_data"])


def _adapter(**update):
    base = load_adapter("m1_center_out_trialdata")
    sections = {}
    for key, value in update.items():
        current = getattr(base, key)
        sections[key] = current.model_copy(update=value) if isinstance(value, dict) else value
    return base.model_copy(update=sections)


def test_default_adapter_shapes_directions_and_lagged_velocity(raw):
    data = load_spike_data(MAT)  # .mat -> m1_center_out_trialdata
    assert data.n_trials == 286 and data.n_neurons == 84 and data.bin_s == 0.05
    assert data.neuron_ids[0] == "elec1_unit1"
    assert len(np.unique(np.round(data.direction_rad, 6))) == 8
    assert set(data.split.tolist()) == {"train", "val", "test"}
    for i in (0, 1, 100, 285):
        t = raw[i]
        first, lag = t.idx_trial_start - 1, 2  # 100 ms lag = 2 bins of 50 ms
        stop = min(t.idx_trial_end, len(t.M1_spikes) - lag)
        np.testing.assert_array_equal(data.counts[i], t.M1_spikes[first:stop])
        np.testing.assert_allclose(data.behaviour[i], t.vel[first + lag:stop + lag], rtol=1e-6)
        assert data.align_bin[i] == t.idx_movement_on - 1 - first
    assert data.counts[0].dtype == np.int32 and data.behaviour[0].dtype == np.float32


def test_whole_trial_without_lag_is_start_to_end_inclusive(raw):
    data = load_trialdata_mat(MAT, _adapter(behaviour={"lag_s": 0.0}))
    lengths = [t.idx_trial_end - t.idx_trial_start + 1 for t in raw]
    assert [len(c) for c in data.counts] == lengths
    assert data.n_bins_total == sum(lengths)


def test_rebin_sums_counts_and_averages_velocity(raw):
    data = load_trialdata_mat(MAT, _adapter(bin_s=0.1, behaviour={"lag_s": 0.0}))
    assert data.bin_s == pytest.approx(0.1)
    t = raw[3]
    window = t.M1_spikes[t.idx_trial_start - 1:t.idx_trial_end]
    n = len(window) // 2
    np.testing.assert_array_equal(data.counts[3], window[:2 * n:2] + window[1:2 * n:2])
    vel = t.vel[t.idx_trial_start - 1:t.idx_trial_end]
    np.testing.assert_allclose(data.behaviour[3], (vel[:2 * n:2] + vel[1:2 * n:2]) / 2,
                               rtol=1e-5)


def test_window_around_movement_onset(raw):
    spec = _adapter(alignment={"mode": "event", "start_s": -0.25, "end_s": 0.5},
                    behaviour={"lag_s": 0.0})
    data = load_trialdata_mat(MAT, spec)
    assert all(c.shape == (15, 84) for c in data.counts)
    np.testing.assert_array_equal(data.align_bin, 5)
    move = raw[0].idx_movement_on - 1
    np.testing.assert_array_equal(data.counts[0], raw[0].M1_spikes[move - 5:move + 10])


def test_bin_width_not_a_multiple_names_file_and_both_widths():
    with pytest.raises(DataError, match=r"center_out_data\.mat: bin width 0\.075 s is not an "
                                        r"integer multiple of the file's 0\.05 s"):
        load_trialdata_mat(MAT, _adapter(bin_s=0.075))


def test_missing_field_and_lag_not_a_multiple_are_named():
    spec = _adapter(neural={"counts_field": "PMd_spikes"})
    with pytest.raises(DataError, match=r"center_out_data\.mat: trial 0 has no field "
                                        r"'PMd_spikes'.*fields present: .*'M1_spikes'"):
        load_trialdata_mat(MAT, spec)
    with pytest.raises(DataError, match=r"behaviour lag 0\.07 s is not a multiple"):
        load_trialdata_mat(MAT, _adapter(behaviour={"lag_s": 0.07}))


def test_not_a_mat_file(tmp_path):
    bad = tmp_path / "broken.mat"
    bad.write_bytes(b"not a matlab file at all" * 10)
    with pytest.raises(DataError, match=r"broken\.mat: not a readable MATLAB"):
        load_trialdata_mat(bad, _adapter())
