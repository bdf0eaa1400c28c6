"""From a model bundle to spikes: offline trials, and the chunk generator the engine streams.

    latents (diffusion) -> rates = AE.decode(latents) -> counts (spike history or Poisson)

No clock, no I/O. The transpose from torch's (B, C, L) to the edge's (samples, channels)
happens here and nowhere else.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from ldns_sim.bundle import ModelBundle
from ldns_sim.core import DEFAULT_STEP_SPACING, STEP_SPACINGS, Chunk, ChunkGenerator
from ldns_sim.diffusion.autoregressive import AutoregressiveSampler
from ldns_sim.diffusion.numpy_autoregressive import NumpyAutoregressiveSampler
from ldns_sim.diffusion.sampler import sample_loop
from ldns_sim.diffusion.schedule import NoiseSchedule
from ldns_sim.errors import ConfigError
from ldns_sim.nn.numpy_stream import NumpyDecoder, NumpySpikeHistory

#: Streaming backends, fastest first: numba kernels, numpy, the torch reference.
BACKENDS = ("compiled", "numpy", "torch")


@functools.cache
def _announce_compiled_backend() -> None:
    """Once per process: why the first stream on a machine pauses before its first bin."""
    logging.getLogger(__name__).info(
        "streaming backend: compiled kernels (numba; the first run on a machine compiles "
        "them, ~15 s, then they load from numba's cache)")


def default_backend() -> str:
    """``compiled`` where numba imports (a dependency of the package), else ``numpy``."""
    try:
        import numba  # noqa: F401
    except ImportError:  # e.g. a platform without numba wheels
        return "numpy"
    return "compiled"


@dataclass(frozen=True)
class SamplerSettings:
    n_steps: int = 10
    """Reverse steps: per bin (streaming sampler) or per window (window sampler)."""
    eta: float = 0.0
    clip: float | None = 5.0
    use_history: bool = True
    guidance: float | None = None
    """Classifier-free guidance weight (streaming sampler); None: the model's default."""
    context_noise_t: int | None = None
    """Context noise level (streaming sampler); None: the model's default."""
    step_spacing: str = DEFAULT_STEP_SPACING
    """Where the steps sit among the 1000 training timesteps: 'trailing' (999, 749, 499, 249
    for 4 steps) or 'leading' (750, 500, 250, 0; sessions 1-5). See docs/benchmarks.md 1.2."""
    mode: str = "stream"
    """'stream': causal denoiser, bin by bin (what `ldns-sim stream` emits);
    'window': the published bidirectional whole-window denoiser."""


@dataclass(frozen=True)
class GeneratedTrials:
    counts: np.ndarray  # (n_trials, n_bins, n_neurons) int16
    rates: np.ndarray  # (n_trials, n_bins, n_neurons) float32, counts per bin
    latents: np.ndarray  # (n_trials, n_bins, n_latents) float32, un-normalised


def direction_features(direction_rad: np.ndarray | None, n: int) -> torch.Tensor | None:
    if direction_rad is None:
        return None
    angle = torch.as_tensor(np.broadcast_to(direction_rad, (n,)).copy(), dtype=torch.float32)
    return torch.stack([torch.cos(angle), torch.sin(angle)], dim=-1)  # (B, 2)


def _counts(bundle: ModelBundle, rates: torch.Tensor, use_history: bool,
            generator: torch.Generator) -> torch.Tensor:
    if use_history and bundle.history is not None:
        return bundle.history.sample(rates, generator)
    return torch.poisson(rates, generator=generator)


def check_sampler_settings(bundle: ModelBundle, settings: SamplerSettings) -> None:
    """One line for settings the model cannot take: a guidance weight other than 1 needs a
    model trained with behaviour dropout; a context noise level is a diffusion timestep."""
    n_timesteps = NoiseSchedule().n_steps
    if settings.context_noise_t is not None and not 0 <= settings.context_noise_t < n_timesteps:
        raise ConfigError(f"--context-noise {settings.context_noise_t}: expected a diffusion "
                          f"timestep from 0 (clean context) to {n_timesteps - 1}")
    if settings.step_spacing not in STEP_SPACINGS:
        raise ConfigError(f"--step-spacing {settings.step_spacing}: expected one of "
                          f"{', '.join(STEP_SPACINGS)}")
    guidance = settings.guidance
    if guidance is not None and guidance != 1.0 and not bundle.denoiser.cfg.null_condition:
        raise ConfigError(f"--guidance {guidance:g}: model {bundle.meta.name!r} was trained "
                          f"without behaviour dropout, so it cannot be guided; leave "
                          f"--guidance out (or give 1)")


def with_model_defaults(bundle: ModelBundle, settings: SamplerSettings) -> SamplerSettings:
    """``settings`` with the guidance and context noise recorded in the model where unset."""
    cfg = bundle.denoiser.cfg
    return replace(settings,
                   guidance=cfg.guidance if settings.guidance is None else settings.guidance,
                   context_noise_t=(cfg.context_noise_t if settings.context_noise_t is None
                                    else settings.context_noise_t))


def describe_settings(bundle: ModelBundle, settings: SamplerSettings) -> str:
    """One line of sampler settings with the model's defaults resolved, as recordings and
    reports name them: steps and their timesteps, eta, clip, the streaming sampler's guidance
    and context noise, and whether the spike-history observation model draws the counts."""
    s = with_model_defaults(bundle, settings)
    timesteps = NoiseSchedule().sampling_timesteps(s.n_steps, s.step_spacing)
    shown = timesteps if len(timesteps) <= 10 else f"{timesteps[0]} ... {timesteps[-1]}"
    per = "bin" if s.mode == "stream" else "window"
    text = f"{s.n_steps} DDIM steps per {per} at t = {shown} ({s.step_spacing}), eta {s.eta:g}"
    text += f", clip {s.clip}"
    if s.mode == "stream":
        text += f", guidance {s.guidance:g}, context noise t {s.context_noise_t}"
    return text + f", spike history {'on' if s.use_history else 'off'}"


@torch.no_grad()
def sample_trials(bundle: ModelBundle, n_trials: int, n_bins: int,
                  behaviour: np.ndarray | None = None, direction_rad: np.ndarray | None = None,
                  settings: SamplerSettings = SamplerSettings(), seed: int = 0,
                  batch: int = 256) -> GeneratedTrials:
    """Generate ``n_trials`` windows of ``n_bins`` bins.

    Parameters
    ----------
    behaviour
        (n_trials, n_bins, n_behaviour) behaviour in the data's units, for a
        velocity-conditioned model.
    direction_rad
        (n_trials,) reach angles, for a direction-conditioned model.
    """
    meta = bundle.meta
    if meta.condition == "velocity" and behaviour is None:
        raise ValueError("this model is conditioned on velocity: give behaviour to sample on")
    if meta.condition == "direction" and direction_rad is None:
        raise ValueError("this model is conditioned on direction: give directions to sample on")
    check_sampler_settings(bundle, settings)
    generator = torch.Generator().manual_seed(seed)
    schedule = NoiseSchedule()
    out = {"counts": [], "rates": [], "latents": []}
    for start in range(0, n_trials, batch):
        n = min(batch, n_trials - start)
        beh = None
        if meta.condition == "velocity":
            beh = torch.as_tensor(behaviour[start:start + n], dtype=torch.float32)
            beh = (beh / bundle.behaviour_scale).transpose(1, 2)  # (B, n_beh, L)
        direction = None
        if meta.condition == "direction":
            direction = direction_features(np.asarray(direction_rad)[start:start + n], n)
        z = _sample_latents(bundle, schedule, settings, n, n_bins, beh, direction, generator)
        z = bundle.denormalise_latents(z)  # (B, Z, L)
        rates = bundle.ae.decode(z)  # (B, N, L)
        counts = _counts(bundle, rates, settings.use_history, generator)
        out["counts"].append(counts.transpose(1, 2).numpy().astype(np.int16))
        out["rates"].append(rates.transpose(1, 2).numpy().astype(np.float32))
        out["latents"].append(z.transpose(1, 2).numpy().astype(np.float32))
    return GeneratedTrials(**{k: np.concatenate(v) for k, v in out.items()})


def _sample_latents(bundle, schedule, settings, n, n_bins, beh, direction, generator):
    if settings.mode == "stream":
        sampler = AutoregressiveSampler(bundle.denoiser, schedule, settings.n_steps, settings.eta,
                                        settings.clip, n_batch=n, direction=direction,
                                        guidance=settings.guidance,
                                        context_t=settings.context_noise_t,
                                        spacing=settings.step_spacing)
        return sampler.sample(n_bins, beh, generator)
    if settings.mode != "window":
        raise ValueError(f"unknown sampler mode {settings.mode!r}; expected stream or window")
    model = bundle.window_denoiser
    if model is None:
        raise ValueError("this bundle has no whole-window denoiser (train with "
                         "--window-denoiser); use the streaming sampler")
    z_T = torch.randn((n, bundle.meta.ae.n_latents, n_bins), generator=generator)

    def predict(z, t):
        return model(z, torch.full((n,), t), beh, direction)

    return sample_loop(schedule, predict, z_T, settings.n_steps, settings.eta, generator,
                       settings.clip, settings.step_spacing)


class StreamingGenerator(ChunkGenerator):
    """The LDNS model as a ``ChunkGenerator``: each call emits the next bins of one stream.

    State carried across chunks: the denoiser's recurrent context, the spike-history buffer,
    and the random generator, so the same seed and the same condition log give a
    bit-identical stream. Cost per bin: (n_steps + 1) recurrent denoiser passes, one decoder
    pass and one history step (see docs/benchmarks.md for the measured latency).

    Backends (``BACKENDS``): ``"compiled"`` (the default where numba imports) runs each bin's
    latent step, decoder and spike-history law as numba kernels (``ldns_sim.nn.compiled_stream``);
    ``"numpy"`` the same arithmetic in numpy calls (``ldns_sim.nn.numpy_stream``); both use
    weights exported once from the torch modules and the same random draws from the same
    ``torch.Generator`` as ``"torch"``, the reference path, and equal it to float32 rounding.
    Each is bit-identical for a seed and a condition log; they are not bit-identical to each
    other.
    """

    def __init__(self, bundle: ModelBundle, settings: SamplerSettings = SamplerSettings(),
                 seed: int = 0, bins_per_chunk: int = 1, direction_rad: float | None = None,
                 backend: str | None = None):
        meta = bundle.meta
        check_sampler_settings(bundle, settings)
        self.bundle = bundle
        self.settings = settings
        self.bin_s = meta.bin_s
        self.bins_per_chunk = bins_per_chunk
        self.meta_neuron_ids = tuple(meta.neuron_ids)
        self.n_latents = meta.ae.n_latents
        self.condition_names = tuple(meta.behaviour_names) if meta.condition == "velocity" else ()
        self._generator = torch.Generator().manual_seed(seed)
        direction = None
        self._direction_rad = direction_rad or 0.0
        if meta.condition == "direction":
            direction = direction_features(np.array([self._direction_rad]), 1)
        self._sampler = AutoregressiveSampler(bundle.denoiser, NoiseSchedule(), settings.n_steps,
                                              settings.eta, settings.clip, 1, direction,
                                              settings.guidance, settings.context_noise_t,
                                              settings.step_spacing)
        self._history = bundle.history if settings.use_history else None
        self._buffer = None if self._history is None else self._history.initial_buffer(1)
        self._history_warm = False  # the first bin's rates warm the history up
        self._inv_scale = (1.0 / bundle.behaviour_scale).unsqueeze(0)  # (1, n_beh)
        self._seq = 0
        self._bins_done = 0
        backend = backend or default_backend()
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
        self.backend = backend
        if backend in ("compiled", "numpy"):
            if backend == "compiled":
                _announce_compiled_backend()
                from ldns_sim.diffusion.compiled_autoregressive import (
                    CompiledAutoregressiveSampler,
                )
                from ldns_sim.nn.compiled_stream import CompiledDecoder, CompiledSpikeHistory

                self._np_sampler = CompiledAutoregressiveSampler(self._sampler)
                self._np_decoder = CompiledDecoder(bundle.ae)
                history_cls = CompiledSpikeHistory
            else:
                self._np_sampler = NumpyAutoregressiveSampler(self._sampler)
                self._np_decoder = NumpyDecoder(bundle.ae)
                history_cls = NumpySpikeHistory
            self._np_inv_scale = self._inv_scale.numpy().astype(np.float32)
            self._np_std = bundle.latent_std.numpy().astype(np.float32)
            self._np_mean = bundle.latent_mean.numpy().astype(np.float32)
            self._np_history = None if self._history is None else history_cls(self._history)

    @property
    def sampler_description(self) -> str:
        """One line with every setting the stream depends on besides the model and the seed."""
        direction = ""
        if self.bundle.meta.condition == "direction":
            direction = f", direction {math.degrees(self._direction_rad):g} deg"
        return (f"{describe_settings(self.bundle, self.settings)}, backend {self.backend}"
                f"{direction}")

    @torch.inference_mode()
    def _one_bin_exported(self, condition_row: np.ndarray):
        beh = None
        if self.condition_names:
            beh = np.asarray(condition_row, dtype=np.float32).reshape(1, -1) * self._np_inv_scale
        z = self._np_sampler.next_bin(beh, self._generator)  # (1, Z) normalised
        z = z[0] * self._np_std + self._np_mean  # (Z,)
        rates = self._np_decoder(z)  # (N,) counts per bin
        if self._np_history is not None:
            if not self._history_warm:  # warm start (spike_history module docstring)
                for _ in range(self._history.warm_up_bins):
                    self._np_history.step(rates, self._generator)
                self._history_warm = True
            counts = self._np_history.step(rates, self._generator)
        else:
            counts = torch.poisson(torch.from_numpy(rates), generator=self._generator).numpy()
        return counts, rates, z

    @torch.inference_mode()
    def _one_bin(self, condition_row: np.ndarray):
        if self.backend != "torch":
            return self._one_bin_exported(condition_row)
        beh = None
        if self.condition_names:
            beh = torch.from_numpy(np.ascontiguousarray(condition_row, dtype=np.float32))
            beh = beh.unsqueeze(0) * self._inv_scale  # (1, n_beh)
        z = self._sampler.next_bin(beh, self._generator)  # (1, Z) normalised
        z = z * self.bundle.latent_std + self.bundle.latent_mean
        rates = self.bundle.ae.decode(z.unsqueeze(-1))[..., 0]  # (1, N)
        if self._history is not None:
            if not self._history_warm:
                self._buffer = self._history.warm_buffer(rates, self._generator)
                self._history_warm = True
            counts, self._buffer = self._history.sample_step(self._buffer, rates, self._generator)
        else:
            counts = torch.poisson(rates, generator=self._generator)
        return counts[0].numpy(), rates[0].numpy(), z[0].numpy()

    def next_chunk(self, condition: np.ndarray) -> Chunk:
        rows = [self._one_bin(condition[i]) for i in range(self.bins_per_chunk)]
        counts = np.stack([r[0] for r in rows]).astype(np.int16)  # (n_bins, N)
        rates = np.stack([r[1] for r in rows]).astype(np.float32) / np.float32(self.bin_s)
        latents = np.stack([r[2] for r in rows]).astype(np.float32)
        chunk = Chunk(seq=self._seq, first_bin=self._bins_done, counts=counts, rates_hz=rates,
                      latents=latents,
                      condition=np.asarray(condition, dtype=np.float32).reshape(
                          self.bins_per_chunk, -1))
        self._seq += 1
        self._bins_done += self.bins_per_chunk
        return chunk
