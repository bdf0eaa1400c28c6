"""Denoiser over latent sequences: (z_t, t, condition) -> predicted noise. Knows no schedule.

Inputs per bin are concatenated channels, as in LDNS's velocity conditioning (§3.3 of the
reference): the noisy latents (Z), the behaviour used at that bin (n_behaviour, e.g. hand
velocity, normalised), and a context flag (1 = this bin is a clean, already generated latent;
0 = this bin is being denoised). Timesteps are given *per bin* (context bins carry t = 0), and a
reach angle enters as (cos, sin) through an MLP added to the timestep embedding.

``causal=False`` is the published whole-window denoiser (bidirectional S4). ``causal=True`` is
the streaming denoiser: a bin's output depends on that bin and the past only, so it runs in
recurrent mode one bin at a time and is trained with clean-past teacher forcing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ldns_sim.nn.blocks import S4Block, sinusoidal_embedding


@dataclass(frozen=True)
class DenoiserConfig:
    n_latents: int
    n_hidden: int = 64
    n_blocks: int = 4
    n_state: int = 32
    causal: bool = True
    n_behaviour: int = 0
    """Per-bin behaviour channels (0: none)."""
    use_direction: bool = False
    """Condition on a per-window reach angle given as (cos, sin)."""
    min_decay_per_bin: float = 0.0
    """S4D memory floor (see ``S4DConfig``); the streaming denoiser sets 4 / window_bins."""
    null_condition: bool = False
    """The last behaviour channel says whether the behaviour is given (1) or dropped (0):
    trained with condition dropout, so sampling can use classifier-free guidance."""
    guidance: float = 1.0
    """Default guidance weight at sampling (1: plain conditional model)."""
    context_noise_t: int = 0
    """Default noise level (timestep) at which emitted latents enter the context; the model was
    trained on contexts noised at random levels up to a maximum (noise augmentation)."""

    @property
    def emb_dim(self) -> int:
        return max(self.n_hidden // 4, 16)


class Denoiser(nn.Module):
    """Predicts the noise in (B, Z, L) latents."""

    def __init__(self, cfg: DenoiserConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.cfg = cfg
        c, e = cfg.n_hidden, cfg.emb_dim
        n_in = cfg.n_latents + cfg.n_behaviour + 1
        self.conv_in = nn.Conv1d(n_in, c, 1)
        self.blocks = nn.ModuleList(
            S4Block(c, cfg.n_state, cfg.causal, cond_dim=e, generator=generator,
                    min_decay_per_bin=cfg.min_decay_per_bin)
            for _ in range(cfg.n_blocks)
        )
        self.conv_out = nn.Conv1d(c, cfg.n_latents, 1)
        with torch.no_grad():  # small first predictions, as the reference's monkey models
            self.conv_out.weight.mul_(0.1)
            self.conv_out.bias.mul_(0.1)
        self.t_mlp = nn.Sequential(nn.Linear(128, e), nn.SiLU(), nn.Linear(e, e))
        if cfg.use_direction:
            self.dir_mlp = nn.Sequential(nn.Linear(2, e), nn.SiLU(), nn.Linear(e, e))

    def embed(self, t: torch.Tensor, direction: torch.Tensor | None) -> torch.Tensor:
        """Timesteps (B, L) [+ direction (B, 2)] -> conditioning (B, E, L)."""
        emb = self.t_mlp(sinusoidal_embedding(t, 128))  # (B, L, E)
        if self.cfg.use_direction:
            if direction is None:
                raise ValueError("this denoiser is conditioned on direction; none was given")
            emb = emb + self.dir_mlp(direction).unsqueeze(1)
        return emb.transpose(1, 2)  # (B, E, L)

    def _inputs(self, z, behaviour, context_flag) -> torch.Tensor:
        parts = [z]
        if self.cfg.n_behaviour:
            if behaviour is None:
                raise ValueError("this denoiser is conditioned on behaviour; none was given")
            parts.append(behaviour)
        parts.append(context_flag)
        return self.conv_in(torch.cat(parts, dim=1))  # (B, C, L)

    def forward(self, z_t: torch.Tensor, t: torch.Tensor, behaviour: torch.Tensor | None = None,
                direction: torch.Tensor | None = None,
                context: torch.Tensor | None = None) -> torch.Tensor:
        """Noise prediction for a whole window.

        Parameters
        ----------
        z_t
            (B, Z, L) latents, noisy where ``context`` is 0.
        t
            (B,) or (B, L) integer timesteps (per bin; context bins should carry 0).
        behaviour
            (B, n_behaviour, L) normalised behaviour, if the model uses it.
        direction
            (B, 2) (cos, sin) of the reach angle, if the model uses it.
        context
            (B, 1, L) flag, 1 for clean context bins; zeros if None.
        """
        n_batch, _, n_bins = z_t.shape
        if t.dim() == 1:
            t = t.unsqueeze(1).expand(n_batch, n_bins)
        if context is None:
            context = torch.zeros(n_batch, 1, n_bins)
        cond = self.embed(t, direction)
        x = self._inputs(z_t, behaviour, context)
        for block in self.blocks:
            x = block(x, cond)
        return self.conv_out(x)  # (B, Z, L)

    def forward_teacher_forced(self, z_clean, z_noisy, t_noisy, behaviour=None, direction=None,
                               t_clean=None):
        """Per bin: the prediction the streaming model makes with a clean past.

        z_clean, z_noisy: (B, Z, L); t_noisy: (B, L) timesteps of z_noisy, bin by bin.
        t_clean: (B, L) noise level of the context stream (zeros: clean context).
        Returns (B, Z, L), each bin's noise prediction given the context bins before it.
        """
        n_batch, _, n_bins = z_clean.shape
        ones = torch.ones(n_batch, 1, n_bins)
        x_clean = self._inputs(z_clean, behaviour, ones)
        x_noisy = self._inputs(z_noisy, behaviour, torch.zeros_like(ones))
        cond_clean = self.embed(torch.zeros_like(t_noisy) if t_clean is None else t_clean,
                                direction)
        cond_noisy = self.embed(t_noisy, direction)
        for block in self.blocks:
            x_clean, x_noisy = block.forward_teacher_forced(x_clean, x_noisy, cond_clean,
                                                            cond_noisy)
        return self.conv_out(x_noisy)


class DenoiserStepper:
    """Recurrent (one bin at a time) evaluation of a causal ``Denoiser``, for streaming.

    Holds the S4D states after the clean latents emitted so far (the rolling context) and
    caches everything that does not change bin to bin: discretised SSM parameters and the
    per-timestep modulation of every block. ``predict`` evaluates a noisy bin without changing
    the state; ``commit`` advances the state with the clean bin that was emitted.
    """

    def __init__(self, model: Denoiser, timesteps: list[int], n_batch: int = 1,
                 direction: torch.Tensor | None = None, context_t: int = 0):
        if not model.cfg.causal:
            raise ValueError("streaming needs a causal denoiser")
        self.model = model
        self.n_batch = n_batch
        with torch.no_grad():
            self.caches = [blk.step_cache() for blk in model.blocks]
            self.conv_in = (model.conv_in.weight[..., 0], model.conv_in.bias)
            self.conv_out = (model.conv_out.weight[..., 0], model.conv_out.bias)
            all_t = sorted(set(timesteps) | {0, context_t})
            t_tensor = torch.tensor(all_t).unsqueeze(0).expand(n_batch, -1)  # (B, T)
            cond = model.embed(t_tensor, direction)  # (B, E, T)
            per_block = [blk.modulation(cond) for blk in model.blocks]  # six (B, C, T) each
            # contiguous copies: a view would keep every block's (B, 6C, T) tensor alive per t
            self.mods = {
                t: [tuple(m[..., i].contiguous() for m in mods) for mods in per_block]
                for i, t in enumerate(all_t)
            }
        self.states = [blk.s4.initial_state(n_batch) for blk in model.blocks]
        self._flags = {0.0: torch.zeros(n_batch, 1), 1.0: torch.ones(n_batch, 1)}

    def _run(self, z, behaviour, t: int, flag: float, commit: bool) -> torch.Tensor:
        m = self.model
        parts = [z]  # (B, Z)
        if m.cfg.n_behaviour:
            parts.append(behaviour)
        parts.append(self._flags[flag])
        x = F.linear(torch.cat(parts, dim=1), *self.conv_in)  # (B, C)
        new_states = []
        for blk, mod, state, cache in zip(m.blocks, self.mods[t], self.states, self.caches):
            x, new_state = blk.step(x, mod, state, cache)
            new_states.append(new_state)
        if commit:
            self.states = new_states
        return F.linear(x, *self.conv_out)  # (B, Z)

    @torch.inference_mode()
    def predict(self, z_t: torch.Tensor, t: int, behaviour: torch.Tensor | None) -> torch.Tensor:
        """Noise prediction for one noisy bin: z_t (B, Z), behaviour (B, n_beh) -> (B, Z)."""
        return self._run(z_t, behaviour, t, 0.0, commit=False)

    @torch.inference_mode()
    def commit(self, z_context: torch.Tensor, behaviour: torch.Tensor | None, t: int = 0) -> None:
        """Append one emitted bin (B, Z) to the context, as it is at noise level ``t``."""
        self._run(z_context, behaviour, t, 1.0, commit=True)

    def get_state(self) -> list[torch.Tensor]:
        return [s.clone() for s in self.states]

    def set_state(self, states: list[torch.Tensor]) -> None:
        self.states = [s.clone() for s in states]


def smooth_l1_or_mse(pred: torch.Tensor, target: torch.Tensor, beta: float) -> torch.Tensor:
    """Elementwise loss: SmoothL1 with ``beta`` (> 0), or squared error (beta = 0)."""
    if beta > 0:
        return F.smooth_l1_loss(pred, target, beta=beta, reduction="none")
    return (pred - target) ** 2
