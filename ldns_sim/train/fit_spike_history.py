"""Fit the spike-history observation model on real spikes with the autoencoder's rates.

Full batch, as the reference (§4), but Adam with fewer iterations: the model has only
(n_history + 2) parameters per neuron and converges in a few hundred steps on CPU.
"""

from __future__ import annotations

import torch
from tqdm import tqdm

from ldns_sim.nn.spike_history import SpikeHistoryConfig, SpikeHistoryModel
from ldns_sim.train.config import HistoryTrain


def fit_spike_history(cfg: HistoryTrain, counts: torch.Tensor, ae_rates: torch.Tensor,
                      show_progress: bool = True):
    """counts, ae_rates: (W, N, L). Returns (model, report with initial and final NLL)."""
    model = SpikeHistoryModel(SpikeHistoryConfig(
        n_neurons=counts.shape[1], n_history=cfg.n_history, max_count=cfg.max_count))
    counts = counts.clamp(max=cfg.max_count)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    with torch.no_grad():
        first = model.nll(counts, ae_rates).item()
    for _ in tqdm(range(cfg.iterations), desc="spike history", unit="it",
                  disable=not show_progress):
        loss = model.nll(counts, ae_rates)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        last = model.nll(counts, ae_rates).item()
    return model, {"history_nll_start": first, "history_nll_end": last}
