"""Residual S4 block with adaLN-Zero modulation, and the timestep embedding.

Tensors are ``(B, C, L)``. Every operation except the S4D time mixer acts on each bin on its
own, so one block runs in three modes that give the same numbers where they overlap:
``forward`` (whole window), ``forward_teacher_forced`` (clean past + noisy present, every bin
at once, for training the streaming denoiser) and ``step`` (one bin from a recurrent state).

Deviation from LDNS (ldns-reference.md §2.1, §3.1): the reference normalises with
InstanceNorm over *time*, which makes every bin depend on the whole window; a streaming model
cannot, so we normalise each bin over its *channels* (a non-affine LayerNorm). The
modulation (shift, scale, gate) follows DiT's adaLN-Zero, zero-initialised so that every block
starts as the identity.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ldns_sim.nn.s4d import S4D, S4DConfig


def channel_norm(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Normalise each bin over channels: (B, C, L) -> (B, C, L) (= layer_norm per bin)."""
    return F.layer_norm(x.transpose(1, 2), (x.shape[1],), eps=eps).transpose(1, 2)


def gelu(x: torch.Tensor) -> torch.Tensor:
    """GELU, tanh approximation: several times cheaper per call than the erf form on CPU."""
    return F.gelu(x, approximate="tanh")


def sinusoidal_embedding(t: torch.Tensor, dim: int, max_period: float = 1e4) -> torch.Tensor:
    """Sinusoidal features of (possibly fractional) timesteps: any shape S -> S + (dim,)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    angles = t.float().unsqueeze(-1) * freqs  # S + (half,)
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)


class S4Block(nn.Module):
    """Pre-norm residual block: S4D time mixing, then a 2x channel MLP.

    ``cond_dim`` > 0: the six modulation vectors come from a per-bin conditioning tensor
    ``(B, cond_dim, L)`` (timestep embedding, reach angle). ``cond_dim`` = 0: they are free
    parameters (the autoencoder's learned affine).
    """

    def __init__(self, n_channels: int, n_state: int, causal: bool, cond_dim: int = 0,
                 generator: torch.Generator | None = None, min_decay_per_bin: float = 0.0):
        super().__init__()
        c = n_channels
        self.s4 = S4D(S4DConfig(c, n_state, causal=causal, min_decay_per_bin=min_decay_per_bin),
                      generator=generator)
        self.mix = nn.Conv1d(c, c, 1)
        self.mlp_in = nn.Conv1d(c, 2 * c, 1)
        self.mlp_out = nn.Conv1d(2 * c, c, 1)
        self.cond_dim = cond_dim
        if cond_dim > 0:
            self.ada = nn.Conv1d(cond_dim, 6 * c, 1)
            nn.init.zeros_(self.ada.weight)
            nn.init.zeros_(self.ada.bias)
        else:
            self.ada_free = nn.Parameter(torch.zeros(1, 6 * c, 1))

    def modulation(self, cond: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        """Six (B|1, C, L|1) tensors: shift/scale/gate for the time mixer and for the MLP."""
        mod = self.ada(F.silu(cond)) if self.cond_dim > 0 else self.ada_free
        return mod.chunk(6, dim=1)

    def _mixer_in(self, x, shift, scale):
        return channel_norm(x) * (1 + scale) + shift

    def _mixer_out(self, x, y, gate):
        return x + gate * self.mix(gelu(y))

    def _mlp(self, x, shift, scale, gate):
        h = channel_norm(x) * (1 + scale) + shift
        return x + gate * self.mlp_out(gelu(self.mlp_in(h)))

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C, L) -> (B, C, L); cond (B, cond_dim, L) or (B, cond_dim, 1)."""
        s1, c1, g1, s2, c2, g2 = self.modulation(cond)
        x = self._mixer_out(x, self.s4(self._mixer_in(x, s1, c1)), g1)
        return self._mlp(x, s2, c2, g2)

    def forward_teacher_forced(self, x_clean, x_noisy, cond_clean, cond_noisy):
        """Clean stream and noisy stream (each (B, C, L)); the noisy one sees the clean past."""
        m_clean, m_noisy = self.modulation(cond_clean), self.modulation(cond_noisy)
        h_clean = self._mixer_in(x_clean, m_clean[0], m_clean[1])
        h_noisy = self._mixer_in(x_noisy, m_noisy[0], m_noisy[1])
        y_clean = self.s4(h_clean)
        y_noisy = self.s4.forward_teacher_forced(h_clean, h_noisy)
        x_clean = self._mlp(self._mixer_out(x_clean, y_clean, m_clean[2]), *m_clean[3:])
        x_noisy = self._mlp(self._mixer_out(x_noisy, y_noisy, m_noisy[2]), *m_noisy[3:])
        return x_clean, x_noisy

    def step_cache(self) -> dict:
        """Everything ``step`` needs that does not change bin to bin (views, no copies)."""
        return {"s4": self.s4.step_params(),
                "mix": (self.mix.weight[..., 0], self.mix.bias),
                "mlp_in": (self.mlp_in.weight[..., 0], self.mlp_in.bias),
                "mlp_out": (self.mlp_out.weight[..., 0], self.mlp_out.bias)}

    def step(self, x: torch.Tensor, mod: tuple[torch.Tensor, ...], state: torch.Tensor,
             cache: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """One bin: x (B, C), modulation six (B, C), state (B, C, N) -> (y (B, C), new state).

        The same arithmetic as ``forward`` on a single bin, written with 2-D ops because a
        streaming bin pays per-op overhead, not FLOPs.
        """
        s1, c1, g1, s2, c2, g2 = mod
        n_channels = x.shape[-1]
        h = torch.addcmul(s1, F.layer_norm(x, (n_channels,)), 1 + c1)  # (B, C)
        y, new_state = self.s4.step(h, state, cache["s4"])
        x = torch.addcmul(x, g1, F.linear(gelu(y), *cache["mix"]))
        h = torch.addcmul(s2, F.layer_norm(x, (n_channels,)), 1 + c2)
        h = F.linear(gelu(F.linear(h, *cache["mlp_in"])), *cache["mlp_out"])
        return torch.addcmul(x, g2, h), new_state
