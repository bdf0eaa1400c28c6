"""Spike-history observation model (ldns-reference.md §4), with an optional count dispersion.

    mu_t^n = softplus( sum_{k=1..H} w_k^n s_{t-k}^n + a^n log r_t^n + b^n )
    Poisson:            s_t^n ~ Poisson(mu_t^n), clipped at ``max_count``
    with dispersion:    P(s_t^n = k) ∝ (mu_t^n ** k / k!) ** nu^n,   k = 0 .. max_count

The second form is a Conway-Maxwell-Poisson law truncated at ``max_count`` (so its normaliser
is an exact finite sum); ``nu = 1`` is the Poisson law, ``nu > 1`` narrower than Poisson,
``nu < 1`` wider. It matters at coarse bins: the M1 recording's counts in 50 ms bins are
narrower than Poisson given the autoencoder's rates (fitted median nu ~1.9), and Poisson draws
from those rates are over-dispersed (Fano 1.19 vs 0.91 on held-out trials; with nu fitted:
0.91). Neurons are independent (self-history only). Fitted on real spikes with the
autoencoder's rates; sampled causally, so it streams with an H-bin buffer per neuron.

Warm start. A sample starts with ``warm_up_bins`` (2 H) bins drawn at the first bin's rates
and dropped, so the first counts see a history like the model's own, not H silent bins: a
zero history lowered the first bins' counts (M1, 50 ms bins: the population count of bins
1-5 was 7-13 % under the rates, docs/benchmarks.md 1.2), which the real trials, recorded from
neurons that were firing before the trial began, do not show.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

_LOG_EPS = 1e-6
#: Warm-up draws before a sample's first bin, per history lag (module docstring).
WARM_UP_PER_LAG = 2


@dataclass(frozen=True)
class SpikeHistoryConfig:
    n_neurons: int
    n_history: int = 5
    max_count: int = 20
    dispersion: bool = False
    """Fit a per-neuron dispersion ``nu`` (truncated COM-Poisson) instead of Poisson counts.
    False in bundles written before it existed, which stay Poisson."""


class SpikeHistoryModel(nn.Module):
    """Per-neuron GLM: ``weights`` (N, H) on history (lag 1 first), ``log_rate_gain``, ``bias``,
    and with ``cfg.dispersion`` a ``log_dispersion`` (N,) = log nu."""

    def __init__(self, cfg: SpikeHistoryConfig):
        super().__init__()
        self.cfg = cfg
        self.weights = nn.Parameter(torch.zeros(cfg.n_neurons, cfg.n_history))
        self.log_rate_gain = nn.Parameter(torch.ones(cfg.n_neurons))
        # softplus(log r + b) ~= r for small rates when b ~ 0; start near identity for large r
        self.bias = nn.Parameter(torch.zeros(cfg.n_neurons))
        if cfg.dispersion:
            self.log_dispersion = nn.Parameter(torch.zeros(cfg.n_neurons))
        support = torch.arange(cfg.max_count + 1, dtype=torch.float32)
        self.register_buffer("_support", support, persistent=False)  # (K,)
        self.register_buffer("_log_factorial", torch.lgamma(support + 1), persistent=False)

    def drive(self, history: torch.Tensor, rates: torch.Tensor) -> torch.Tensor:
        """history (..., N, H) newest first, rates (..., N) counts/bin -> the softplus's
        argument (..., N), intercept included."""
        return ((history * self.weights).sum(-1)
                + self.log_rate_gain * torch.log(rates + _LOG_EPS) + self.bias)

    def intensity(self, history: torch.Tensor, rates: torch.Tensor) -> torch.Tensor:
        """history (..., N, H) newest first, rates (..., N) counts/bin -> mu (..., N)."""
        return F.softplus(self.drive(history, rates))

    def history_drive(self, counts: torch.Tensor) -> torch.Tensor:
        """sum_k w_k^n s_{t-k}^n for every bin: counts (B, N, L) -> (B, N, L).

        A depthwise causal convolution (zeros before the start), so the history features are
        never materialised: fitting costs O(B N L H) time and O(B N L) memory.
        """
        h = self.cfg.n_history
        kernel = self.weights.flip(-1).unsqueeze(1)  # (N, 1, H): oldest lag first
        padded = F.pad(counts, (h, 0))[..., :-1]  # (B, N, L + H - 1): bin t sees t-H .. t-1
        return F.conv1d(padded, kernel, groups=self.cfg.n_neurons)

    def count_log_probs(self, mu: torch.Tensor, nu: torch.Tensor) -> torch.Tensor:
        """Log P(count = k), k = 0..max_count: mu (..., N), nu broadcastable -> (..., N, K)."""
        log_mu = torch.log(mu + _LOG_EPS).unsqueeze(-1)  # (..., N, 1)
        energy = nu.unsqueeze(-1) * (self._support * log_mu - self._log_factorial)
        return energy - torch.logsumexp(energy, dim=-1, keepdim=True)

    def dispersion(self) -> torch.Tensor:
        """nu per neuron (N,); ones for a Poisson model."""
        if self.cfg.dispersion:
            return torch.exp(self.log_dispersion)
        return torch.ones(self.cfg.n_neurons)

    def nll(self, counts: torch.Tensor, rates: torch.Tensor) -> torch.Tensor:
        """Mean NLL per entry of counts (B, N, L) given AE rates (B, N, L); first H bins skipped."""
        log_rates = torch.log(rates + _LOG_EPS)
        drive = self.history_drive(counts) + self.log_rate_gain[:, None] * log_rates
        mu = F.softplus(drive + self.bias[:, None])  # (B, N, L)
        h = self.cfg.n_history
        if not self.cfg.dispersion:
            return F.poisson_nll_loss(mu[..., h:], counts[..., h:], log_input=False, full=True)
        nu = torch.exp(self.log_dispersion)[:, None]  # (N, 1)
        log_p = self.count_log_probs(mu[..., h:], nu)  # (B, N, L - h, K)
        observed = counts[..., h:].clamp(max=self.cfg.max_count).long().unsqueeze(-1)
        return -log_p.gather(-1, observed).mean()

    def initial_buffer(self, n_batch: int) -> torch.Tensor:
        """Zero history (B, N, H), newest first."""
        return torch.zeros(n_batch, self.cfg.n_neurons, self.cfg.n_history)

    @property
    def warm_up_bins(self) -> int:
        """Bins drawn and dropped at the first bin's rates before a sample starts."""
        return WARM_UP_PER_LAG * self.cfg.n_history

    @torch.no_grad()
    def warm_buffer(self, rates: torch.Tensor, generator: torch.Generator | None
                    ) -> torch.Tensor:
        """A history (B, N, H) for a sample starting at rates (B, N): ``warm_up_bins`` draws
        from a zero history at these rates, dropped (module docstring)."""
        buffer = self.initial_buffer(rates.shape[0])
        for _ in range(self.warm_up_bins):
            _, buffer = self.sample_step(buffer, rates, generator)
        return buffer

    @torch.no_grad()
    def sample_counts(self, mu: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Counts (..., N) drawn for intensities mu (..., N)."""
        if not self.cfg.dispersion:
            return torch.poisson(mu, generator=generator).clamp_(max=self.cfg.max_count)
        return self.inverse_cdf_counts(mu, generator)

    @torch.no_grad()
    def inverse_cdf_counts(self, mu: torch.Tensor, generator: torch.Generator | None
                           ) -> torch.Tensor:
        """Counts (..., N) for intensities mu (..., N) from the model's count law, one uniform
        per entry: for the same draws the counts never fall as mu rises (the Poisson law here
        too, truncated at ``max_count``, unlike ``torch.poisson``)."""
        cdf = torch.softmax(self.count_log_probs(mu, self.dispersion()), dim=-1).cumsum(-1)
        uniform = torch.rand(mu.shape + (1,), generator=generator)
        return (cdf[..., :-1] < uniform).sum(-1).to(mu.dtype)

    @torch.no_grad()
    def sample_step(self, buffer: torch.Tensor, rates: torch.Tensor,
                    generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """One bin: buffer (B, N, H), rates (B, N) -> (counts (B, N), new buffer)."""
        counts = self.sample_counts(self.intensity(buffer, rates), generator)
        return counts, self.shift_in(buffer, counts)

    @staticmethod
    def shift_in(buffer: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """The history after a bin: buffer (B, N, H) newest first, counts (B, N) -> (B, N, H)."""
        return torch.cat([counts.unsqueeze(-1), buffer[..., :-1]], dim=-1)

    @torch.no_grad()
    def sample(self, rates: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """rates (B, N, L) -> counts (B, N, L), sampled causally from a warm history."""
        buffer = self.warm_buffer(rates[..., 0], generator)
        out = []
        for t in range(rates.shape[-1]):
            counts, buffer = self.sample_step(buffer, rates[..., t], generator)
            out.append(counts)
        return torch.stack(out, dim=-1)
