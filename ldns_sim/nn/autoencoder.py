"""LDNS autoencoder: S4 encoder to time-aligned latents, pointwise decoder to softplus rates.

Layout as in ldns-reference.md §2.1: dense 1x1 input projection, S4 blocks, a *grouped*
bottleneck (each latent reads its own block of hidden channels), and a pointwise decoder
(grouped un-bottleneck, GELU, dense read-out, softplus). The decoder sees one bin at a time,
so streaming needs only ``decode``; the encoder is used for training and for encoding data.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ldns_sim.nn.blocks import S4Block


@dataclass(frozen=True)
class AutoEncoderConfig:
    n_neurons: int
    n_latents: int = 16
    n_hidden: int = 128
    n_blocks: int = 3
    n_state: int = 32
    causal: bool = False
    """Encoder direction. The decoder is pointwise either way."""


class AutoEncoder(nn.Module):
    """counts (B, N, L) -> latents (B, Z, L) -> rates (B, N, L) in counts per bin."""

    def __init__(self, cfg: AutoEncoderConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.cfg = cfg
        h, z = cfg.n_hidden, cfg.n_latents
        groups = z if (h % z == 0 and h > z) else 1
        self.encoder_in = nn.Conv1d(cfg.n_neurons, h, 1)
        self.encoder = nn.ModuleList(
            S4Block(h, cfg.n_state, cfg.causal, generator=generator) for _ in range(cfg.n_blocks)
        )
        self.bottleneck = nn.Conv1d(h, z, 1, groups=groups)
        self.unbottleneck = nn.Conv1d(z, h, 1, groups=groups)
        self.decoder_out = nn.Conv1d(h, cfg.n_neurons, 1)

    def encode(self, counts: torch.Tensor) -> torch.Tensor:
        """(B, N, L) counts -> (B, Z, L) latents."""
        x = self.encoder_in(counts)  # (B, H, L)
        for block in self.encoder:
            x = block(x)
        return self.bottleneck(x)  # (B, Z, L)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, Z, L) latents -> (B, N, L) rates in counts per bin (softplus, > 0)."""
        return F.softplus(self.decoder_out(F.gelu(self.unbottleneck(latents))))

    def forward(self, counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        latents = self.encode(counts)
        return self.decode(latents), latents


@torch.no_grad()
def encode_stitched(ae: AutoEncoder, counts: torch.Tensor, window_bins: int,
                    hop_bins: int) -> torch.Tensor:
    """Latents of one long sequence, counts (N, T) -> (Z, T), from overlapping windows.

    The encoder is trained on windows of ``window_bins``; run on a longer sequence it drifts,
    and its window edges differ from its interior (M1: the latent mean was +0.17 over a
    window's first quarter and -0.19 over its last). So the sequence is encoded in windows of
    that length every ``hop_bins`` bins, and each bin takes its latent from the window in which
    it lies farthest from an edge: the latents are the same wherever a window would start,
    which a streaming model that runs for hours needs. A sequence no longer than a window is
    encoded whole.
    """
    n_bins = counts.shape[-1]
    if n_bins <= window_bins:
        return ae.encode(counts[None])[0]
    starts = list(range(0, n_bins - window_bins + 1, hop_bins))
    if starts[-1] != n_bins - window_bins:
        starts.append(n_bins - window_bins)
    windows = torch.stack([counts[:, s:s + window_bins] for s in starts])  # (K, N, W)
    latents = ae.encode(windows)  # (K, Z, W)
    start = torch.tensor(starts)[:, None]  # (K, 1)
    t = torch.arange(n_bins)[None, :]  # (1, T)
    margin = torch.minimum(t - start, start + window_bins - 1 - t)  # (K, T), < 0 outside
    best = margin.argmax(dim=0)  # (T,) the window each bin is most interior to
    return latents[best, :, t[0] - start[best, 0]].T  # (Z, T)
