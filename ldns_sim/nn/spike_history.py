"""Spike-history observation model (ldns-reference.md §4): per neuron, own past counts + log-rate.

    lambda_t^n = softplus( sum_{k=1..H} w_k^n s_{t-k}^n + a^n log r_t^n + b^n )
    s_t^n ~ Poisson(lambda_t^n), clipped at ``max_count``

Neurons are independent (self-history only). Fitted on real spikes with the autoencoder's
rates; sampled causally, so it streams with an H-bin buffer per neuron.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class SpikeHistoryConfig:
    n_neurons: int
    n_history: int = 5
    max_count: int = 20


class SpikeHistoryModel(nn.Module):
    """Per-neuron GLM: ``weights`` (N, H) on history (lag 1 first), ``log_rate_gain``, ``bias``."""

    def __init__(self, cfg: SpikeHistoryConfig):
        super().__init__()
        self.cfg = cfg
        self.weights = nn.Parameter(torch.zeros(cfg.n_neurons, cfg.n_history))
        self.log_rate_gain = nn.Parameter(torch.ones(cfg.n_neurons))
        # softplus(log r + b) ~= r for small rates when b ~ 0; start near identity for large r
        self.bias = nn.Parameter(torch.zeros(cfg.n_neurons))

    def intensity(self, history: torch.Tensor, rates: torch.Tensor) -> torch.Tensor:
        """history (..., N, H) newest first, rates (..., N) counts/bin -> intensity (..., N)."""
        drive = (history * self.weights).sum(-1) + self.log_rate_gain * torch.log(rates + 1e-6)
        return F.softplus(drive + self.bias)

    def history_drive(self, counts: torch.Tensor) -> torch.Tensor:
        """sum_k w_k^n s_{t-k}^n for every bin: counts (B, N, L) -> (B, N, L).

        A depthwise causal convolution (zeros before the start), so the history features are
        never materialised: fitting costs O(B N L H) time and O(B N L) memory.
        """
        h = self.cfg.n_history
        kernel = self.weights.flip(-1).unsqueeze(1)  # (N, 1, H): oldest lag first
        padded = F.pad(counts, (h, 0))[..., :-1]  # (B, N, L + H - 1): bin t sees t-H .. t-1
        return F.conv1d(padded, kernel, groups=self.cfg.n_neurons)

    def nll(self, counts: torch.Tensor, rates: torch.Tensor) -> torch.Tensor:
        """Mean Poisson NLL of counts (B, N, L) given AE rates (B, N, L); first H bins skipped."""
        drive = self.history_drive(counts) + self.log_rate_gain[:, None] * torch.log(rates + 1e-6)
        lam = F.softplus(drive + self.bias[:, None])  # (B, N, L)
        h = self.cfg.n_history
        return F.poisson_nll_loss(lam[..., h:], counts[..., h:], log_input=False, full=True)

    def initial_buffer(self, n_batch: int) -> torch.Tensor:
        """Zero history (B, N, H), newest first."""
        return torch.zeros(n_batch, self.cfg.n_neurons, self.cfg.n_history)

    @torch.no_grad()
    def sample_step(self, buffer: torch.Tensor, rates: torch.Tensor,
                    generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """One bin: buffer (B, N, H), rates (B, N) -> (counts (B, N), new buffer)."""
        lam = self.intensity(buffer, rates)
        counts = torch.poisson(lam, generator=generator).clamp_(max=self.cfg.max_count)
        return counts, torch.cat([counts.unsqueeze(-1), buffer[..., :-1]], dim=-1)

    @torch.no_grad()
    def sample(self, rates: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """rates (B, N, L) -> counts (B, N, L), sampled causally from a zero history."""
        buffer = self.initial_buffer(rates.shape[0])
        out = []
        for t in range(rates.shape[-1]):
            counts, buffer = self.sample_step(buffer, rates[..., t], generator)
            out.append(counts)
        return torch.stack(out, dim=-1)
