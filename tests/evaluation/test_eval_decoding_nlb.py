"""Ridge decoder and the NLB metrics against known answers."""

import numpy as np
import pytest

from ldns_sim.errors import DataError
from ldns_sim.evaluation.decoding import decoder_features, fit_ridge, r2_score
from ldns_sim.evaluation.nlb import bits_per_spike, velocity_r2


def test_ridge_recovers_a_linear_map():
    rng = np.random.default_rng(3)
    weights = rng.normal(size=(6, 2))
    inputs = [rng.normal(size=(50, 6)) for _ in range(5)]
    behaviour = [x @ weights + np.array([0.5, -1.0]) for x in inputs]
    decoder = fit_ridge(inputs, behaviour, alpha=1e-9)
    np.testing.assert_allclose(decoder.weights, weights, atol=1e-8)
    np.testing.assert_allclose(decoder.bias, [0.5, -1.0], atol=1e-8)
    assert r2_score(behaviour, decoder.predict(inputs)) == pytest.approx(1.0)


def test_ridge_with_history_taps_recovers_lagged_map():
    rng = np.random.default_rng(4)
    inputs = [rng.normal(size=(60, 3)) for _ in range(4)]
    w_now, w_past = rng.normal(size=(3, 1)), rng.normal(size=(3, 1))
    behaviour = [x @ w_now + np.vstack([np.zeros((2, 3)), x[:-2]]) @ w_past for x in inputs]
    decoder = fit_ridge(inputs, behaviour, alpha=1e-9, n_history=2)
    np.testing.assert_allclose(decoder.weights[:3], w_now, atol=1e-8)
    np.testing.assert_allclose(decoder.weights[3:6], 0.0, atol=1e-8)
    np.testing.assert_allclose(decoder.weights[6:], w_past, atol=1e-8)
    assert decoder_features(inputs[0], 2).shape == (60, 9)


def test_ridge_penalty_shrinks_and_bad_input_raises():
    rng = np.random.default_rng(5)
    x = [rng.normal(size=(40, 3))]
    y = [x[0] @ np.ones((3, 1))]
    small = np.abs(fit_ridge(x, y, alpha=1e-6).weights).sum()
    assert np.abs(fit_ridge(x, y, alpha=1e3).weights).sum() < small
    with pytest.raises(DataError, match="same trials and bins"):
        fit_ridge(x, [y[0][:-1]])


def test_r2_matches_sklearn_convention():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(6)
    true = [rng.normal(size=(20, 2)) for _ in range(3)]
    pred = [t + rng.normal(scale=0.5, size=t.shape) for t in true]
    expected = sklearn_metrics.r2_score(np.concatenate(true), np.concatenate(pred))
    assert r2_score(true, pred) == pytest.approx(expected)


def test_bits_per_spike_hand_computed():
    spikes = np.array([[0.0], [2.0]])
    rates = np.array([[0.5], [1.5]])
    # LL(rates) - LL(null = 1.0) = (-0.5 + 2 ln 1.5 - 1.5) - (-1 - 1) = 2 ln 1.5; 2 spikes
    assert bits_per_spike(rates, spikes) == pytest.approx(np.log2(1.5))
    assert bits_per_spike(np.ones_like(spikes), spikes) == pytest.approx(0.0)
    trials = [spikes[:1], spikes[1:]]
    assert bits_per_spike([rates[:1], rates[1:]], trials) == pytest.approx(np.log2(1.5))
    with pytest.raises(DataError, match="differ"):
        bits_per_spike(rates[:1], spikes)


def test_bits_per_spike_rewards_true_rates():
    rng = np.random.default_rng(7)
    rates = np.exp(rng.normal(-1, 1, size=(5000, 4)))
    spikes = rng.poisson(rates).astype(float)
    assert bits_per_spike(rates, spikes) > 0.2
    assert bits_per_spike(rates[::-1], spikes) < 0


def test_velocity_r2_on_linear_rates(reach_data):
    rates = [np.column_stack([b, b @ np.array([[1.0], [-1.0]])]) + 1.0
             for b in reach_data.behaviour]
    score = velocity_r2(rates[:30], reach_data.behaviour[:30], rates[30:],
                        reach_data.behaviour[30:])
    assert score == pytest.approx(1.0, abs=1e-3)
