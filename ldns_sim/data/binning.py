"""Spike times to counts, behaviour to bin instants, and rebinning (numpy only)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

COUNT_DTYPE = np.int32


def bin_spike_times(spike_times_s: Sequence[np.ndarray], starts_s: np.ndarray,
                    n_bins: np.ndarray, bin_s: float) -> list[np.ndarray]:
    """Count spikes in consecutive bins of several windows.

    Bin k of window i is ``[starts_s[i] + k bin_s, starts_s[i] + (k + 1) bin_s)``.

    Parameters
    ----------
    spike_times_s
        One sorted ``(n_spikes_u,)`` array of spike times (s) per unit.
    starts_s
        ``(n_windows,)`` window start times in seconds.
    n_bins
        ``(n_windows,)`` number of bins per window (each >= 1).
    bin_s
        Bin width in seconds.

    Returns
    -------
    list of np.ndarray
        One ``(n_bins[i], n_units)`` int32 count array per window.
    """
    n_bins = np.asarray(n_bins, dtype=int)
    edges = [s + np.arange(n + 1) * bin_s for s, n in zip(np.asarray(starts_s), n_bins)]
    all_edges = np.concatenate(edges)  # (sum(n_bins + 1),)
    bounds = np.concatenate([[0], np.cumsum(n_bins + 1)])
    below = np.empty((len(all_edges), len(spike_times_s)), dtype=np.int64)
    for u, times in enumerate(spike_times_s):
        below[:, u] = np.searchsorted(times, all_edges, side="left")  # spikes before each edge
    return [np.diff(below[a:b], axis=0).astype(COUNT_DTYPE)
            for a, b in zip(bounds[:-1], bounds[1:])]


def interpolate_behaviour(times_s: np.ndarray, values: np.ndarray, query_s: np.ndarray,
                          max_gap_s: float) -> np.ndarray:
    """Linear interpolation of a sampled signal at new instants, NaN where it is unknown.

    NaN samples are skipped; a query instant between two finite samples more than
    ``max_gap_s`` apart, or outside the sampled range, gives NaN.

    Parameters
    ----------
    times_s
        ``(n_samples,)`` increasing sample times in seconds.
    values
        ``(n_samples, n_channels)`` samples.
    query_s
        ``(n_query,)`` instants in seconds.
    max_gap_s
        Longest gap between finite samples that interpolation bridges.

    Returns
    -------
    np.ndarray
        ``(n_query, n_channels)`` float32.
    """
    out = np.full((len(query_s), values.shape[1]), np.nan, dtype=np.float32)
    for ch in range(values.shape[1]):
        finite = np.isfinite(values[:, ch])
        t, v = times_s[finite], values[finite, ch]
        if len(t) == 0:
            continue
        right = np.clip(np.searchsorted(t, query_s, side="left"), 0, len(t) - 1)
        left = np.clip(np.searchsorted(t, query_s, side="right") - 1, 0, len(t) - 1)
        known = (query_s >= t[0]) & (query_s <= t[-1]) & (t[right] - t[left] <= max_gap_s)
        out[known, ch] = np.interp(query_s[known], t, v)
    return out


def rebin_sum(x: np.ndarray, factor: int) -> np.ndarray:
    """Sum groups of ``factor`` consecutive rows; a remainder at the end is dropped.

    ``(n_bins, n_channels)`` -> ``(n_bins // factor, n_channels)``.
    """
    n_out = len(x) // factor
    return x[: n_out * factor].reshape(n_out, factor, x.shape[1]).sum(axis=1)


def rebin_mean(x: np.ndarray, factor: int) -> np.ndarray:
    """Average groups of ``factor`` consecutive rows (remainder dropped), as float32."""
    n_out = len(x) // factor
    return x[: n_out * factor].reshape(n_out, factor, x.shape[1]).mean(axis=1).astype(np.float32)


def integer_ratio(numerator: float, denominator: float, tol: float = 1e-6) -> int | None:
    """``numerator / denominator`` as an int if it is one (within ``tol``), else None."""
    ratio = numerator / denominator
    nearest = round(ratio)
    return int(nearest) if abs(ratio - nearest) <= tol * max(1.0, abs(ratio)) else None
