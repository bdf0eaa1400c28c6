"""Temporal auto- and cross-correlations of spike counts (biased, mean-subtracted per trial).

For neurons i, j and lag l (in bins) the cross-covariance is
``sum_trials sum_t x_i(t) x_j(t + l) / sum_trials n_bins``, where ``x`` is each trial's counts
minus that trial's mean, and products never span two trials (the biased estimator, as in the
LDNS figures). Correlations divide by ``sqrt(cov_ii(0) cov_jj(0))``, so they are unitless and
the zero-lag autocorrelation is 1.
"""

from __future__ import annotations

import numpy as np

from ldns_sim.evaluation._trials import Counts, check_counts, trial_weights_or_ones


def _fft_len(n: int) -> int:
    return 1 << int(np.ceil(np.log2(max(n, 1))))


def autocovariance_trial_sums(counts: Counts, max_lag: int) -> np.ndarray:
    """Per-trial lagged products ``sum_t x(t) x(t + l)``, l = 0..max_lag: ``(n_trials, max_lag + 1,
    n_neurons)``, with ``x`` the trial's mean-subtracted counts."""
    n_neurons = check_counts(counts)
    out = np.zeros((len(counts), max_lag + 1, n_neurons))
    for t, trial in enumerate(counts):
        x = np.asarray(trial, dtype=float)
        x = x - x.mean(axis=0)
        n_fft = _fft_len(len(x) + max_lag + 1)
        spec = np.fft.rfft(x, n=n_fft, axis=0)  # (n_freq, n_neurons)
        acov = np.fft.irfft(np.abs(spec) ** 2, n=n_fft, axis=0)  # (n_fft, n_neurons)
        n_keep = min(max_lag + 1, len(x))
        out[t, :n_keep] = acov[:n_keep]
    return out


def autocorrelation_from_sums(sums: np.ndarray, trial_weights: np.ndarray | None = None
                              ) -> np.ndarray:
    """``(max_lag + 1, n_neurons)`` autocorrelation from :func:`autocovariance_trial_sums`."""
    w = trial_weights_or_ones(trial_weights, len(sums))
    acov = np.tensordot(w, sums, axes=1)  # (max_lag + 1, n_neurons); common 1/n_bins cancels
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(acov[0] > 0, acov / acov[0], np.nan)


def autocorrelation(counts: Counts, max_lag: int,
                    trial_weights: np.ndarray | None = None) -> np.ndarray:
    """Per-neuron temporal autocorrelation at lags ``0..max_lag`` bins.

    Returns ``(max_lag + 1, n_neurons)``, unitless, 1 at lag 0 and NaN for neurons that never
    vary. Symmetric in the lag, so negative lags are not returned. As an error against data
    (RMSE over lags 1..max_lag), lower is better.
    """
    return autocorrelation_from_sums(autocovariance_trial_sums(counts, max_lag), trial_weights)


def cross_correlation(counts: Counts, max_lag: int,
                      neurons: np.ndarray | None = None) -> np.ndarray:
    """Temporal cross-correlations between the selected neurons at lags ``-max_lag..max_lag``.

    Returns ``(2 * max_lag + 1, n_sel, n_sel)``; entry ``[max_lag + l, i, j]`` correlates
    neuron i at time t with neuron j at time t + l, so ``[max_lag + l, i, j] ==
    [max_lag - l, j, i]`` and the diagonal holds the autocorrelations. Cost grows with
    ``n_sel ** 2``: select a subset for large populations.
    """
    n_neurons = check_counts(counts)
    sel = np.arange(n_neurons) if neurons is None else np.asarray(neurons, dtype=int)
    acc = np.zeros((2 * max_lag + 1, len(sel), len(sel)))
    for trial in counts:
        x = np.asarray(trial, dtype=float)[:, sel]
        x = x - x.mean(axis=0)
        n_fft = _fft_len(len(x) + max_lag + 1)
        spec = np.fft.rfft(x, n=n_fft, axis=0)  # (n_freq, n_sel)
        cross = np.fft.irfft(np.conj(spec)[:, :, None] * spec[:, None, :], n=n_fft, axis=0)
        acc += np.concatenate([cross[n_fft - max_lag:], cross[: max_lag + 1]], axis=0)
    sd = np.sqrt(np.diagonal(acc[max_lag]))
    with np.errstate(invalid="ignore", divide="ignore"):
        return acc / np.outer(sd, sd)[None]
