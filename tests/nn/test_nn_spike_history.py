"""The observation model's count law: Poisson, and the truncated COM-Poisson with a fitted
dispersion, checked against closed forms and against data with a known dispersion."""

import math

import numpy as np
import pytest
import torch

from ldns_sim.nn.spike_history import SpikeHistoryConfig, SpikeHistoryModel
from ldns_sim.train.config import HistoryTrain
from ldns_sim.train.fit_spike_history import fit_spike_history


def test_unit_dispersion_is_the_truncated_poisson_law():
    model = SpikeHistoryModel(SpikeHistoryConfig(n_neurons=2, max_count=20, dispersion=True))
    mu = torch.tensor([0.3, 4.0])
    log_p = model.count_log_probs(mu, model.dispersion()).detach()  # (N, K)
    for n, m in enumerate(mu.tolist()):
        pmf = np.array([math.exp(-m) * m**k / math.factorial(k) for k in range(21)])
        assert np.allclose(log_p[n].exp().numpy(), pmf / pmf.sum(), atol=1e-6)


def test_dispersion_narrows_or_widens_the_counts_around_the_same_intensity():
    model = SpikeHistoryModel(SpikeHistoryConfig(n_neurons=3, max_count=20, dispersion=True))
    with torch.no_grad():
        model.log_dispersion.copy_(torch.log(torch.tensor([0.5, 1.0, 3.0])))
    mu = torch.full((20000, 3), 2.0)
    counts = model.sample_counts(mu, torch.Generator().manual_seed(0))
    fano = (counts.var(0) / counts.mean(0)).numpy()
    assert fano[0] > 1.5 and 0.93 < fano[1] < 1.07 and fano[2] < 0.5


@pytest.mark.parametrize("law, expect_nu", [("binomial", "above"), ("negbin", "below"),
                                             ("poisson", "one")])
def test_fitted_dispersion_recovers_the_data_law(law, expect_nu):
    rng = np.random.default_rng(3)
    rates = rng.uniform(0.5, 3.0, size=(60, 4, 40))  # (W, N, L) counts per bin
    if law == "binomial":  # Fano 1 - r / 4 < 1
        counts = rng.binomial(4, rates / 4)
    elif law == "negbin":  # Fano 1 + r / 2 > 1
        counts = rng.negative_binomial(2, 2 / (2 + rates))
    else:
        counts = rng.poisson(rates)
    model, report = fit_spike_history(HistoryTrain(n_history=2, iterations=60, dispersion=True),
                                      torch.as_tensor(counts, dtype=torch.float32),
                                      torch.as_tensor(rates, dtype=torch.float32),
                                      show_progress=False)
    nu = model.dispersion().detach().numpy()
    assert report["history_nll_end"] < report["history_nll_start"]
    if expect_nu == "above":
        assert (nu > 1.5).all()
    elif expect_nu == "below":
        assert (nu < 0.8).all()
    else:
        assert np.allclose(nu, 1.0, atol=0.15)
    # counts drawn from the fitted model have the data's variance (per neuron, +-15 %)
    sampled = model.sample(torch.as_tensor(rates, dtype=torch.float32),
                           torch.Generator().manual_seed(1)).numpy()
    ratio = sampled.var(axis=(0, 2)) / counts.var(axis=(0, 2))
    assert np.all(np.abs(ratio - 1) < 0.15), ratio


def test_poisson_model_has_no_dispersion_tensor_so_older_bundles_load_unchanged():
    model = SpikeHistoryModel(SpikeHistoryConfig(n_neurons=3))
    assert set(model.state_dict()) == {"weights", "log_rate_gain", "bias"}
    assert torch.equal(model.dispersion(), torch.ones(3))


def test_seeded_sampling_is_reproducible():
    model = SpikeHistoryModel(SpikeHistoryConfig(n_neurons=5, dispersion=True))
    with torch.no_grad():
        model.log_dispersion.fill_(0.4)
    rates = torch.rand(2, 5, 30, generator=torch.Generator().manual_seed(0)) * 3
    a = model.sample(rates, torch.Generator().manual_seed(7))
    b = model.sample(rates, torch.Generator().manual_seed(7))
    assert torch.equal(a, b) and a.max() <= 20


def test_a_sample_starts_from_a_warm_history_not_a_silent_one():
    # self-excitation: after silence the intensity is below its running level (softplus(0)
    # = 0.69 against a stationary mean of about 1.07 counts per bin)
    model = SpikeHistoryModel(SpikeHistoryConfig(n_neurons=1, n_history=3, max_count=20))
    with torch.no_grad():
        model.weights.fill_(0.2)
    rates = torch.full((4000, 1, 12), 1.0)  # (B, N, L) counts per bin
    counts = model.sample(rates, torch.Generator().manual_seed(0))
    first, settled = counts[..., 0].mean().item(), counts[..., 6:].mean().item()
    cold = model.sample_counts(model.intensity(model.initial_buffer(4000), rates[..., 0]),
                               torch.Generator().manual_seed(0)).mean().item()
    assert cold < 0.8 * settled  # what a zero history would give for the first bin
    assert abs(first - settled) < 0.05 * settled


def test_the_streaming_backends_warm_the_history_with_the_same_draws():
    from ldns_sim.nn.numpy_stream import NumpySpikeHistory

    model = SpikeHistoryModel(SpikeHistoryConfig(n_neurons=5, n_history=4, dispersion=True))
    with torch.no_grad():
        model.weights.fill_(0.2)
        model.log_dispersion.fill_(0.5)
    rates = torch.linspace(0.5, 3.0, 5)[None]  # (1, N)
    buffer = model.warm_buffer(rates, torch.Generator().manual_seed(1))
    ref = NumpySpikeHistory(model)
    generator = torch.Generator().manual_seed(1)
    for _ in range(model.warm_up_bins):
        ref.step(rates[0].numpy(), generator)
    assert model.warm_up_bins == 8
    assert np.array_equal(buffer[0].numpy(), ref.buffer)


@pytest.mark.parametrize("dispersion", [False, True])
def test_inverse_cdf_counts_never_fall_as_the_intensity_rises(dispersion):
    """The rate calibration relies on it: the same uniforms give counts that are a
    non-decreasing function of the intensity (torch.poisson's draws are not)."""
    model = SpikeHistoryModel(SpikeHistoryConfig(n_neurons=50, n_history=2, max_count=20,
                                                 dispersion=dispersion))
    if dispersion:
        with torch.no_grad():
            model.log_dispersion.copy_(torch.linspace(-0.5, 1.5, 50))
    mu = torch.rand(400, 50) * 3
    low = model.inverse_cdf_counts(mu, torch.Generator().manual_seed(0))
    high = model.inverse_cdf_counts(mu * 1.05, torch.Generator().manual_seed(0))
    assert (high >= low).all() and (high > low).any()
    # and the law is right: the mean of the draws is the law's mean
    draws = model.inverse_cdf_counts(torch.full((20000, 50), 2.0),
                                     torch.Generator().manual_seed(1))
    law = torch.softmax(model.count_log_probs(torch.full((1, 50), 2.0), model.dispersion()), -1)
    expected = (law * torch.arange(21.0)).sum(-1)[0]  # (50,)
    assert torch.allclose(draws.mean(0), expected, rtol=0.05)
