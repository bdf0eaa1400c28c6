"""Fit the spike-history observation model on real spikes with the autoencoder's rates.

Full batch, as the reference (§4), but with L-BFGS instead of 3000 AdamW epochs: the Poisson
GLM with a softplus link has a convex negative log-likelihood and only (n_history + 2)
parameters per neuron (one more with the dispersion), so a quasi-Newton method converges in
tens of iterations. Large data
sets are subsampled to at most ``MAX_ELEMENTS`` count entries (whole windows, seeded).
"""

from __future__ import annotations

import torch

from ldns_sim.nn.spike_history import SpikeHistoryConfig, SpikeHistoryModel
from ldns_sim.train.config import HistoryTrain

MAX_ELEMENTS = 2_000_000
"""Count entries in the full-batch fit (the dispersion fit holds max_count + 1 log-probabilities
per entry: about 170 MB per intermediate at this size)."""


def fit_spike_history(cfg: HistoryTrain, counts: torch.Tensor, ae_rates: torch.Tensor,
                      show_progress: bool = True, seed: int = 0):
    """counts, ae_rates: (W, N, L). Returns (model, report with initial and final NLL)."""
    model = SpikeHistoryModel(SpikeHistoryConfig(
        n_neurons=counts.shape[1], n_history=cfg.n_history, max_count=cfg.max_count,
        dispersion=cfg.dispersion))
    per_window = counts[0].numel()
    if counts.numel() > MAX_ELEMENTS:
        keep = torch.randperm(len(counts), generator=torch.Generator().manual_seed(seed))
        keep = keep[: max(1, MAX_ELEMENTS // per_window)]
        counts, ae_rates = counts[keep], ae_rates[keep]
    counts = counts.clamp(max=cfg.max_count)
    opt = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=cfg.iterations,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-6)
    with torch.no_grad():
        first = model.nll(counts, ae_rates).item()

    def closure():
        opt.zero_grad(set_to_none=True)
        loss = model.nll(counts, ae_rates)
        loss.backward()
        return loss

    opt.step(closure)
    model.eval()
    with torch.no_grad():
        last = model.nll(counts, ae_rates).item()
    nu = model.dispersion().detach()
    return model, {"history_nll_start": first, "history_nll_end": last,
                   "history_fit_windows": float(len(counts)),
                   "history_dispersion_median": float(nu.median()),
                   "history_dispersion_min": float(nu.min()),
                   "history_dispersion_max": float(nu.max())}
