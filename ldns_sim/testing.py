"""Real, small building blocks for tests, docs and demos (torch is imported only on use).

``TuningCurveGenerator`` is a complete ``ChunkGenerator``: a population of cosine
velocity-tuned Poisson neurons (Georgopoulos et al. 1982). It drives the engine in tests and
benchmarks and is the fallback demo when no trained model is at hand.
``make_random_bundle`` builds an untrained LDNS model bundle of any size, for benchmarks of
cost and for tests of the plumbing around a model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ldns_sim.core import Chunk, ChunkGenerator, StreamMeta
from ldns_sim.errors import ConfigError

if TYPE_CHECKING:
    from ldns_sim.bundle import ModelBundle

VELOCITY_NAMES = ("vel_x", "vel_y")


class TuningCurveGenerator(ChunkGenerator):
    """Cosine velocity tuning with Poisson spiking, chunk by chunk.

    Neuron ``i`` fires at ``rate_i = max(0, baseline_i + depth_i * (v . u_i))`` Hz, where ``v``
    is the 2-D velocity condition (arbitrary units, ~1 for a fast reach) and ``u_i`` the unit
    vector of the neuron's preferred direction; counts are Poisson with mean ``rate_i * bin_s``.
    The latents are the velocity itself (``n_latents = 2``): what produced the rates.

    Parameters
    ----------
    n_neurons
        Population size.
    bin_s
        Bin width in seconds.
    bins_per_chunk
        Bins per ``next_chunk`` call.
    rng
        Draws the tuning parameters (at construction) and the spikes.
    baseline_hz, depth_hz
        ``(low, high)`` ranges of the uniform baseline rate and modulation depth, in Hz.
    """

    condition_names = VELOCITY_NAMES
    n_latents = 2

    def __init__(self, n_neurons: int, bin_s: float, bins_per_chunk: int,
                 rng: np.random.Generator, baseline_hz: tuple[float, float] = (5.0, 20.0),
                 depth_hz: tuple[float, float] = (5.0, 30.0)) -> None:
        if n_neurons < 1 or bins_per_chunk < 1 or not bin_s > 0:
            raise ConfigError(f"TuningCurveGenerator: needs n_neurons >= 1, bins_per_chunk >= 1"
                              f" and bin_s > 0, got {n_neurons}, {bins_per_chunk}, {bin_s}")
        self.bin_s = float(bin_s)
        self.bins_per_chunk = int(bins_per_chunk)
        self.meta_neuron_ids = tuple(f"unit{i:03d}" for i in range(n_neurons))
        self.rng = rng
        preferred_rad = rng.uniform(0, 2 * np.pi, n_neurons)
        self.baseline_hz = rng.uniform(*baseline_hz, n_neurons).astype(np.float32)  # (N,)
        depth = rng.uniform(*depth_hz, n_neurons)
        # (2, N): velocity -> rate modulation in Hz, depth times preferred unit vector
        self.tuning_hz = np.stack([depth * np.cos(preferred_rad),
                                   depth * np.sin(preferred_rad)]).astype(np.float32)
        self._n_chunks = 0

    def rates_hz(self, velocity: np.ndarray) -> np.ndarray:
        """``(n_bins, n_neurons)`` float32 firing rates in Hz for ``(n_bins, 2)`` velocity."""
        return np.maximum(self.baseline_hz + velocity @ self.tuning_hz, 0).astype(np.float32)

    def next_chunk(self, condition: np.ndarray) -> Chunk:
        velocity = np.asarray(condition, dtype=np.float32)  # (n_bins, 2)
        if velocity.shape != (self.bins_per_chunk, 2):
            raise ConfigError(f"TuningCurveGenerator: condition of shape {velocity.shape}, "
                              f"expected ({self.bins_per_chunk}, 2)")
        rates_hz = self.rates_hz(velocity)  # (n_bins, N)
        counts = self.rng.poisson(rates_hz * self.bin_s)
        chunk = Chunk(seq=self._n_chunks, first_bin=self._n_chunks * self.bins_per_chunk,
                      counts=np.minimum(counts, np.iinfo(np.int16).max).astype(np.int16),
                      rates_hz=rates_hz, latents=velocity.copy(), condition=velocity.copy())
        self._n_chunks += 1
        return chunk

    def __repr__(self) -> str:
        return (f"<TuningCurveGenerator | {len(self.meta_neuron_ids)} neurons | "
                f"{self.bins_per_chunk}x{self.bin_s * 1e3:g} ms bins>")


def make_stream_meta(generator: ChunkGenerator | None = None, *, n_neurons: int = 8,
                     bin_s: float = 0.02, condition_names: Sequence[str] = VELOCITY_NAMES,
                     n_latents: int = 2, seed: int = 0, condition_source: str = "none",
                     source_id: str = "ldns-sim-test") -> StreamMeta:
    """A ``StreamMeta`` for tests: from ``generator`` if given, else from the keywords.

    The model name is ``"test"`` and its sha256 is 64 zeros (no model file exists).
    """
    if generator is not None:
        neuron_ids, bin_s = generator.meta_neuron_ids, generator.bin_s
        condition_names, n_latents = generator.condition_names, generator.n_latents
    else:
        neuron_ids = tuple(f"unit{i:03d}" for i in range(n_neurons))
    return StreamMeta(model_name="test", model_sha256="0" * 64, seed=seed, bin_s=bin_s,
                      neuron_ids=tuple(neuron_ids), n_latents=n_latents,
                      condition_names=tuple(condition_names),
                      condition_source=condition_source, source_id=source_id)


#: Per-channel standard deviation of the behaviour, in units of ``velocity_scale``: a
#: min-jerk centre-out reach at peak speed 1 has a velocity std of about 0.35 per axis.
_RANDOM_BEHAVIOUR_STD = 0.35


def randomise_zero_parameters(module, generator, std: float = 0.2):
    """Draw every parameter that is exactly zero (adaLN-Zero modulation, zero-initialised
    biases) from N(0, std^2) with ``generator``, so that every path of an untrained network
    matters in a test. Returns the module, in eval mode."""
    import torch

    with torch.no_grad():
        for p in module.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, std, generator=generator)
    return module.eval()


def make_random_bundle(n_neurons: int, like: ModelBundle | None = None, seed: int = 0, *,
                       preset: str = "default") -> ModelBundle:
    """An untrained model bundle with the architecture of ``like`` (or of a training preset).

    This is for measuring cost, not realism: the weights are random, so the spikes it streams
    have the shapes, dtypes and timing of a trained model's but none of its structure. The
    benchmark uses it for neuron counts no shipped model has; tests use it to exercise
    everything around a model without training one.

    Parameters
    ----------
    n_neurons
        Number of neurons (the autoencoder's read-out and the spike-history model's size).
    like
        Copy every architecture setting of this bundle except ``n_neurons``: autoencoder and
        causal denoiser configs, spike history, condition, behaviour names, bin width,
        velocity scale. The whole-window denoiser is left out (streaming does not use it).
    seed
        Seeds a ``torch.Generator`` that draws every weight (the same seed gives the same
        bundle; torch's global random state is left alone).
    preset
        Without ``like``: the ``ldns_sim.train.config`` preset whose sizes to use
        (``"default"``, ``"lorenz"``, ``"tiny"``), conditioned on velocity ``("vel_x",
        "vel_y")`` at 50 ms bins, or nothing for ``"lorenz"``.

    Returns
    -------
    ModelBundle
        In eval mode, not saved (``weights_sha256`` is empty; ``save_bundle`` fills it in),
        with zero-mean unit-std latent statistics and a behaviour std of
        ``0.35 * velocity_scale`` per channel.
    """
    import torch

    from ldns_sim.bundle import FORMAT_VERSION, BundleMeta, ModelBundle, package_versions
    from ldns_sim.nn.autoencoder import AutoEncoder
    from ldns_sim.nn.denoiser import Denoiser
    from ldns_sim.nn.spike_history import SpikeHistoryModel

    if not (isinstance(n_neurons, int | np.integer) and n_neurons >= 1):
        raise ConfigError(f"make_random_bundle: n_neurons must be an integer >= 1, "
                          f"got {n_neurons!r}")
    meta_fields = _random_meta_fields(int(n_neurons), like, preset)
    generator = torch.Generator().manual_seed(int(seed))
    # torch's layers draw their initial weights from the global state: restore it afterwards
    # (the weights themselves are redrawn from ``generator``)
    with torch.random.fork_rng(devices=[]):
        ae = AutoEncoder(meta_fields["ae"], generator=generator)
        denoiser = Denoiser(meta_fields["denoiser"], generator=generator)
    history = SpikeHistoryModel(meta_fields["history"])
    for module in (ae, denoiser):
        _redraw_dense_weights(module, generator)
    n_beh = max(len(meta_fields["behaviour_names"]), 1)
    meta = BundleMeta(
        format_version=FORMAT_VERSION, package_version=package_versions()["ldns_sim"],
        neuron_ids=tuple(f"unit{i:04d}" for i in range(n_neurons)),
        data_source="random weights (ldns_sim.testing.make_random_bundle)",
        data_fingerprint=f"random-seed-{seed}", train_config={}, versions=package_versions(),
        seed=int(seed), **meta_fields)
    for module in (ae, denoiser, history):
        module.eval()
    return ModelBundle(
        meta=meta, ae=ae, denoiser=denoiser, history=history,
        latent_mean=torch.zeros(meta.ae.n_latents), latent_std=torch.ones(meta.ae.n_latents),
        behaviour_scale=torch.full((n_beh,), _RANDOM_BEHAVIOUR_STD * meta.velocity_scale))


def _random_meta_fields(n_neurons: int, like: ModelBundle | None, preset: str) -> dict:
    """The ``BundleMeta`` fields that describe the architecture, for ``make_random_bundle``."""
    from dataclasses import replace

    from ldns_sim.nn.autoencoder import AutoEncoderConfig
    from ldns_sim.nn.denoiser import DenoiserConfig
    from ldns_sim.nn.spike_history import SpikeHistoryConfig
    from ldns_sim.train.config import preset as train_preset

    if like is not None:
        m = like.meta
        history = (replace(m.history, n_neurons=n_neurons) if m.history is not None
                   else SpikeHistoryConfig(n_neurons=n_neurons))
        return dict(name=f"{m.name}-random-{n_neurons}", ae=replace(m.ae, n_neurons=n_neurons),
                    denoiser=m.denoiser, history=history, condition=m.condition,
                    behaviour_names=tuple(m.behaviour_names), velocity_scale=m.velocity_scale,
                    bin_s=m.bin_s, window_bins=m.window_bins)
    try:
        cfg = train_preset(preset)
    except ValueError as e:
        raise ConfigError(f"make_random_bundle: {e}") from None
    names = VELOCITY_NAMES if cfg.condition == "velocity" else ()
    return dict(
        name=f"random-{preset}-{n_neurons}",
        ae=AutoEncoderConfig(n_neurons=n_neurons, n_latents=cfg.ae.n_latents,
                             n_hidden=cfg.ae.n_hidden, n_blocks=cfg.ae.n_blocks,
                             n_state=cfg.ae.n_state, causal=cfg.ae.causal_encoder),
        denoiser=DenoiserConfig(n_latents=cfg.ae.n_latents, n_hidden=cfg.diffusion.n_hidden,
                                n_blocks=cfg.diffusion.n_blocks, n_state=cfg.diffusion.n_state,
                                causal=True, n_behaviour=len(names),
                                use_direction=cfg.condition == "direction"),
        history=SpikeHistoryConfig(n_neurons=n_neurons, n_history=cfg.history.n_history,
                                   max_count=cfg.history.max_count),
        condition=cfg.condition, behaviour_names=names, velocity_scale=1.0, bin_s=0.05,
        window_bins=cfg.diffusion.window_bins)


def _redraw_dense_weights(module, generator) -> None:
    """Redraw every Conv1d/Linear weight and bias from ``generator``, scaled as torch does.

    torch initialises these layers from its global random state; drawing them again from
    ``generator`` (uniform in +-1/sqrt(fan_in), the bound of torch's default initialisation
    for both) makes the bundle a function of the seed alone.
    """
    import torch
    from torch import nn

    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, nn.Conv1d | nn.Linear):
                fan_in = layer.weight[0].numel()
                bound = fan_in ** -0.5
                layer.weight.uniform_(-bound, bound, generator=generator)
                if layer.bias is not None:
                    layer.bias.uniform_(-bound, bound, generator=generator)
