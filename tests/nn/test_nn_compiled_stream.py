"""The compiled (numba) streaming bin computes what the numpy step computes, with the same draws."""

import numpy as np
import pytest
import torch

from ldns_sim.diffusion.autoregressive import AutoregressiveSampler
from ldns_sim.diffusion.compiled_autoregressive import CompiledAutoregressiveSampler
from ldns_sim.diffusion.numpy_autoregressive import NumpyAutoregressiveSampler
from ldns_sim.diffusion.schedule import NoiseSchedule
from ldns_sim.nn.compiled_stream import CompiledDecoder, CompiledSpikeHistory
from ldns_sim.nn.numpy_stream import NumpyDecoder, NumpySpikeHistory
from ldns_sim.nn.spike_history import SpikeHistoryConfig, SpikeHistoryModel
from ldns_sim.simulator import default_backend
from tests.nn.test_nn_numpy_stream import _bundle, _nontrivial


def _pair(denoiser, n_steps, eta, clip, guidance, context_t, direction=None):
    def make():
        return AutoregressiveSampler(denoiser, NoiseSchedule(), n_steps, eta, clip, 1,
                                     direction, guidance, context_t)
    return NumpyAutoregressiveSampler(make()), CompiledAutoregressiveSampler(make())


@pytest.mark.parametrize("n_steps,eta,clip,guidance,context_t", [
    (4, 0.0, 3.0, 1.5, 0),  # the shipped model's settings: guidance, clip
    (4, 0.5, None, 1.0, 0),  # ancestral noise, no guidance, no clip
    (3, 0.0, 3.0, 2.0, 100),  # context noise
])
def test_compiled_sampler_follows_the_numpy_sampler(n_steps, eta, clip, guidance, context_t):
    bundle = _bundle()
    ref, fast = _pair(bundle.denoiser, n_steps, eta, clip, guidance, context_t)
    g_ref, g_fast = torch.Generator().manual_seed(8), torch.Generator().manual_seed(8)
    beh = np.random.default_rng(9).normal(0, 1, (200, 1, 2)).astype(np.float32)
    worst = 0.0
    for row in beh:
        expected = ref.next_bin(row, g_ref)
        got = fast.next_bin(row, g_fast)
        assert got.shape == expected.shape and got.dtype == np.float32
        worst = max(worst, float(np.abs(got - expected).max()))
    assert worst < 2e-4  # float32 rounding over 200 bins of recurrence, nothing more
    assert torch.equal(g_ref.get_state(), g_fast.get_state())  # the same draws, in order
    for s_ref, s_fast in zip(ref.stepper.states, fast._states):
        np.testing.assert_allclose(s_fast, s_ref, rtol=1e-3, atol=1e-4)


def test_compiled_sampler_with_a_direction_per_row():
    """Direction models carry their condition in per-row modulation, not in the input."""
    from ldns_sim.nn.denoiser import Denoiser, DenoiserConfig

    cfg = DenoiserConfig(n_latents=5, n_hidden=32, n_blocks=2, n_state=8, causal=True,
                         n_behaviour=0, use_direction=True, min_decay_per_bin=0.05,
                         null_condition=True)
    model = _nontrivial(Denoiser(cfg, torch.Generator().manual_seed(0)).eval())
    direction = torch.tensor([[0.6, -0.8]])
    ref, fast = _pair(model, 4, 0.0, 3.0, 2.0, 0, direction)
    g_ref, g_fast = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    for _ in range(50):
        np.testing.assert_allclose(fast.next_bin(None, g_fast), ref.next_bin(None, g_ref),
                                   rtol=1e-4, atol=1e-4)


def test_compiled_decoder_matches_the_numpy_decoder():
    bundle = _bundle()
    ref, fast = NumpyDecoder(bundle.ae), CompiledDecoder(bundle.ae)
    z = np.random.default_rng(7).normal(0, 2, (50, bundle.meta.ae.n_latents)).astype(np.float32)
    for row in z:
        np.testing.assert_allclose(fast(row), ref(row), rtol=1e-5, atol=1e-6)


def test_compiled_decoder_dense_bottleneck_path():
    """Bottlenecks where a hidden channel reads several latents take the dense product; the
    shipped models are one-to-one, so force the dense path on both sides."""
    bundle = _bundle()
    ref, fast = NumpyDecoder(bundle.ae), CompiledDecoder(bundle.ae)
    ref.grouped_1to1 = False
    index, scale, w_un, _, *rest = fast._args
    fast._args = (index, scale, w_un, False, *rest)
    z = np.random.default_rng(8).normal(0, 2, (20, bundle.meta.ae.n_latents)).astype(np.float32)
    for row in z:
        np.testing.assert_allclose(fast(row), ref(row), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dispersion", [True, False])
def test_compiled_spike_history_draws_the_numpy_counts(dispersion):
    model = SpikeHistoryModel(SpikeHistoryConfig(n_neurons=30, dispersion=dispersion))
    with torch.no_grad():
        g = torch.Generator().manual_seed(2)
        for p in model.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=g))
    ref, fast = NumpySpikeHistory(model), CompiledSpikeHistory(model)
    g_ref, g_fast = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    rates = np.random.default_rng(4).gamma(1.0, 1.0, (300, 30)).astype(np.float32)
    total = 0.0
    for r in rates:
        expected = ref.step(r, g_ref)
        got = fast.step(r, g_fast)
        assert np.array_equal(got, expected) and got.dtype == np.float32
        total += float(got.sum())
    assert total > 0  # the comparison saw spikes, not only zeros
    assert np.array_equal(fast.buffer, ref.buffer)


def test_compiled_is_the_default_backend_where_numba_imports():
    pytest.importorskip("numba")  # a dependency of the package: present wherever it installs
    assert default_backend() == "compiled"


def test_a_guided_direction_model_streams_alike_on_every_backend():
    """Regression: the numpy step once failed here (no behaviour input, two guided rows)."""
    from dataclasses import replace

    from ldns_sim.simulator import BACKENDS, SamplerSettings, StreamingGenerator

    bundle = _bundle(n_behaviour=0, use_direction=True)
    bundle = replace(bundle, meta=bundle.meta.model_copy(
        update={"condition": "direction", "behaviour_names": []}))
    settings = SamplerSettings(n_steps=4, guidance=2.0)
    chunks = {}
    for backend in BACKENDS:
        gen = StreamingGenerator(bundle, settings, seed=1, direction_rad=1.0, backend=backend)
        assert gen.condition_names == ()
        chunks[backend] = [gen.next_chunk(np.zeros((1, 0), np.float32)) for _ in range(60)]
    for backend in ("numpy", "compiled"):
        for ref, got in zip(chunks["torch"], chunks[backend]):
            np.testing.assert_allclose(got.latents, ref.latents, rtol=1e-3, atol=2e-4)
            assert np.array_equal(got.counts, ref.counts)
