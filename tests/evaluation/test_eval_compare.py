"""compare / evaluate_sets: identical sets, shuffles, floor, intervals, reproducibility."""

import json
from dataclasses import replace

import numpy as np
import pytest

from ldns_sim.errors import DataError
from ldns_sim.evaluation import EvalConfig, compare, evaluate_sets
from ldns_sim.evaluation.baselines import homogeneous_poisson, psth_poisson, trial_shuffled
from ldns_sim.evaluation.ldns_errors import unique_pairs
from ldns_sim.evaluation.spike_stats import spike_count_correlation

CONFIG = EvalConfig(coarse_bins=(4,), max_lag_bins=5)


def test_identical_sets_score_as_identical(reach_data):
    result = compare(reach_data, reach_data, np.random.default_rng(0), n_boot=4, config=CONFIG)
    for name, entry in result.items():
        if name == "decode_r2":
            continue  # the decoder's in-sample R²: a property of the data, not an error
        if entry["better"] == "lower":
            assert entry["value"] == pytest.approx(0.0, abs=1e-12), name
        else:
            assert entry["value"] == pytest.approx(1.0), name
    assert result["corr_rmse"]["floor"] > 0  # half against half is not identical


def _residuals(data):
    """Counts minus the mean of their direction at the same bin: the noise around the PSTH."""
    d = data.direction_rad
    means = {a: np.mean([c for c, b in zip(data.counts, d) if b == a], axis=0) for a in set(d)}
    return [c - means[a] for c, a in zip(data.counts, d)]


def test_trial_shuffle_keeps_psth_and_destroys_noise_correlations(reach_data):
    shuffled = trial_shuffled(reach_data, np.random.default_rng(1))
    real_noise = unique_pairs(spike_count_correlation(_residuals(reach_data)))
    shuffled_noise = unique_pairs(spike_count_correlation(_residuals(shuffled)))
    assert real_noise.mean() > 0.05  # the shared gain correlates every pair
    assert abs(shuffled_noise.mean()) < 0.2 * real_noise.mean()
    result = compare(reach_data, shuffled, np.random.default_rng(2), n_boot=0, config=CONFIG)
    assert result["psth_r2"]["value"] == pytest.approx(1.0)  # PSTHs kept exactly
    assert result["rate_rmse"]["value"] == pytest.approx(0.0, abs=1e-9)
    assert result["corr_rmse"]["value"] > result["corr_rmse"]["floor"]


def test_bootstrap_interval_contains_point_estimate(reach_data):
    rng = np.random.default_rng(3)
    candidates = {"psth": psth_poisson(reach_data, reach_data, rng),
                  "flat": homogeneous_poisson(reach_data, reach_data, rng)}
    result = evaluate_sets(reach_data, candidates, np.random.default_rng(4), n_boot=12,
                           config=CONFIG)
    for estimates in [*result.candidates.values(), result.floor]:
        for name, e in estimates.items():
            if np.isfinite(e.value):
                assert e.lo <= e.value <= e.hi, (name, e)
    # the flat Poisson has no PSTH: clearly worse than the floor, and its interval says so
    flat, floor = result.candidates["flat"]["psth_r2"], result.floor["psth_r2"]
    assert flat.hi < floor.lo


def test_result_json_table_and_seeded_reproducibility(reach_data):
    cand = {"flat": homogeneous_poisson(reach_data, reach_data, np.random.default_rng(5))}
    a = evaluate_sets(reach_data, cand, np.random.default_rng(6), n_boot=3, config=CONFIG)
    b = evaluate_sets(reach_data, cand, np.random.default_rng(6), n_boot=3, config=CONFIG)
    assert a.to_json() == b.to_json()
    parsed = json.loads(a.to_json())
    assert set(parsed["candidates"]["flat"]) == {m.name for m in a.metrics}
    assert "corr_rmse_x4" in parsed["floor"]
    table = a.format_table()
    assert "flat" in table and "data floor" in table and "psch_kl" in table
    assert len(table.splitlines()) == len(a.metrics) + 2


def test_mismatched_sets_raise(reach_data):
    fewer = replace(reach_data, counts=tuple(c[:, :5] for c in reach_data.counts),
                    neuron_ids=reach_data.neuron_ids[:5])
    with pytest.raises(DataError, match="5 neurons"):
        evaluate_sets(reach_data, {"bad": fewer}, np.random.default_rng(0), n_boot=0)


def test_unlabelled_variable_length_sets(reach_data):
    cut = tuple(c[: 20 + (i % 3) * 5] for i, c in enumerate(reach_data.counts))
    bare = replace(reach_data, counts=cut, behaviour=None, direction_rad=None)
    flat = homogeneous_poisson(bare, bare, np.random.default_rng(7))
    result = compare(bare, flat, np.random.default_rng(8), n_boot=2, config=CONFIG)
    assert result["decode_r2"]["value"] is None  # no behaviour: not computed
    assert result["psth_r2"]["value"] is not None  # one condition: all trials, 20 bins
    assert result["corr_rmse"]["value"] > 0


def test_decoder_fitted_on_other_trials_is_scored_out_of_sample(reach_data):
    """With ``decoder_data`` the behaviour decoder never sees the compared trials: the real
    set's R² is held out (below the in-sample fit) and reported beside the candidates'."""
    from ldns_sim.evaluation.compare import fit_decoder
    from ldns_sim.evaluation.decoding import r2_score
    from tests.evaluation.conftest import make_reach_data

    train = make_reach_data(seed=11)
    cand = {"psth": psth_poisson(train, reach_data, np.random.default_rng(7))}
    held = evaluate_sets(reach_data, cand, np.random.default_rng(8), n_boot=0, config=CONFIG,
                         decoder_data=train)
    in_sample = evaluate_sets(reach_data, cand, np.random.default_rng(8), n_boot=0,
                              config=CONFIG)
    r2_real = held.settings["decode_r2_real"]
    own = fit_decoder(reach_data, CONFIG)
    assert 0.2 < r2_real < r2_score(reach_data.behaviour, own.predict(reach_data.counts))
    assert in_sample.settings["decode_r2_real"] is None
    assert held.settings["decoder_fitted_on"].startswith("48 other trials")
    assert (held.candidates["psth"]["decode_r2"].value
            != in_sample.candidates["psth"]["decode_r2"].value)
