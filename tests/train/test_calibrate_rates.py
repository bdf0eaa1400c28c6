"""The rate calibration moves only the observation model's intercept, and moves it so that the
counts the model samples on the train trials' conditions have the train trials' mean counts,
checked through the real sampling path (``sample_trials``), not the calibration's own loop."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from ldns_sim.core import SpikeData
from ldns_sim.data.tuning import make_tuning_data
from ldns_sim.nn.spike_history import SpikeHistoryConfig, SpikeHistoryModel
from ldns_sim.simulator import SamplerSettings, sample_trials
from ldns_sim.testing import make_random_bundle
from ldns_sim.train.calibrate_rates import TOLERANCE, calibrate_rates

N_NEURONS = 8


@pytest.fixture(scope="module")
def train() -> SpikeData:
    """Train trials of unequal lengths (12-24 bins of 50 ms), ~1 spike per bin per neuron."""
    data = make_tuning_data(n_trials=40, n_neurons=N_NEURONS, n_bins=24, bin_s=0.05, seed=2,
                            baseline_hz=20.0, gain_hz=15.0).select("train")
    lengths = [12 + (3 * i) % 13 for i in range(data.n_trials)]
    cut = {field: tuple(x[:n] for x, n in zip(getattr(data, field), lengths))
           for field in ("counts", "behaviour", "true_rates")}
    return replace(data, **cut)


def _bundle(seed: int):
    """Random weights (rates unrelated to the data), and an observation model with count
    dispersion and self-excitation, as trained models have."""
    bundle = make_random_bundle(N_NEURONS, seed=seed, preset="tiny")
    history = SpikeHistoryModel(SpikeHistoryConfig(n_neurons=N_NEURONS, n_history=3,
                                                   max_count=20, dispersion=True))
    with torch.no_grad():
        history.weights.copy_(torch.tensor([0.25, 0.1, 0.05]).expand(N_NEURONS, 3))
        history.log_dispersion.copy_(torch.linspace(0.0, 1.0, N_NEURONS))
        history.bias.copy_(torch.linspace(-0.5, 0.5, N_NEURONS))
    return replace(bundle, history=history.eval())


def _sampled_mean_counts(bundle, train: SpikeData, k: int, seed: int) -> np.ndarray:
    """(N,) mean count per bin of ``k`` trials sampled on each train trial's velocity, at its
    own length, by the simulator's sampling path."""
    total, n_bins = np.zeros(N_NEURONS), 0
    for i, behaviour in enumerate(train.behaviour):
        gen = sample_trials(bundle, k, len(behaviour), np.repeat(behaviour[None], k, 0),
                            settings=SamplerSettings(n_steps=4), seed=seed + i)
        total += gen.counts.sum((0, 1))
        n_bins += k * len(behaviour)
    return total / n_bins


def test_calibrated_samples_have_the_train_means_and_the_bundle_is_left_alone(train):
    torch.set_num_threads(1)
    bundle = _bundle(seed=3)
    fitted = {k: v.clone() for k, v in bundle.history.state_dict().items()}
    real = train.mean_rate_hz() * train.bin_s  # (N,) counts per bin

    calibration = calibrate_rates(bundle, train, samples_per_trial=4, seed=0)

    assert all(torch.equal(v, fitted[k]) for k, v in bundle.history.state_dict().items())
    report = calibration.report()
    assert report["calibration_units_unconverged"] == 0
    assert report["calibration_max_log_error"] < TOLERANCE
    before = np.abs(np.log(_sampled_mean_counts(bundle, train, 4, seed=100) / real))
    calibrated = replace(bundle, history=_bundle(seed=3).history)
    with torch.no_grad():
        calibrated.history.bias.copy_(calibration.bias)
    after = np.abs(np.log(_sampled_mean_counts(calibrated, train, 4, seed=100) / real))
    assert before.max() > 0.3, before  # the uncalibrated model is far off for some neuron
    # other draws than the calibration's, each trial at its own length: within sampling noise
    # (~3 % per neuron here) of the train means
    assert after.max() < 0.1, after


def test_calibration_is_reproducible_from_its_seed(train):
    torch.set_num_threads(1)
    bundle = _bundle(seed=5)
    a, b, c = (calibrate_rates(bundle, train, samples_per_trial=2, seed=s) for s in (0, 0, 1))
    assert torch.equal(a.bias, b.bias)
    assert not torch.equal(a.bias, c.bias)


def test_bad_settings_fail_before_any_sampling(train):
    with pytest.raises(ValueError, match="n_iters"):
        calibrate_rates(_bundle(seed=5), train, n_iters=0)
