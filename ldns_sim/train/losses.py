"""Training objectives of the LDNS autoencoder (ldns-reference.md §2.3)."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def masked_poisson_nll(rates: torch.Tensor, counts: torch.Tensor,
                       loss_mask: torch.Tensor) -> torch.Tensor:
    """Poisson NLL (with the Stirling term) on the entries where ``loss_mask`` is 1.

    The mean runs over *all* entries, as in the reference (so the loss scales with the
    coordinated-dropout probability). rates, counts, loss_mask: (B, N, L).
    """
    nll = F.poisson_nll_loss(rates, counts, log_input=False, full=True, reduction="none")
    return (nll * loss_mask).mean()


def latent_penalty(latents: torch.Tensor, n_spike_elements: int, l2_beta: float,
                   smooth_beta: float, n_lags: int = 5) -> torch.Tensor:
    """L2 + multi-lag temporal-smoothness penalty on latents (B, Z, L).

    R = l2_beta * sum z^2 + smooth_beta * sum_{k=1..K} 1/(1+k) sum (z_t - z_{t+k})^2,
    divided by the number of *spike* elements, as the reference does.
    """
    l2 = latents.pow(2).sum()
    smooth = latents.new_zeros(())
    for k in range(1, min(n_lags, latents.shape[-1] - 1) + 1):
        smooth = smooth + (latents[..., k:] - latents[..., :-k]).pow(2).sum() / (1 + k)
    return (l2_beta * l2 + smooth_beta * smooth) / n_spike_elements


def coordinated_dropout(counts: torch.Tensor, p: float, generator: torch.Generator | None):
    """Mask entries with probability p; return (scaled input, loss mask of the dropped entries)."""
    keep = (torch.rand(counts.shape, generator=generator) > p).float()
    return counts * keep / (1.0 - p), 1.0 - keep
