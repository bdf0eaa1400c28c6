"""DDPM noise schedule (Ho et al. 2020): beta/alpha tables and the forward process. No network.

Linear betas from 1e-4 to 0.02 over 1000 steps, as the LDNS reference (§3.2).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ldns_sim.core import DEFAULT_STEP_SPACING, STEP_SPACINGS


@dataclass(frozen=True)
class ScheduleConfig:
    n_train_steps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02


class NoiseSchedule:
    """Closed forms of the forward process q(z_t | z_0) = N(sqrt(abar_t) z_0, (1 - abar_t) I)."""

    def __init__(self, cfg: ScheduleConfig = ScheduleConfig()):
        self.cfg = cfg
        self.betas = torch.linspace(cfg.beta_start, cfg.beta_end, cfg.n_train_steps,
                                    dtype=torch.float64)  # (T,)
        self.alphas = 1.0 - self.betas
        self.alpha_bars = torch.cumprod(self.alphas, dim=0)  # (T,)

    @property
    def n_steps(self) -> int:
        return self.cfg.n_train_steps

    def alpha_bar(self, t: torch.Tensor) -> torch.Tensor:
        """abar_t for integer timesteps of any shape, float32."""
        return self.alpha_bars[t].float()

    def add_noise(self, z0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """z_t = sqrt(abar_t) z_0 + sqrt(1 - abar_t) eps (Ho et al. eq. 4).

        z0, noise: (B, Z, L); t: (B,) or (B, L) integer timesteps.
        """
        abar = self.alpha_bar(t)
        abar = abar.view(-1, 1, 1) if abar.dim() == 1 else abar.unsqueeze(1)  # (B, 1, 1|L)
        return abar.sqrt() * z0 + (1.0 - abar).sqrt() * noise

    def posterior_variance(self, t: int) -> float:
        """beta-tilde_t = (1 - abar_{t-1}) / (1 - abar_t) beta_t ("fixed_small")."""
        if t == 0:
            return float(self.betas[0])
        return float((1 - self.alpha_bars[t - 1]) / (1 - self.alpha_bars[t]) * self.betas[t])

    def sampling_timesteps(self, n_sample_steps: int,
                           spacing: str = DEFAULT_STEP_SPACING) -> list[int]:
        """Descending timesteps for a sampler with ``n_sample_steps`` steps.

        ``spacing``:
        * ``"trailing"`` (the default): ``T-1, T-1-T/n, ...``; the first step is the last
          training timestep, and no step is spent at t = 0 (the spacing recommended by Lin et
          al. 2024, "Common diffusion noise schedules and sample steps are flawed"). With 4
          steps: 999, 749, 499, 249. On the M1 models it samples latents whose spread is
          closer to the data's at the same cost (docs/benchmarks.md 1.2).
        * ``"leading"`` (sessions 1-5 of ldns-sim): ``0, T/n, 2T/n, ...`` reversed; with 4
          steps 750, 500, 250, 0, i.e. it starts below the last training timestep and spends
          its last step at t = 0, where the model changes almost nothing.

        ``n_sample_steps == n_train_steps`` gives every step, T-1 ... 0 (ancestral DDPM), in
        both spacings.
        """
        if not 1 <= n_sample_steps <= self.n_steps:
            raise ValueError(f"sampling steps must be in 1..{self.n_steps}, got {n_sample_steps}")
        stride = self.n_steps / n_sample_steps
        if spacing == "trailing":
            steps = {int(round(self.n_steps - i * stride)) - 1 for i in range(n_sample_steps)}
        elif spacing == "leading":
            steps = {int(round(i * stride)) for i in range(n_sample_steps)}
        else:
            raise ValueError(f"step spacing {spacing!r}: expected one of {STEP_SPACINGS}")
        return sorted(steps, reverse=True)
