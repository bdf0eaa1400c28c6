"""The rate calibration moves only the observation model's intercept, and moves it so that the
counts the model samples on the train trials' conditions have the train trials' mean counts."""

import numpy as np
import torch

from ldns_sim.data.tuning import make_tuning_data
from ldns_sim.testing import make_random_bundle
from ldns_sim.train.calibrate_rates import calibrate_rates


def test_calibrated_samples_have_the_train_means_and_the_bundle_is_left_alone():
    torch.set_num_threads(1)
    train = make_tuning_data(n_trials=40, n_neurons=12, n_bins=24, bin_s=0.05, seed=2,
                             baseline_hz=8.0, gain_hz=12.0).select("train")
    # random weights: its rates have nothing to do with this data's
    bundle = make_random_bundle(12, seed=3, preset="tiny")
    fitted = {k: v.clone() for k, v in bundle.history.state_dict().items()}

    calibration = calibrate_rates(bundle, train, samples_per_trial=4, seed=0)

    before = np.abs(np.log(calibration.before_hz / calibration.real_hz))
    after = np.abs(np.log(calibration.after_hz / calibration.real_hz))
    assert before.max() > 0.3  # the uncalibrated model is far off for some neuron
    # fresh draws at the calibrated intercept: within sampling noise of the train means
    assert after.max() < 0.1, after
    report = calibration.report()
    assert report["calibration_rate_rmse_hz_after"] < report["calibration_rate_rmse_hz_before"] / 3
    assert torch.equal(calibration.shift, calibration.bias - fitted["bias"])
    assert all(torch.equal(v, fitted[k]) for k, v in bundle.history.state_dict().items())


def test_calibration_is_reproducible_from_its_seed():
    torch.set_num_threads(1)
    train = make_tuning_data(n_trials=20, n_neurons=6, n_bins=16, bin_s=0.05, seed=4
                             ).select("train")
    bundle = make_random_bundle(6, seed=5, preset="tiny")
    a, b, c = (calibrate_rates(bundle, train, samples_per_trial=2, seed=s) for s in (0, 0, 1))
    assert torch.equal(a.bias, b.bias)
    assert not torch.equal(a.bias, c.bias)
