"""Single metrics against hand-computed values and independent implementations."""

import numpy as np
import pytest
from scipy.stats import gaussian_kde

from ldns_sim.errors import DataError
from ldns_sim.evaluation.isi import counts_to_spike_times, isi_stats
from ldns_sim.evaluation.ldns_errors import correlation_pearson_r, correlation_rmse, pearson_r, rmse
from ldns_sim.evaluation.psth import NO_CONDITION, condition_ids, psth, psth_r2
from ldns_sim.evaluation.spike_stats import (
    fano_factor,
    firing_rate_hz,
    jensen_shannon,
    k_probabilities,
    kde_on_integers,
    kl_divergence,
    population_count_density,
    spike_count_correlation,
    total_variation,
)
from ldns_sim.evaluation.temporal import autocorrelation, cross_correlation


def test_rate_and_fano_by_hand():
    counts = [np.array([[1, 0], [2, 1]]), np.array([[0, 0], [1, 1]])]
    np.testing.assert_allclose(firing_rate_hz(counts, 0.01), [100.0, 50.0])
    # neuron 0 bins 1, 2, 0, 1: mean 1, var 0.5; neuron 1 bins 0, 1, 0, 1: mean .5, var .25
    np.testing.assert_allclose(fano_factor(counts), [0.5, 0.5])
    # weights count a trial twice, exactly like listing it twice
    np.testing.assert_allclose(firing_rate_hz(counts, 0.01, np.array([2.0, 1.0])),
                               firing_rate_hz([counts[0], counts[0], counts[1]], 0.01))


def test_correlation_matches_corrcoef_and_rebinning():
    rng = np.random.default_rng(1)
    counts = [rng.poisson(1.0, size=(30, 5)) for _ in range(4)]
    stacked = np.concatenate(counts)
    np.testing.assert_allclose(spike_count_correlation(counts), np.corrcoef(stacked.T),
                               atol=1e-12)
    summed = np.concatenate([c.reshape(10, 3, 5).sum(axis=1) for c in counts])
    np.testing.assert_allclose(spike_count_correlation(counts, 3), np.corrcoef(summed.T),
                               atol=1e-12)
    silent = [np.column_stack([c, np.zeros(len(c))]) for c in counts]
    corr = spike_count_correlation(silent)
    assert np.isnan(corr[5]).all() and np.isnan(corr[:, 5]).all()


def test_kde_on_integers_equals_scipy():
    values = np.array([0, 1, 1, 2, 2, 2, 3, 5, 8])
    expected = gaussian_kde(values)(np.arange(11))
    got = kde_on_integers(np.bincount(values), 10)
    np.testing.assert_allclose(got, expected / expected.sum(), rtol=1e-10)
    counts = [values[:, None]]
    np.testing.assert_allclose(population_count_density(counts, 10), got)


def test_kl_zero_for_same_and_positive_otherwise():
    p = np.array([0.2, 0.5, 0.3])
    q = np.array([0.3, 0.4, 0.3])
    assert kl_divergence(p, p) == 0.0
    assert kl_divergence(p, q) == pytest.approx(0.2 * np.log(2 / 3) + 0.5 * np.log(5 / 4))
    assert kl_divergence(p, q) > 0
    assert kl_divergence(np.array([0.0, 1.0]), np.array([0.5, 0.5])) == pytest.approx(np.log(2))
    assert jensen_shannon(p, p) == 0.0 and total_variation(p, p) == 0.0
    assert jensen_shannon([1, 0], [0, 1]) == pytest.approx(1.0)
    assert total_variation([1, 0], [0, 1]) == pytest.approx(1.0)


def test_k_probabilities_by_hand():
    counts = [np.array([[0, 0, 0], [2, 0, 1], [1, 1, 1], [0, 3, 0]])]
    np.testing.assert_allclose(k_probabilities(counts), [0.25, 0.25, 0.25, 0.25])


def test_isi_convention_on_hand_made_train():
    bin_s = 0.03
    # bin 0 holds 2 spikes at 0.01 and 0.02; bin 2 holds 1 at 0.06 + 0.015
    np.testing.assert_allclose(counts_to_spike_times(np.array([2, 0, 1]), bin_s),
                               [0.01, 0.02, 0.075])
    trial_a = np.array([[2, 0], [0, 1], [1, 0]])
    trial_b = np.array([[0, 1], [1, 0], [1, 0]])
    mean, sd = isi_stats([trial_a, trial_b], bin_s)
    isis_0 = [0.01, 0.055, 0.03]  # within trial a, then within trial b; never across trials
    assert mean[0] == pytest.approx(np.mean(isis_0))
    assert sd[0] == pytest.approx(np.std(isis_0))
    assert np.isnan(mean[1]) and np.isnan(sd[1])  # one spike per trial: no ISI


def test_autocorrelation_by_direct_sum():
    rng = np.random.default_rng(2)
    counts = [rng.poisson(2.0, size=(25, 3)) for _ in range(3)]
    acf = autocorrelation(counts, 4)
    x = [c - c.mean(axis=0) for c in counts]
    lag2 = sum((a[:-2] * a[2:]).sum(axis=0) for a in x) / sum((a * a).sum(axis=0) for a in x)
    np.testing.assert_allclose(acf[2], lag2)
    np.testing.assert_allclose(acf[0], 1.0)
    cross = cross_correlation(counts, 4)
    np.testing.assert_allclose(np.diagonal(cross[4 + 2]), lag2)
    np.testing.assert_allclose(cross[4 + 3], np.swapaxes(cross[4 - 3], 0, 1))


def test_psth_and_psth_r2():
    counts = [np.array([[1], [3]]), np.array([[3], [1]]), np.array([[2], [2]]),
              np.array([[9], [9]])]
    ids, angles = condition_ids(np.array([0.0, 0.0, np.pi, np.nan]), 4)
    assert ids.tolist() == [0, 0, 1, NO_CONDITION] and len(angles) == 2
    rates = psth(counts, 0.5, ids, 2)
    np.testing.assert_allclose(rates[:, :, 0], [[4.0, 4.0], [4.0, 4.0]])
    true = np.array([[[1.0], [2.0]], [[3.0], [4.0]]])
    assert psth_r2(true, true) == 1.0
    assert psth_r2(true, np.full_like(true, 2.5)) == pytest.approx(0.0)
    with pytest.raises(DataError, match="shortest trial"):
        psth(counts, 0.5, ids, 2, n_bins=3)


def test_ldns_correlation_rmse_and_r_conventions():
    a = np.array([[1.0, 0.3], [0.3, 1.0]])
    b = np.array([[1.0, 0.1], [0.1, 1.0]])
    # only entry [1, 0] survives tril(k=-1); the mean runs over all 4 entries
    assert correlation_rmse(a, b) == pytest.approx(np.sqrt(0.2 ** 2 / 4))
    assert correlation_rmse(a, a) == 0.0
    assert correlation_pearson_r(a, a) == pytest.approx(1.0)
    assert rmse([1.0, np.nan, 3.0], [2.0, 5.0, 3.0]) == pytest.approx(np.sqrt(0.5))
    assert pearson_r([1, 2, 3], [2, 4, 6.5]) > 0.99
    assert np.isnan(pearson_r([1, 1, 1], [1, 2, 3]))
