"""Autoregressive latent sampling, one bin at a time, with a rolling clean context.

Each new bin is a small conditional diffusion: start from noise, run a few DDIM steps with the
causal denoiser evaluated in recurrent mode on the context of clean latents already emitted,
then append the result to the context. Knows no clock and no network transport.
"""

from __future__ import annotations

import torch

from ldns_sim.diffusion.sampler import ddim_step
from ldns_sim.diffusion.schedule import NoiseSchedule
from ldns_sim.nn.denoiser import Denoiser, DenoiserStepper


class AutoregressiveSampler:
    """Samples normalised latents bin by bin for ``n_batch`` independent streams.

    Parameters
    ----------
    model
        A causal ``Denoiser``.
    n_steps
        Reverse-process steps per bin (DDIM spacing over the 1000 training steps).
    eta
        0: deterministic DDIM; 1: DDPM-like ancestral noise.
    clip
        Clip the clean-latent estimate to +-clip (normalised units) at every step.
    direction
        (B, 2) (cos, sin) for a direction-conditioned model.
    """

    def __init__(self, model: Denoiser, schedule: NoiseSchedule, n_steps: int = 10,
                 eta: float = 0.0, clip: float | None = 5.0, n_batch: int = 1,
                 direction: torch.Tensor | None = None):
        self.schedule = schedule
        self.timesteps = schedule.sampling_timesteps(n_steps)
        self.eta = eta
        self.clip = clip
        self.n_batch = n_batch
        self.n_latents = model.cfg.n_latents
        self.stepper = DenoiserStepper(model, self.timesteps, n_batch=n_batch,
                                       direction=direction)

    @torch.inference_mode()
    def next_bin(self, behaviour: torch.Tensor | None, generator: torch.Generator) -> torch.Tensor:
        """behaviour (B, n_beh) normalised, or None -> clean normalised latents (B, Z)."""
        z = torch.randn((self.n_batch, self.n_latents), generator=generator)
        ts = self.timesteps
        for i, t in enumerate(ts):
            eps = self.stepper.predict(z, t, behaviour)
            t_prev = ts[i + 1] if i + 1 < len(ts) else -1
            z = ddim_step(self.schedule, z, eps, t, t_prev, self.eta, generator, self.clip)
        self.stepper.commit(z, behaviour)
        return z

    def sample(self, n_bins: int, behaviour: torch.Tensor | None,
               generator: torch.Generator) -> torch.Tensor:
        """n_bins in a row: behaviour (B, n_beh, L) or None -> latents (B, Z, L)."""
        out = []
        for t in range(n_bins):
            out.append(self.next_bin(None if behaviour is None else behaviour[..., t], generator))
        return torch.stack(out, dim=-1)
