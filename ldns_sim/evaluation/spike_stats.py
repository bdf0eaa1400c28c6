"""Single-bin statistics of spike counts: rates, Fano factors, pairwise and population statistics.

Every function takes ``counts``, one ``(n_bins_i, n_neurons)`` integer array per trial
(``SpikeData.counts``), and an optional ``trial_weights`` ``(n_trials,)``: how many times each
trial counts (the multiplicities of a bootstrap resample; ``None`` means once each).
"""

from __future__ import annotations

import numpy as np

from ldns_sim.errors import DataError
from ldns_sim.evaluation._trials import Counts, check_counts, concat, rebin, trial_weights_or_ones


def firing_rate_hz(counts: Counts, bin_s: float,
                   trial_weights: np.ndarray | None = None) -> np.ndarray:
    """Per-neuron mean firing rate: total spikes / total time.

    Returns ``(n_neurons,)`` in Hz. As an error, closer to the data is better.
    """
    check_counts(counts)
    w = trial_weights_or_ones(trial_weights, len(counts))
    spikes = sum(wi * np.asarray(c, dtype=float).sum(axis=0) for wi, c in zip(w, counts))
    n_bins = float(np.dot(w, [len(c) for c in counts]))
    return spikes / (n_bins * bin_s)


def fano_factor(counts: Counts, trial_weights: np.ndarray | None = None) -> np.ndarray:
    """Per-neuron Fano factor of per-bin counts, ``var / mean`` over all bins of all trials.

    Returns ``(n_neurons,)``, unitless (1 for Poisson); NaN for a silent neuron.
    The variance is the population variance (ddof = 0) of the pooled bins, so it mixes
    across-time rate changes with spiking noise, as in the LDNS figures.
    """
    check_counts(counts)
    x, bw = concat(counts, trial_weights)
    mean = bw @ x / bw.sum()
    var = bw @ (x - mean) ** 2 / bw.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(mean > 0, var / mean, np.nan)


def spike_count_correlation(counts: Counts, bins_per_window: int = 1,
                            trial_weights: np.ndarray | None = None) -> np.ndarray:
    """Pearson correlation matrix of spike counts across neurons.

    Counts are first summed over ``bins_per_window`` consecutive bins within each trial
    (1 = the model's bin), then all windows of all trials are pooled, as ``np.corrcoef`` on the
    concatenated trials does in the LDNS reference. Returns ``(n_neurons, n_neurons)``,
    unitless in [-1, 1], with NaN rows and columns for neurons that never vary.
    """
    check_counts(counts)
    windows = rebin(counts, bins_per_window) if bins_per_window > 1 else counts
    total_w, s1, s2 = count_moments(windows, trial_weights)
    if total_w <= 1:
        raise DataError(f"spike_count_correlation: need at least 2 windows of "
                        f"{bins_per_window} bins, got {total_w:g}")
    mean = s1 / total_w
    cov = s2 / total_w - np.outer(mean, mean)  # (n_neurons, n_neurons)
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.outer(sd, sd)
    corr[:, sd == 0] = np.nan
    corr[sd == 0, :] = np.nan
    np.fill_diagonal(corr, np.where(sd > 0, 1.0, np.nan))
    return corr


def count_moments(counts: Counts, trial_weights: np.ndarray | None = None,
                  block_bins: int = 50_000) -> tuple[float, np.ndarray, np.ndarray]:
    """Weighted bin count, ``(n_neurons,)`` sum and ``(n_neurons, n_neurons)`` sum of outer
    products of the count vectors of all bins, accumulated in blocks of ``block_bins`` bins.

    Counts and bootstrap multiplicities are integers, so float64 sums are exact and the
    uncentred covariance ``s2 / n - mean mean'`` loses nothing to cancellation.
    """
    n_neurons = check_counts(counts)
    w = trial_weights_or_ones(trial_weights, len(counts))
    s1, s2 = np.zeros(n_neurons), np.zeros((n_neurons, n_neurons))
    total_w = 0.0
    start = 0
    while start < len(counts):
        stop, n_rows = start, 0
        while stop < len(counts) and (n_rows == 0 or n_rows + len(counts[stop]) <= block_bins):
            n_rows += len(counts[stop])
            stop += 1
        x, bw = concat(counts[start:stop], w[start:stop])  # (n_rows, n_neurons), (n_rows,)
        total_w += bw.sum()
        xt_w = np.ascontiguousarray(x.T) * bw  # (n_neurons, n_rows); contiguous for BLAS
        s1 += xt_w.sum(axis=1)
        s2 += xt_w @ x
        start = stop
    return total_w, s1, s2


def population_counts(counts: Counts) -> np.ndarray:
    """``(n_bins_total,)`` integer population spike count (sum over neurons) of every bin."""
    check_counts(counts)
    return np.concatenate([np.asarray(c).sum(axis=1) for c in counts]).astype(np.int64)


def population_count_histogram(counts: Counts, max_count: int,
                               trial_weights: np.ndarray | None = None) -> np.ndarray:
    """Normalised histogram of population counts over the integers ``0..max_count``.

    Returns ``(max_count + 1,)`` probabilities; counts above ``max_count`` go in the last entry.
    """
    check_counts(counts)
    w = trial_weights_or_ones(trial_weights, len(counts))
    hist = np.zeros(max_count + 1)
    for wi, c in zip(w, counts):
        pop = np.minimum(np.asarray(c).sum(axis=1), max_count).astype(np.int64)
        hist += wi * np.bincount(pop, minlength=max_count + 1)
    return hist / hist.sum()


def kde_on_integers(value_counts: np.ndarray, max_count: int) -> np.ndarray:
    """Gaussian KDE (Scott bandwidth) of integer data given as multiplicities, at ``0..max_count``.

    ``value_counts[v]`` is how many samples equal ``v``. The result equals
    ``scipy.stats.gaussian_kde(samples)(range(max_count + 1))`` normalised to sum to 1 (the
    bandwidth is ``n**(-1/5)`` times the sample standard deviation with ddof = 1), but costs
    O(n_values * max_count) instead of O(n_samples * max_count). If every sample has the same
    value (zero bandwidth, where scipy raises) the result is that point mass.
    """
    v = np.arange(len(value_counts), dtype=float)
    n = value_counts.sum()
    mean = value_counts @ v / n
    var = value_counts @ (v - mean) ** 2 / max(n - 1.0, 1.0)
    grid = np.arange(max_count + 1, dtype=float)
    if var <= 0:
        density = (np.abs(grid - mean) < 0.5).astype(float)
    else:
        bw = n ** (-1.0 / 5.0) * np.sqrt(var)
        density = np.exp(-0.5 * ((grid[:, None] - v[None, :]) / bw) ** 2) @ value_counts
    total = density.sum()
    if total <= 0:
        raise DataError(f"population counts lie outside 0..{max_count}; raise max_count")
    return density / total


def population_count_density(counts: Counts, max_count: int,
                             trial_weights: np.ndarray | None = None) -> np.ndarray:
    """The LDNS population-spike-count density: Scott-bandwidth KDE at the integers.

    Sum counts over neurons in every bin, fit a Gaussian KDE (Scott's rule) and evaluate it at
    ``0..max_count``, normalised to sum to 1. ``max_count`` must be shared by every set that
    is compared (the reference takes the maximum over all methods). Returns
    ``(max_count + 1,)`` probabilities.
    """
    check_counts(counts)
    w = trial_weights_or_ones(trial_weights, len(counts))
    top = max(int(population_counts(counts).max()), max_count)
    value_counts = np.zeros(top + 1)
    for wi, c in zip(w, counts):
        value_counts += wi * np.bincount(np.asarray(c).sum(axis=1).astype(np.int64),
                                         minlength=top + 1)
    return kde_on_integers(value_counts, max_count)


def kl_divergence(p_model: np.ndarray, p_data: np.ndarray) -> float:
    """``KL(model || data) = sum p_model * ln(p_model / p_data)`` in nats, as in LDNS.

    Terms where ``p_model == 0`` are dropped (``nansum``); ``p_data == 0`` where
    ``p_model > 0`` gives ``inf``. 0 for identical distributions, lower is better, unbounded.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.nansum(p_model * np.log(p_model / p_data)))


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """Total-variation distance ``0.5 * sum |p - q|``: in [0, 1], 0 when equal, lower is better."""
    return float(0.5 * np.abs(np.asarray(p) - np.asarray(q)).sum())


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence in bits: in [0, 1], 0 when equal, lower is better."""
    p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_pm = np.nansum(np.where(p > 0, p * np.log2(p / m), 0.0))
        kl_qm = np.nansum(np.where(q > 0, q * np.log2(q / m), 0.0))
    return float(0.5 * kl_pm + 0.5 * kl_qm)


def k_probabilities(counts: Counts, trial_weights: np.ndarray | None = None) -> np.ndarray:
    """Spike-GAN's k-statistics: ``P(k neurons fire at least once in a bin)``, k = 0..n_neurons.

    Returns ``(n_neurons + 1,)`` probabilities over all bins of all trials.
    """
    n_neurons = check_counts(counts)
    w = trial_weights_or_ones(trial_weights, len(counts))
    hist = np.zeros(n_neurons + 1)
    for wi, c in zip(w, counts):
        hist += wi * np.bincount((np.asarray(c) > 0).sum(axis=1), minlength=n_neurons + 1)
    return hist / hist.sum()
