"""The streaming generator: seeded, bit-identical for the same condition log, causal."""

import numpy as np
import pytest

from ldns_sim.bundle import load_bundle
from ldns_sim.pretrained import resolve_model
from ldns_sim.simulator import (
    SamplerSettings,
    StreamingGenerator,
    sample_trials,
    with_model_defaults,
)


@pytest.fixture(scope="module")
def bundle():
    return load_bundle(resolve_model("tiny-synthetic"))


def _run(bundle, seed, conditions):
    gen = StreamingGenerator(bundle, SamplerSettings(n_steps=5), seed=seed)
    return [gen.next_chunk(c[None, :]) for c in conditions]


def test_same_seed_and_condition_log_give_a_bit_identical_stream(bundle):
    conditions = np.random.default_rng(0).normal(0, 0.5, size=(60, 2)).astype(np.float32)
    a, b = _run(bundle, 7, conditions), _run(bundle, 7, conditions)
    c = _run(bundle, 8, conditions)
    for x, y in zip(a, b):
        assert np.array_equal(x.counts, y.counts) and np.array_equal(x.latents, y.latents)
        assert np.array_equal(x.condition, y.condition)
    assert any(not np.array_equal(x.latents, z.latents) for x, z in zip(a, c))
    assert [ch.seq for ch in a] == list(range(60))
    assert [ch.first_bin for ch in a] == list(range(60))


def test_a_later_condition_never_changes_earlier_bins(bundle):
    conditions = np.zeros((40, 2), np.float32)
    changed = conditions.copy()
    changed[25:] = 1.0
    a, b = _run(bundle, 3, conditions), _run(bundle, 3, changed)
    for i in range(25):
        assert np.array_equal(a[i].latents, b[i].latents)
    assert any(not np.array_equal(a[i].latents, b[i].latents) for i in range(25, 40))


def test_streamed_bins_equal_offline_stream_sampler_statistics(bundle):
    """The offline sampler and the live generator are one model: same firing rates."""
    behaviour = np.zeros((64, 30, 2), np.float32)
    offline = sample_trials(bundle, 64, 30, behaviour=behaviour, seed=0)
    live = np.concatenate([c.counts for c in _run(bundle, 0, np.zeros((30 * 16, 2), np.float32))])
    assert offline.counts.mean() == pytest.approx(live.mean(), rel=0.25)


@pytest.mark.parametrize("backend", ["torch", "numpy", "compiled"])
def test_the_stream_starts_from_a_warm_spike_history(bundle, backend):
    """The first bin's counts are drawn after the history's warm-up draws, on every backend:
    the same draws by hand (latent, rates, warm-up, counts) give the same counts."""
    import torch

    history = bundle.history
    assert history is not None and history.warm_up_bins > 0
    settings = SamplerSettings(n_steps=5)
    chunk = StreamingGenerator(bundle, settings, seed=4, backend=backend).next_chunk(
        np.zeros((1, 2), np.float32))
    sampler = StreamingGenerator(bundle, settings, seed=4, backend="torch")._sampler  # fresh
    generator = torch.Generator().manual_seed(4)
    z = sampler.next_bin(torch.zeros(1, 2), generator) * bundle.latent_std + bundle.latent_mean
    rates = bundle.ae.decode(z.unsqueeze(-1))[..., 0]  # (1, N)
    counts, _ = history.sample_step(history.warm_buffer(rates, generator), rates, generator)
    np.testing.assert_array_equal(chunk.counts[0], counts[0].numpy())


def test_the_stream_says_how_it_was_sampled(bundle):
    """Every sink's header carries the sampler settings (with the model and the seed, what
    reproduces a stream); the model's defaults are resolved, not left unset."""
    from ldns_sim.stream_session import make_meta

    cfg = bundle.denoiser.cfg
    for spacing, steps in (("trailing", [999, 666, 332]), ("leading", [667, 333, 0])):
        gen = StreamingGenerator(bundle, SamplerSettings(n_steps=3, step_spacing=spacing))
        text = make_meta(gen, "m", "0" * 64, 0, "none").sampler
        assert f"3 DDIM steps per bin at t = {steps} ({spacing})" in text
        assert f"guidance {cfg.guidance:g}" in text
        assert f"context noise t {cfg.context_noise_t}" in text
        assert f"backend {gen.backend}" in text


def test_unset_sampler_settings_take_the_models_recorded_defaults(bundle):
    cfg = bundle.denoiser.cfg
    used = with_model_defaults(bundle, SamplerSettings(n_steps=3))
    assert (used.guidance, used.context_noise_t, used.n_steps) == (cfg.guidance,
                                                                   cfg.context_noise_t, 3)
    given = with_model_defaults(bundle, SamplerSettings(guidance=1.0, context_noise_t=0))
    assert (given.guidance, given.context_noise_t) == (1.0, 0)
