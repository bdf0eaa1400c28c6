"""Baselines: same conditions as the imitated set, and each keeps what it claims to keep."""

from dataclasses import replace

import numpy as np
import pytest

from ldns_sim.evaluation.baselines import (
    dichotomized_gaussian,
    homogeneous_poisson,
    psth_poisson,
    trial_shuffled,
)
from ldns_sim.evaluation.dichotomized import fit_discretised_gaussian
from ldns_sim.evaluation.ldns_errors import unique_pairs
from ldns_sim.evaluation.spike_stats import spike_count_correlation


def _same_conditions(made, like):
    assert [len(c) for c in made.counts] == [len(c) for c in like.counts]
    np.testing.assert_array_equal(made.direction_rad, like.direction_rad)
    assert made.behaviour is like.behaviour
    assert made.source.startswith("baseline:")


def test_dichotomized_gaussian_reproduces_means_and_correlations():
    rng = np.random.default_rng(0)
    n_bins, n_neurons = 20_000, 6
    shared = rng.normal(size=(n_bins, 2))
    loading = rng.normal(size=(2, n_neurons)) * 0.4
    rate = np.exp(np.log(np.linspace(0.1, 1.5, n_neurons)) + shared @ loading
                  - 0.5 * (loading ** 2).sum(axis=0))
    target = rng.poisson(rate)
    model = fit_discretised_gaussian([target])
    sample = model.sample(100_000, rng)
    np.testing.assert_allclose(sample.mean(axis=0), target.mean(axis=0), rtol=0.03, atol=0.005)
    want = unique_pairs(spike_count_correlation([target]))
    got = unique_pairs(spike_count_correlation([sample]))
    assert np.abs(want).max() > 0.1  # the test needs real correlations to match
    np.testing.assert_allclose(got, want, atol=0.015)


def test_dichotomized_gaussian_baseline_keeps_conditions(reach_data):
    made = dichotomized_gaussian(reach_data, reach_data, np.random.default_rng(1))
    _same_conditions(made, reach_data)
    assert made.mean_rate_hz().mean() == pytest.approx(reach_data.mean_rate_hz().mean(),
                                                       rel=0.08)


def test_psth_poisson_uses_condition_psth_and_falls_back(reach_data):
    made = psth_poisson(reach_data, reach_data, np.random.default_rng(2), smooth_s=0.0)
    _same_conditions(made, reach_data)
    first = np.flatnonzero(reach_data.direction_rad == reach_data.direction_rad[0])
    expected = np.mean([reach_data.counts[i] for i in first], axis=0)
    np.testing.assert_allclose(made.true_rates[0], expected, rtol=1e-6)
    unlabelled = replace(reach_data, direction_rad=np.full(reach_data.n_trials, np.nan))
    fallback = psth_poisson(reach_data, unlabelled, np.random.default_rng(2), smooth_s=0.0)
    overall = np.mean(reach_data.counts, axis=0)
    np.testing.assert_allclose(fallback.true_rates[0], overall, rtol=1e-6)


def test_homogeneous_poisson_rates(reach_data):
    made = homogeneous_poisson(reach_data, reach_data, np.random.default_rng(3))
    _same_conditions(made, reach_data)
    np.testing.assert_allclose(made.true_rates[5][17] / reach_data.bin_s,
                               reach_data.mean_rate_hz(), rtol=1e-5)


def test_trial_shuffle_permutes_within_condition(reach_data):
    made = trial_shuffled(reach_data, np.random.default_rng(4))
    _same_conditions(made, reach_data)
    for trial, counts in enumerate(made.counts):
        same_dir = np.flatnonzero(reach_data.direction_rad == reach_data.direction_rad[trial])
        for neuron in range(reach_data.n_neurons):
            assert any(np.array_equal(counts[:, neuron], reach_data.counts[d][:, neuron])
                       for d in same_dir)
    assert not all(np.array_equal(a, b) for a, b in zip(made.counts, reach_data.counts))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_gpfa_baseline_runs_and_keeps_rates(reach_data):
    pytest.importorskip("elephant")
    pytest.importorskip("sklearn")
    from ldns_sim.evaluation.gpfa_baseline import gpfa

    small = reach_data.take(np.arange(16))
    made = gpfa(small, small, np.random.default_rng(5), n_latents=2, em_max_iters=5)
    _same_conditions(made, small)
    assert abs(made.mean_rate_hz().mean() / small.mean_rate_hz().mean() - 1) < 0.3
