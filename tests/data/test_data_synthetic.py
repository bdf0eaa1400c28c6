"""Synthetic data (Lorenz, cosine tuning), .npz round trip, windows and the load dispatcher."""

from __future__ import annotations

import numpy as np
import pytest

from ldns_sim.core import SpikeData
from ldns_sim.data.load import load_spike_data
from ldns_sim.data.lorenz import BIAS, integrate_lorenz, loading_matrix, make_lorenz, softplus
from ldns_sim.data.npz_io import load_npz, save_npz
from ldns_sim.data.tuning import make_tuning_data
from ldns_sim.data.windows import behaviour_stats, make_windows
from ldns_sim.errors import DataError


@pytest.fixture(scope="module")
def lorenz() -> SpikeData:
    return make_lorenz(60, n_bins=256, n_neurons=128, seed=3)


def test_lorenz_shapes_splits_and_seed(lorenz):
    assert lorenz.n_trials == 60 and lorenz.n_neurons == 128
    assert all(c.shape == (256, 128) and c.dtype == np.int32 for c in lorenz.counts)
    assert all(r.shape == (256, 128) for r in lorenz.true_rates)
    assert [int(np.sum(lorenz.split == s)) for s in ("train", "val", "test")] == [42, 6, 12]
    again = make_lorenz(60, seed=3)
    np.testing.assert_array_equal(again.counts[5], lorenz.counts[5])
    assert not np.array_equal(make_lorenz(60, seed=4).counts[5], lorenz.counts[5])


def test_lorenz_mean_rate_matches_design(lorenz):
    rates = np.stack(lorenz.true_rates)  # (T, L, N)
    # design: softplus(c.z + log 0.3, beta 2) with c unit-norm and z z-scored, so c.z has
    # roughly unit variance: the expected rate is E softplus(N(log 0.3, 1)) per bin
    draws = np.random.default_rng(0).standard_normal(200_000)
    design = softplus(draws + BIAS, beta=2.0).mean()
    assert rates.mean() == pytest.approx(design, rel=0.25)
    counts = np.stack(lorenz.counts)
    assert counts.mean() == pytest.approx(rates.mean(), rel=0.03)


def test_lorenz_true_rates_recovered_from_counts(lorenz):
    counts, rates = np.stack(lorenz.counts), np.stack(lorenz.true_rates)
    per_neuron = np.corrcoef(counts.mean(axis=(0, 1)), rates.mean(axis=(0, 1)))[0, 1]
    assert per_neuron > 0.95
    population = np.corrcoef(counts.sum(axis=2).ravel(), rates.sum(axis=2).ravel())[0, 1]
    assert population > 0.8
    # Poisson: the residual variance equals the mean rate
    assert np.var(counts - rates) == pytest.approx(rates.mean(), rel=0.05)


def test_lorenz_integrator_and_loadings():
    z = integrate_lorenz(np.array([[1.0, 1.0, 1.0]]), 2000)[0]
    assert np.all(np.isfinite(z)) and 0 < z[:, 2].mean() < 40  # stays on the attractor
    c = loading_matrix(128, 3, np.random.default_rng(0))
    np.testing.assert_allclose(np.linalg.norm(c, axis=1), 1.0)
    assert np.all(np.diff(c[:, 0]) >= 0)


def test_tuning_data_is_cosine_tuned():
    data = make_tuning_data(n_trials=64, n_neurons=16, seed=1)
    assert data.behaviour_names == ("vel_x", "vel_y") and data.n_behaviour == 2
    assert len(np.unique(np.round(data.direction_rad, 6))) == 8
    assert set(data.split.tolist()) == {"train", "val", "test"}
    # at peak speed, the rate of a neuron differs between opposite directions
    rates = np.stack(data.true_rates)  # (T, L, N)
    peak = int(np.argmax(np.linalg.norm(data.behaviour[0], axis=1)))
    by_dir = [rates[np.isclose(data.direction_rad, d), peak].mean(axis=0)
              for d in (0.0, np.pi)]
    assert np.max(np.abs(by_dir[0] - by_dir[1])) > 0.2  # counts per 20 ms bin


def test_npz_round_trip(tmp_path):
    data = make_tuning_data(n_trials=10, n_neurons=5, seed=2)
    data = data.take([0, 3, 5])  # every optional field is set
    back = load_npz(save_npz(data, tmp_path / "tuning.npz"))
    assert back.source == str(tmp_path / "tuning.npz")
    assert back.bin_s == data.bin_s and back.neuron_ids == data.neuron_ids
    assert back.behaviour_names == data.behaviour_names
    for a, b in zip(data.counts, back.counts):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(data.behaviour, back.behaviour):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(data.true_rates, back.true_rates):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(back.split, data.split)
    np.testing.assert_array_equal(back.direction_rad, data.direction_rad)
    np.testing.assert_array_equal(back.align_bin, data.align_bin)
    ragged = make_lorenz(3, n_bins=20, n_neurons=4).take([0, 1, 2])
    ragged = SpikeData(counts=(ragged.counts[0][:5], ragged.counts[1], ragged.counts[2][:1]),
                       bin_s=0.005, neuron_ids=ragged.neuron_ids, split=ragged.split,
                       source="ragged")
    back = load_spike_data(save_npz(ragged, tmp_path / "ragged.npz"))  # via the dispatcher
    assert [len(c) for c in back.counts] == [5, 20, 1]
    assert back.behaviour is None and back.true_rates is None and back.direction_rad is None


def test_npz_bad_inputs(tmp_path):
    with pytest.raises(DataError, match=r"missing\.npz: no such file"):
        load_npz(tmp_path / "missing.npz")
    other = tmp_path / "other.npz"
    np.savez(other, x=np.arange(3))
    with pytest.raises(DataError, match=r"other\.npz: not a SpikeData \.npz.*\['x'\]"):
        load_npz(other)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, format=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError, match=r"pickled\.npz: not a readable \.npz"):
        load_npz(pickled)


def test_windows_cut_trials_and_skip_short_ones():
    data = make_tuning_data(n_trials=4, n_neurons=3, n_bins=50, seed=0)
    short = SpikeData(counts=(data.counts[0][:10], data.counts[1]), bin_s=data.bin_s,
                      neuron_ids=data.neuron_ids, split=data.split[:2], source="two",
                      behaviour=(data.behaviour[0][:10], data.behaviour[1]),
                      behaviour_names=data.behaviour_names,
                      direction_rad=data.direction_rad[:2])
    counts, behaviour, direction = make_windows(short, n_bins=20, stride_bins=15)
    assert counts.shape == (3, 20, 3) and counts.dtype == np.float32  # starts 0, 15, 30
    np.testing.assert_array_equal(counts[2], data.counts[1][30:50])
    np.testing.assert_array_equal(behaviour[1], data.behaviour[1][15:35])
    np.testing.assert_array_equal(direction, data.direction_rad[[1, 1, 1]])
    with pytest.raises(DataError, match=r"two: no trial holds a window of 60 bins "
                                        r"\(longest trial: 50 bins"):
        make_windows(short, n_bins=60, stride_bins=1)
    lorenz_counts, none_b, none_d = make_windows(make_lorenz(2, n_bins=30), 30, 30)
    assert lorenz_counts.shape == (2, 30, 128) and none_b is None and none_d is None


def test_behaviour_stats():
    data = make_tuning_data(n_trials=8, n_neurons=3, seed=0)
    mean, std = behaviour_stats(data)
    flat = np.concatenate(data.behaviour)
    np.testing.assert_allclose(mean, flat.mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(std, flat.std(axis=0), rtol=1e-5)
    with pytest.raises(DataError, match="has no behaviour"):
        behaviour_stats(make_lorenz(2, n_bins=10))


def test_dispatcher_errors(tmp_path):
    with pytest.raises(DataError, match=r"nowhere\.nwb: no such file"):
        load_spike_data(tmp_path / "nowhere.nwb")
    odd = tmp_path / "data.csv"
    odd.write_text("1,2\n")
    with pytest.raises(DataError, match=r"data\.csv: unknown file type '\.csv'"):
        load_spike_data(odd)
