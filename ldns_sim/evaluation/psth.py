"""Peri-stimulus time histograms per condition, and the PSTH R² of the Neural Latents Benchmark.

Conditions are the distinct reach directions (``SpikeData.direction_rad``); trials are aligned
at their first bin (bin 0) and truncated to a common length.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from ldns_sim.errors import DataError
from ldns_sim.evaluation._trials import Counts, check_counts, trial_weights_or_ones

NO_CONDITION = -1


def condition_ids(direction_rad: np.ndarray | None, n_trials: int,
                  reference_rad: np.ndarray | None = None, decimals: int = 6
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Group trials by direction label.

    Parameters
    ----------
    direction_rad
        ``(n_trials,)`` reach angles in radians (NaN = no label), or ``None`` (one condition).
    n_trials
        Number of trials (used when ``direction_rad`` is ``None``).
    reference_rad
        Condition angles to map onto (each trial goes to the circularly nearest one), e.g. the
        real set's conditions when grouping generated trials. ``None``: the distinct values of
        ``direction_rad`` rounded to ``decimals``.

    Returns
    -------
    ids
        ``(n_trials,)`` int condition index per trial, ``NO_CONDITION`` (-1) for unlabelled.
    angles_rad
        ``(n_conditions,)`` the angle of each condition (NaN when there are no labels).
    """
    if direction_rad is None:
        return np.zeros(n_trials, dtype=int), np.array([np.nan])
    d = np.asarray(direction_rad, dtype=float)
    labelled = np.isfinite(d)
    if reference_rad is None:
        reference_rad = np.unique(np.round(d[labelled], decimals))
    reference_rad = np.asarray(reference_rad, dtype=float)
    ids = np.full(len(d), NO_CONDITION)
    if len(reference_rad) and labelled.any():
        gap = np.angle(np.exp(1j * (d[labelled, None] - reference_rad[None, :])))
        ids[labelled] = np.argmin(np.abs(gap), axis=1)
    return ids, reference_rad


def psth(counts: Counts, bin_s: float, ids: np.ndarray, n_conditions: int,
         n_bins: int | None = None, smooth_s: float = 0.0,
         trial_weights: np.ndarray | None = None) -> np.ndarray:
    """Trial-averaged firing rate per condition, aligned at bin 0.

    Parameters
    ----------
    counts
        One ``(n_bins_i, n_neurons)`` array per trial.
    ids
        ``(n_trials,)`` condition index per trial (from :func:`condition_ids`); trials with
        ``NO_CONDITION`` are left out.
    n_bins
        Length of the PSTH; ``None`` = the shortest trial. Longer trials are truncated.
    smooth_s
        Standard deviation (s) of a Gaussian smoothing along time, 0 for none.

    Returns
    -------
    ``(n_conditions, n_bins, n_neurons)`` rates in Hz; NaN for a condition with no trial.
    """
    n_neurons = check_counts(counts)
    w = trial_weights_or_ones(trial_weights, len(counts))
    shortest = min(len(c) for c in counts)
    n_bins = shortest if n_bins is None else int(n_bins)
    if n_bins < 1 or n_bins > shortest:
        raise DataError(f"psth: n_bins must be in 1..{shortest} (the shortest trial), "
                        f"got {n_bins}")
    total = np.zeros((n_conditions, n_bins, n_neurons))
    weight = np.zeros(n_conditions)
    for wi, cid, c in zip(w, ids, counts):
        if cid != NO_CONDITION:
            total[cid] += wi * np.asarray(c[:n_bins], dtype=float)
            weight[cid] += wi
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = total / weight[:, None, None] / bin_s
    if smooth_s > 0:
        rates = gaussian_filter1d(rates, smooth_s / bin_s, axis=1, mode="nearest")
    return rates


def psth_r2(psth_true: np.ndarray, psth_pred: np.ndarray) -> float:
    """R² of predicted against true PSTHs, the Neural Latents Benchmark convention.

    Conditions and time bins are stacked into samples; for each neuron
    ``R² = 1 - sum (true - pred)² / sum (true - mean(true))²``; the result is the mean over
    neurons. Conditions missing (NaN) in either input are skipped, as are neurons whose true
    PSTH is constant (NLB's sklearn call would score those 0 or 1). Unitless, at most 1,
    higher is better.
    """
    t = np.asarray(psth_true, dtype=float).reshape(-1, psth_true.shape[-1])
    p = np.asarray(psth_pred, dtype=float).reshape(-1, psth_pred.shape[-1])
    keep = np.isfinite(t).all(axis=1) & np.isfinite(p).all(axis=1)
    t, p = t[keep], p[keep]
    if len(t) == 0:
        return float("nan")
    ss_tot = ((t - t.mean(axis=0)) ** 2).sum(axis=0)
    ss_res = ((t - p) ** 2).sum(axis=0)
    varying = ss_tot > 0
    if not varying.any():
        return float("nan")
    return float(np.mean(1.0 - ss_res[varying] / ss_tot[varying]))
