"""GPFA (Yu et al. 2009) as a generative baseline, fitted with Elephant's maintained ``GPFA``.

Elephant fits the model to square-root spike counts ``y = sqrt(counts)``:
``y_t = C x_t + d + e_t``, ``e_t ~ N(0, R)`` (R diagonal), each latent an independent
Gaussian process with covariance ``(1 - eps) exp(-gamma (t1 - t2)² / 2) + eps delta(t1, t2)``
over bins. To generate a trial we draw the latents from that prior and the observation noise
from ``R``, square ``y`` and round it stochastically to an integer (``floor(y²)`` plus one with
probability ``frac(y²)``). The model's fitted mean and covariance of ``y`` make ``E[y²]`` equal
each neuron's mean count, and stochastic rounding keeps that mean (clipping ``y`` at 0 or
rounding to the nearest integer would lose about half the spikes at low rates). Neurons silent
in every training trial (which Elephant drops) stay silent.
Optional: needs ``pip install elephant scikit-learn``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ldns_sim.core import SpikeData
from ldns_sim.errors import DataError
from ldns_sim.evaluation.isi import counts_to_spike_times


@dataclass(frozen=True)
class GpfaParams:
    """Fitted GPFA parameters for the active neurons (``active`` marks them)."""

    loading: np.ndarray  # (n_active, n_latents) C
    offset: np.ndarray  # (n_active,) d
    noise_var: np.ndarray  # (n_active,) diag(R)
    gamma: np.ndarray  # (n_latents,) squared inverse timescale, per bin²
    eps: np.ndarray  # (n_latents,) GP noise variance
    active: np.ndarray  # (n_neurons,) bool


def _spike_trains(data: SpikeData) -> list[list]:
    import neo
    import quantities as pq

    trials = []
    for counts in data.counts:
        t_stop = len(counts) * data.bin_s
        trials.append([neo.SpikeTrain(counts_to_spike_times(counts[:, n], data.bin_s) * pq.s,
                                      t_start=0.0 * pq.s, t_stop=t_stop * pq.s)
                       for n in range(data.n_neurons)])
    return trials


def fit_gpfa(train: SpikeData, n_latents: int = 8, em_max_iters: int = 100) -> GpfaParams:
    """Fit GPFA with Elephant at the data's own bin width (model bin = ``train.bin_s``)."""
    try:
        import quantities as pq
        from elephant.gpfa import GPFA
    except ImportError as err:
        raise DataError(f"the GPFA baseline needs elephant and scikit-learn ({err}); "
                        "pip install elephant scikit-learn") from err
    gpfa = GPFA(bin_size=train.bin_s * pq.s, x_dim=n_latents, em_max_iters=em_max_iters)
    try:
        gpfa.fit(_spike_trains(train))
    except ValueError as err:
        raise DataError(f"{train.source}: GPFA could not be fitted: {err}") from err
    p = gpfa.params_estimated
    return GpfaParams(loading=np.asarray(p["C"]), offset=np.asarray(p["d"]).ravel(),
                      noise_var=np.diag(np.asarray(p["R"])).copy(),
                      gamma=np.asarray(p["gamma"]).ravel(), eps=np.asarray(p["eps"]).ravel(),
                      active=np.asarray(gpfa.has_spikes_bool, dtype=bool))


def sample_gpfa(params: GpfaParams, n_bins: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_bins, n_neurons)`` counts of one trial drawn from the GPFA prior."""
    lag = np.arange(n_bins)[:, None] - np.arange(n_bins)[None, :]
    latents = np.empty((n_bins, len(params.gamma)))
    for k, (gamma, eps) in enumerate(zip(params.gamma, params.eps)):
        cov = (1 - eps) * np.exp(-0.5 * gamma * lag ** 2) + eps * np.eye(n_bins)
        latents[:, k] = np.linalg.cholesky(cov + 1e-9 * np.eye(n_bins)) @ \
            rng.standard_normal(n_bins)
    y = latents @ params.loading.T + params.offset  # (n_bins, n_active), sqrt counts
    y = y + rng.standard_normal(y.shape) * np.sqrt(params.noise_var)
    counts = np.zeros((n_bins, len(params.active)), dtype=np.int64)
    squared = y ** 2
    counts[:, params.active] = np.floor(squared) + (rng.random(y.shape) < squared % 1.0)
    return counts


def gpfa(train: SpikeData, like: SpikeData, rng: np.random.Generator, n_latents: int = 8,
         em_max_iters: int = 100) -> SpikeData:
    """GPFA baseline: fit on ``train``, draw one trial per trial of ``like`` (same lengths)."""
    params = fit_gpfa(train, n_latents, em_max_iters)
    counts = tuple(sample_gpfa(params, len(c), rng).astype(np.int16) for c in like.counts)
    return replace(like, counts=counts, true_rates=None,
                   source=f"baseline:gpfa (like {like.source})")
