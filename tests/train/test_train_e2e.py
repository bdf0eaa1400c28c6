"""End to end on synthetic data with ground truth: train every stage, then sample.

Every check can fail: losses must fall, the autoencoder must recover the true rates, samples
must reproduce firing rates, and a decoder fitted on real trials must read the conditioning
velocity out of the sampled spikes.
"""

import numpy as np
import pytest
import torch

from ldns_sim.bundle import load_bundle
from ldns_sim.data.tuning import make_tuning_data
from ldns_sim.evaluation.decoding import fit_ridge, r2_score
from ldns_sim.simulator import SamplerSettings, sample_trials
from ldns_sim.train.config import preset
from ldns_sim.train.pipeline import _windows, train_model, with_overrides


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    data = make_tuning_data(n_trials=120, n_neurons=24, n_bins=48, seed=0)
    cfg = with_overrides(
        preset("tiny"),
        ae={"epochs": 40, "window_bins": 24, "stride_bins": 4, "batch_size": 32, "lr": 5e-3,
            "smooth_beta": 0.05},
        diffusion={"epochs": 30, "window_bins": 24, "stride_bins": 4, "batch_size": 32,
                   "lr": 3e-3},
    )
    out = tmp_path_factory.mktemp("bundle")
    train_model(data, out, cfg, name="tuning-e2e", show_progress=False)
    return data, load_bundle(out)


def test_losses_fall(trained):
    _, bundle = trained
    m = bundle.meta.metrics
    assert m["ae_val_poisson_nll"] < 0.9 * m["ae_first_epoch_val_poisson_nll"]
    assert m["causal_denoiser_val_loss"] < 0.5 * m["causal_denoiser_first_epoch_loss"]
    assert m["history_nll_end"] <= m["history_nll_start"]


def test_autoencoder_recovers_true_rates(trained):
    data, bundle = trained
    test = data.select("test")
    counts, _, _ = _windows(test, 48, 48)  # (W, N, L)
    with torch.no_grad():
        rates, _ = bundle.ae(counts)
    true = torch.as_tensor(np.stack(test.true_rates)).transpose(1, 2)
    r2 = 1 - ((rates - true) ** 2).sum() / ((true - true.mean()) ** 2).sum()
    assert r2.item() > 0.4


def test_samples_match_rates_and_carry_the_velocity(trained):
    data, bundle = trained
    train, test = data.select("train"), data.select("test")
    behaviour = np.stack(test.behaviour)  # (n_trials, n_bins, 2)
    gen = sample_trials(bundle, len(behaviour), behaviour.shape[1], behaviour=behaviour,
                        settings=SamplerSettings(n_steps=10), seed=1)
    real_rate = np.concatenate(train.counts).mean(axis=0)
    assert np.corrcoef(gen.counts.mean(axis=(0, 1)), real_rate)[0, 1] > 0.6
    decoder = fit_ridge(list(train.counts), list(train.behaviour), alpha=1.0, n_history=2,
                        smooth_bins=1.0)
    r2_real = r2_score(list(test.behaviour), decoder.predict(list(test.counts)))
    r2_sampled = r2_score(list(behaviour), decoder.predict(list(gen.counts)))
    assert r2_real > 0.5
    assert r2_sampled > 0.4 * r2_real  # unconditioned spikes decode to R2 <= 0


def test_stream_sampler_is_seeded(trained):
    data, bundle = trained
    behaviour = np.stack(data.select("test").behaviour)[:3]
    a = sample_trials(bundle, 3, 20, behaviour=behaviour[:, :20], seed=5)
    b = sample_trials(bundle, 3, 20, behaviour=behaviour[:, :20], seed=5)
    c = sample_trials(bundle, 3, 20, behaviour=behaviour[:, :20], seed=6)
    assert np.array_equal(a.counts, b.counts) and np.array_equal(a.latents, b.latents)
    assert not np.array_equal(a.latents, c.latents)
