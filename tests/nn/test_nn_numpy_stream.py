"""The numpy streaming step computes what the torch path computes, and is seeded and exact."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from ldns_sim.bundle import load_bundle
from ldns_sim.diffusion.autoregressive import AutoregressiveSampler
from ldns_sim.diffusion.numpy_autoregressive import NumpyAutoregressiveSampler
from ldns_sim.diffusion.schedule import NoiseSchedule
from ldns_sim.nn.denoiser import Denoiser, DenoiserConfig, DenoiserStepper
from ldns_sim.nn.numpy_stream import NumpyDecoder, NumpyDenoiserStepper, gelu_tanh
from ldns_sim.pretrained import resolve_model
from ldns_sim.simulator import SamplerSettings, StreamingGenerator
from ldns_sim.testing import make_random_bundle, randomise_zero_parameters


def _nontrivial(module, seed=1):
    """adaLN-Zero and the small output layer start near zero: make every path matter."""
    return randomise_zero_parameters(module, torch.Generator().manual_seed(seed))


def _denoiser(**overrides):
    cfg = DenoiserConfig(n_latents=5, n_hidden=32, n_blocks=2, n_state=8, causal=True,
                         n_behaviour=2, min_decay_per_bin=0.05, **overrides)
    return _nontrivial(Denoiser(cfg, torch.Generator().manual_seed(0)))


def _bundle(n_neurons=40, **denoiser_overrides):
    """A random m1-velocity-like bundle with a non-trivial denoiser and decoder."""
    like = load_bundle(resolve_model("m1-velocity"))
    bundle = make_random_bundle(n_neurons, like=like, seed=3)
    if denoiser_overrides:
        cfg = replace(bundle.meta.denoiser, **denoiser_overrides)
        bundle = replace(bundle, meta=bundle.meta.model_copy(update={"denoiser": cfg}),
                         denoiser=Denoiser(cfg, torch.Generator().manual_seed(4)).eval())
    _nontrivial(bundle.denoiser)
    return bundle


def test_gelu_tanh_matches_torch():
    x = torch.linspace(-12, 12, 2001)
    expected = torch.nn.functional.gelu(x, approximate="tanh").numpy()
    np.testing.assert_allclose(gelu_tanh(x.numpy()), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n_batch,context_t", [(1, 0), (2, 0), (2, 150)])
def test_numpy_stepper_predicts_and_commits_as_the_torch_stepper(n_batch, context_t):
    model = _denoiser()
    timesteps = [800, 600, 400, 200, 0]
    g = torch.Generator().manual_seed(5)
    ref = DenoiserStepper(model, timesteps, n_batch=n_batch, context_t=context_t)
    fast = NumpyDenoiserStepper(ref)
    for _ in range(30):
        beh = torch.randn(n_batch, 2, generator=g)
        fast.begin_bin(beh.numpy())
        for t in timesteps:
            z = torch.randn(n_batch, 5, generator=g)
            np.testing.assert_allclose(fast.predict(z.numpy(), t), ref.predict(z, t, beh),
                                       rtol=1e-4, atol=2e-5)
        context = torch.randn(n_batch, 5, generator=g)
        ref.commit(context, beh, context_t)
        fast.commit(context.numpy(), context_t)
    for s_fast, s_ref in zip(fast.states, ref.states):
        np.testing.assert_allclose(s_fast, s_ref.numpy(), rtol=1e-4, atol=2e-5)


def test_numpy_stepper_with_direction_per_row():
    model = _denoiser(use_direction=True)
    direction = torch.tensor([[1.0, 0.0], [0.0, -1.0]])
    ref = DenoiserStepper(model, [500, 0], n_batch=2, direction=direction)
    fast = NumpyDenoiserStepper(ref)
    g = torch.Generator().manual_seed(6)
    for _ in range(5):
        beh = torch.randn(2, 2, generator=g)
        z = torch.randn(2, 5, generator=g)
        fast.begin_bin(beh.numpy())
        np.testing.assert_allclose(fast.predict(z.numpy(), 500), ref.predict(z, 500, beh),
                                   rtol=1e-4, atol=2e-5)
        ref.commit(z, beh)
        fast.commit(z.numpy())


def test_numpy_decoder_matches_autoencoder_decode():
    bundle = _bundle()
    decode = NumpyDecoder(bundle.ae)
    z = torch.randn(50, bundle.meta.ae.n_latents, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        expected = bundle.ae.decode(z.T.unsqueeze(0))[0].T.numpy()  # (50, N)
    got = np.stack([decode(row) for row in z.numpy()])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("settings", [
    SamplerSettings(n_steps=5),  # the model's defaults: guidance, clip
    SamplerSettings(n_steps=4, eta=0.5, clip=None, guidance=1.0),  # ancestral noise
    SamplerSettings(n_steps=3, context_noise_t=100, use_history=False),  # context noise
])
def test_numpy_sampler_draws_the_same_random_numbers_as_the_torch_sampler(settings):
    bundle = _bundle()
    g_ref, g_fast = torch.Generator().manual_seed(8), torch.Generator().manual_seed(8)
    ref = AutoregressiveSampler(bundle.denoiser, NoiseSchedule(), settings.n_steps,
                                settings.eta, settings.clip, 1, None, settings.guidance,
                                settings.context_noise_t)
    fast = NumpyAutoregressiveSampler(ref)
    beh = torch.randn(40, 1, 2, generator=torch.Generator().manual_seed(9))
    for row in beh:
        expected = ref.next_bin(row, g_ref)
        got = fast.next_bin(row.numpy(), g_fast)
        np.testing.assert_allclose(got, expected.numpy(), rtol=1e-4, atol=1e-4)
    assert torch.equal(g_ref.get_state(), g_fast.get_state())  # the same draws, in order


@pytest.mark.parametrize("backend", ["numpy", "compiled"])
@pytest.mark.parametrize("model", ["m1-velocity", "tiny-synthetic"])
def test_exported_backends_stream_the_torch_backend_stream(model, backend):
    """Same seed, same conditions: the same spikes, rates and latents to float rounding."""
    bundle = load_bundle(resolve_model(model))
    gens = {b: StreamingGenerator(bundle, SamplerSettings(n_steps=5), seed=2, backend=b)
            for b in ("torch", backend)}
    n_cond = len(gens["torch"].condition_names)
    rng = np.random.default_rng(0)
    conditions = rng.normal(0, bundle.meta.velocity_scale / 2, (150, 1, n_cond))
    chunks = {b: [g.next_chunk(c.astype(np.float32)) for c in conditions]
              for b, g in gens.items()}
    for ref, fast in zip(chunks["torch"], chunks[backend]):
        np.testing.assert_allclose(fast.latents, ref.latents, rtol=1e-3, atol=2e-4)
        np.testing.assert_allclose(fast.rates_hz, ref.rates_hz, rtol=1e-3, atol=1e-4)
        assert np.array_equal(fast.counts, ref.counts)
        assert fast.counts.dtype == ref.counts.dtype and fast.rates_hz.dtype == np.float32
        assert fast.latents.dtype == np.float32


@pytest.mark.parametrize("backend", ["numpy", "compiled"])
def test_exported_backends_are_bit_identical_for_a_seed(backend):
    bundle = load_bundle(resolve_model("m1-velocity"))
    conditions = np.random.default_rng(1).normal(0, 10, (80, 1, 2)).astype(np.float32)

    def run(seed):
        gen = StreamingGenerator(bundle, SamplerSettings(n_steps=5), seed=seed, backend=backend)
        return [gen.next_chunk(c) for c in conditions]

    a, b, c = run(4), run(4), run(5)
    for x, y in zip(a, b):
        assert np.array_equal(x.counts, y.counts) and np.array_equal(x.latents, y.latents)
        assert np.array_equal(x.rates_hz, y.rates_hz)
    assert any(not np.array_equal(x.latents, z.latents) for x, z in zip(a, c))


def test_unknown_backend_is_refused():
    bundle = load_bundle(resolve_model("tiny-synthetic"))
    with pytest.raises(ValueError, match="backend"):
        StreamingGenerator(bundle, backend="cuda")
