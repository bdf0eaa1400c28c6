"""Reverse-process update rules, as pure functions of (z_t, predicted noise). No network, no clock.

``ddim_step`` with ``eta = 0`` is the deterministic DDIM update (Song et al. 2021, eq. 12);
``ddpm_step`` is ancestral DDPM with the fixed-small posterior variance (Ho et al. 2020, eq. 11),
which is DDIM's update with eta = 1 between consecutive timesteps.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ldns_sim.core import DEFAULT_STEP_SPACING
from ldns_sim.diffusion.schedule import NoiseSchedule

NoisePredictor = Callable[[torch.Tensor, int], torch.Tensor]
"""(z_t, t) -> predicted noise of the same shape."""


def predict_z0(schedule: NoiseSchedule, z_t, eps, t: int, clip: float | None) -> torch.Tensor:
    """z0 estimate sqrt(1/abar) (z_t - sqrt(1 - abar) eps), optionally clipped to +-clip."""
    abar = float(schedule.alpha_bars[t])
    z0 = (z_t - (1.0 - abar) ** 0.5 * eps) / abar**0.5
    return z0.clamp(-clip, clip) if clip else z0


def ddim_step(schedule: NoiseSchedule, z_t: torch.Tensor, eps: torch.Tensor, t: int, t_prev: int,
              eta: float, generator: torch.Generator | None, clip: float | None = None):
    """One step from timestep t to t_prev (< t; -1 means 'to clean data').

    sigma = eta sqrt((1 - abar_prev) / (1 - abar_t)) sqrt(1 - abar_t / abar_prev).
    """
    z0 = predict_z0(schedule, z_t, eps, t, clip)
    if t_prev < 0:
        return z0
    abar_t = float(schedule.alpha_bars[t])
    abar_prev = float(schedule.alpha_bars[t_prev])
    sigma = eta * ((1 - abar_prev) / (1 - abar_t) * (1 - abar_t / abar_prev)) ** 0.5
    eps_dir = (1 - abar_prev - sigma**2) ** 0.5 * eps
    z_prev = abar_prev**0.5 * z0 + eps_dir
    if sigma > 0:
        z_prev = z_prev + sigma * torch.randn(z_t.shape, generator=generator)
    return z_prev


def ddpm_step(schedule: NoiseSchedule, z_t, eps, t: int, generator, clip=None):
    """Ancestral DDPM step t -> t-1 with variance beta-tilde_t ('fixed_small')."""
    return ddim_step(schedule, z_t, eps, t, t - 1, eta=1.0, generator=generator, clip=clip)


def sample_loop(schedule: NoiseSchedule, predict: NoisePredictor, z_T: torch.Tensor,
                n_steps: int, eta: float, generator: torch.Generator | None,
                clip: float | None = None, spacing: str = DEFAULT_STEP_SPACING) -> torch.Tensor:
    """Run the reverse process from z_T over ``n_steps`` evenly spaced steps.

    ``n_steps = schedule.n_steps`` with ``eta = 1`` is full ancestral DDPM; fewer steps with
    ``eta = 0`` is DDIM. ``spacing``: see ``NoiseSchedule.sampling_timesteps``.
    """
    timesteps = schedule.sampling_timesteps(n_steps, spacing)
    z = z_T
    for i, t in enumerate(timesteps):
        t_prev = timesteps[i + 1] if i + 1 < len(timesteps) else -1
        z = ddim_step(schedule, z, predict(z, t), t, t_prev, eta, generator, clip)
    return z
