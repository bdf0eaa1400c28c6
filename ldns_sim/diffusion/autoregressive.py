"""Autoregressive latent sampling, one bin at a time, with a rolling context.

Each new bin is a small conditional diffusion: start from noise, run a few DDIM steps with the
causal denoiser evaluated in recurrent mode on the context of latents already emitted, then
append the result to the context. Knows no clock and no network transport.

Two optional extensions of the published method, both decided by how the model was trained:
* classifier-free guidance (Ho & Salimans 2022): a model trained with behaviour dropout predicts
  the noise with and without the behaviour, and ``eps_u + w (eps_c - eps_u)`` follows the
  behaviour more closely for w > 1. Both branches run as one batch of 2B, each with its own
  recurrent context;
* context noise: emitted latents enter the context noised to level ``context_t`` (the model was
  trained on contexts noised at random levels), so small errors of the past are not taken as
  exact, which keeps long autoregressive runs on the data manifold.
"""

from __future__ import annotations

import torch

from ldns_sim.core import DEFAULT_STEP_SPACING
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
    guidance
        Guidance weight; None: the model's default. Needs a model with ``null_condition``.
    context_t
        Context noise level; None: the model's default.
    spacing
        Where the ``n_steps`` steps sit among the training timesteps
        (``NoiseSchedule.sampling_timesteps``).
    """

    def __init__(self, model: Denoiser, schedule: NoiseSchedule, n_steps: int = 10,
                 eta: float = 0.0, clip: float | None = 5.0, n_batch: int = 1,
                 direction: torch.Tensor | None = None, guidance: float | None = None,
                 context_t: int | None = None, spacing: str = DEFAULT_STEP_SPACING):
        cfg = model.cfg
        self.schedule = schedule
        self.timesteps = schedule.sampling_timesteps(n_steps, spacing)
        self.eta = eta
        self.clip = clip
        self.n_batch = n_batch
        self.n_latents = cfg.n_latents
        self.null_condition = cfg.null_condition
        self.guidance = cfg.guidance if guidance is None else guidance
        if self.guidance != 1.0 and not cfg.null_condition:
            raise ValueError("guidance needs a model trained with behaviour dropout")
        self.context_t = cfg.context_noise_t if context_t is None else context_t
        self.guided = self.null_condition and self.guidance != 1.0
        n_rows = 2 * n_batch if self.guided else n_batch
        if direction is not None and self.guided:
            direction = torch.cat([direction, direction])
        self.stepper = DenoiserStepper(model, self.timesteps, n_batch=n_rows,
                                       direction=direction, context_t=self.context_t)

    def _model_behaviour(self, behaviour: torch.Tensor | None) -> torch.Tensor | None:
        """Append the presence flag (and the dropped branch when guiding): (B|2B, n_in)."""
        if not self.null_condition or behaviour is None:
            return behaviour
        ones = torch.ones(behaviour.shape[0], 1)
        given = torch.cat([behaviour, ones], dim=1)
        if not self.guided:
            return given
        return torch.cat([given, torch.zeros_like(given)])

    def _eps(self, z: torch.Tensor, t: int, beh) -> torch.Tensor:
        if not self.guided:
            return self.stepper.predict(z, t, beh)
        eps = self.stepper.predict(torch.cat([z, z]), t, beh)
        eps_c, eps_u = eps[: self.n_batch], eps[self.n_batch:]
        return eps_u + self.guidance * (eps_c - eps_u)

    @torch.inference_mode()
    def next_bin(self, behaviour: torch.Tensor | None, generator: torch.Generator) -> torch.Tensor:
        """behaviour (B, n_beh) normalised, or None -> latents (B, Z), normalised."""
        beh = self._model_behaviour(behaviour)
        z = torch.randn((self.n_batch, self.n_latents), generator=generator)
        ts = self.timesteps
        for i, t in enumerate(ts):
            eps = self._eps(z, t, beh)
            t_prev = ts[i + 1] if i + 1 < len(ts) else -1
            z = ddim_step(self.schedule, z, eps, t, t_prev, self.eta, generator, self.clip)
        context = z
        if self.context_t > 0:
            abar = float(self.schedule.alpha_bars[self.context_t])
            noise = torch.randn(z.shape, generator=generator)
            context = abar**0.5 * z + (1 - abar) ** 0.5 * noise
        if self.guided:
            context = torch.cat([context, context])
        self.stepper.commit(context, beh, self.context_t)
        return z

    def sample(self, n_bins: int, behaviour: torch.Tensor | None,
               generator: torch.Generator) -> torch.Tensor:
        """n_bins in a row: behaviour (B, n_beh, L) or None -> latents (B, Z, L)."""
        out = []
        for t in range(n_bins):
            out.append(self.next_bin(None if behaviour is None else behaviour[..., t], generator))
        return torch.stack(out, dim=-1)
