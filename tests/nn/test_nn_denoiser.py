"""The causal denoiser: whole-window, teacher-forced and recurrent evaluations agree."""

import torch

from ldns_sim.nn.autoencoder import AutoEncoder, AutoEncoderConfig
from ldns_sim.nn.denoiser import Denoiser, DenoiserConfig, DenoiserStepper
from ldns_sim.testing import randomise_zero_parameters


def _randomised_denoiser(causal=True, n_behaviour=2, use_direction=False):
    g = torch.Generator().manual_seed(1)
    model = Denoiser(DenoiserConfig(n_latents=5, n_hidden=32, n_blocks=2, n_state=8,
                                    causal=causal, n_behaviour=n_behaviour,
                                    use_direction=use_direction), g)
    return randomise_zero_parameters(model, g)  # adaLN-Zero starts at identity


def test_stepper_matches_teacher_forced_and_window_forward():
    model = _randomised_denoiser()
    g = torch.Generator().manual_seed(2)
    n_batch, n_bins = 2, 10
    clean = torch.randn(n_batch, 5, n_bins, generator=g)
    noisy = torch.randn(n_batch, 5, n_bins, generator=g)
    beh = torch.randn(n_batch, 2, n_bins, generator=g)
    t = torch.randint(0, 1000, (1, n_bins), generator=g).expand(n_batch, n_bins)
    with torch.no_grad():
        forced = model.forward_teacher_forced(clean, noisy, t, beh)
    stepper = DenoiserStepper(model, [int(x) for x in t[0]], n_batch=n_batch)
    for i in range(n_bins):
        eps = stepper.predict(noisy[..., i], int(t[0, i]), beh[..., i])
        assert torch.allclose(eps, forced[..., i], atol=1e-5)
        stepper.commit(clean[..., i], beh[..., i])
    # the same bin through the whole-window forward with a context flag
    k = 6
    z = clean.clone()
    z[..., k] = noisy[..., k]
    context = torch.zeros(n_batch, 1, n_bins)
    context[..., :k] = 1
    t_bins = torch.zeros(n_batch, n_bins, dtype=torch.long)
    t_bins[:, k] = t[:, k]
    with torch.no_grad():
        out = model(z, t_bins, beh, context=context)
    assert torch.allclose(out[..., k], forced[..., k], atol=1e-5)


def test_causal_denoiser_output_ignores_future_behaviour():
    model = _randomised_denoiser()
    g = torch.Generator().manual_seed(3)
    z = torch.randn(1, 5, 12, generator=g)
    beh = torch.randn(1, 2, 12, generator=g)
    beh2 = beh.clone()
    beh2[..., 8:] += 3.0
    t = torch.tensor([500])
    with torch.no_grad():
        diff = (model(z, t, beh) - model(z, t, beh2)).abs()
    assert diff[..., :8].max() < 1e-5  # FFT round-off only
    assert diff[..., 8:].max() > 1e-4


def test_direction_changes_prediction():
    model = _randomised_denoiser(causal=False, n_behaviour=0, use_direction=True)
    z = torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(4))
    t = torch.tensor([300, 300])
    d1 = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    d2 = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    with torch.no_grad():
        assert (model(z, t, direction=d1) - model(z, t, direction=d2)).abs().max() > 1e-4


def test_autoencoder_shapes_and_positive_rates():
    ae = AutoEncoder(AutoEncoderConfig(n_neurons=7, n_latents=4, n_hidden=16, n_blocks=1,
                                       n_state=4), torch.Generator().manual_seed(0))
    counts = torch.poisson(torch.full((3, 7, 20), 0.5))
    rates, z = ae(counts)
    assert z.shape == (3, 4, 20)
    assert rates.shape == (3, 7, 20)
    assert (rates > 0).all()
    # decoder is pointwise: one bin's latent alone decodes to the same rate
    assert torch.allclose(ae.decode(z[..., 5:6])[..., 0], rates[..., 5], atol=1e-6)


def test_spike_history_fit_and_sampling_use_the_same_intensity():
    from ldns_sim.nn.spike_history import SpikeHistoryConfig, SpikeHistoryModel

    model = SpikeHistoryModel(SpikeHistoryConfig(n_neurons=3, n_history=4))
    with torch.no_grad():
        model.weights.copy_(torch.tensor([[-1.0, 0.5, 0.2, 0.1]] * 3))
        model.bias.fill_(0.3)
    counts = torch.poisson(torch.full((2, 3, 12), 0.7), generator=torch.Generator().manual_seed(0))
    rates = torch.full((2, 3, 12), 0.5)
    drive = model.history_drive(counts)
    # bin 6, neuron 1: lags 1..4 are bins 5, 4, 3, 2
    expected = sum(model.weights[1, k] * counts[0, 1, 5 - k] for k in range(4))
    assert torch.isclose(drive[0, 1, 6], expected)
    buffer = counts[..., [5, 4, 3, 2]]  # (B, N, H) newest first
    lam_step = model.intensity(buffer, rates[..., 6])
    lam_conv = torch.nn.functional.softplus(drive[..., 6] + torch.log(rates[..., 6] + 1e-6)
                                            + model.bias)
    assert torch.allclose(lam_step, lam_conv, atol=1e-6)


def test_guidance_zero_ignores_behaviour_and_needs_a_null_condition_model():
    from ldns_sim.diffusion.autoregressive import AutoregressiveSampler
    from ldns_sim.diffusion.schedule import NoiseSchedule

    plain = _randomised_denoiser()
    with __import__("pytest").raises(ValueError, match="dropout"):
        AutoregressiveSampler(plain, NoiseSchedule(), 3, guidance=2.0)
    g = torch.Generator().manual_seed(5)
    model = Denoiser(DenoiserConfig(n_latents=5, n_hidden=32, n_blocks=2, n_state=8, causal=True,
                                    n_behaviour=3, null_condition=True), g)
    randomise_zero_parameters(model, g)
    beh_a = torch.randn(2, 2, 6, generator=g)
    beh_b = torch.randn(2, 2, 6, generator=g)

    def run(beh, guidance, context_t=0):
        sampler = AutoregressiveSampler(model, NoiseSchedule(), 4, n_batch=2, guidance=guidance,
                                        context_t=context_t)
        return sampler.sample(6, beh, torch.Generator().manual_seed(0))

    assert torch.equal(run(beh_a, 0.0), run(beh_b, 0.0))  # only the dropped branch counts
    assert not torch.equal(run(beh_a, 1.0), run(beh_b, 1.0))
    assert not torch.equal(run(beh_a, 2.0), run(beh_a, 1.0))
    assert not torch.equal(run(beh_a, 1.0, context_t=100), run(beh_a, 1.0))
