"""Shared helpers over lists of per-trial count arrays: validation, weights, re-binning."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ldns_sim.errors import DataError

Counts = Sequence[np.ndarray]
"""One ``(n_bins_i, n_neurons)`` array per trial."""


def check_counts(counts: Counts, name: str = "counts") -> int:
    """Validate a list of per-trial count arrays and return ``n_neurons``."""
    if len(counts) == 0:
        raise DataError(f"{name}: no trials; expected at least one (n_bins, n_neurons) array")
    n_neurons = None
    for i, c in enumerate(counts):
        c = np.asarray(c)
        if c.ndim != 2:
            raise DataError(f"{name}[{i}]: shape {c.shape}, expected (n_bins, n_neurons)")
        if n_neurons is None:
            n_neurons = c.shape[1]
        elif c.shape[1] != n_neurons:
            raise DataError(f"{name}[{i}]: {c.shape[1]} neurons, expected {n_neurons}")
    return int(n_neurons)


def trial_weights_or_ones(trial_weights: np.ndarray | None, n_trials: int) -> np.ndarray:
    """``(n_trials,)`` float weights: multiplicities of a bootstrap resample, or ones."""
    if trial_weights is None:
        return np.ones(n_trials)
    w = np.asarray(trial_weights, dtype=float)
    if w.shape != (n_trials,) or np.any(w < 0):
        raise DataError(f"trial_weights: expected {n_trials} non-negative numbers, "
                        f"got shape {w.shape}")
    return w


def concat(counts: Counts, trial_weights: np.ndarray | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    """All bins stacked, ``(n_bins_total, n_neurons)`` float64, and ``(n_bins_total,)`` weights."""
    w = trial_weights_or_ones(trial_weights, len(counts))
    stacked = np.concatenate([np.asarray(c, dtype=np.float64) for c in counts], axis=0)
    bin_w = np.repeat(w, [len(c) for c in counts])
    return stacked, bin_w


def rebin(counts: Counts, bins_per_window: int) -> list[np.ndarray]:
    """Sum ``bins_per_window`` consecutive bins within each trial; a trailing remainder is dropped.

    Trials shorter than one window become ``(0, n_neurons)`` arrays.
    """
    if bins_per_window < 1:
        raise DataError(f"bins_per_window: expected an integer >= 1, got {bins_per_window}")
    out = []
    for c in counts:
        c = np.asarray(c)
        n_win = len(c) // bins_per_window
        out.append(c[: n_win * bins_per_window].reshape(n_win, bins_per_window, c.shape[1])
                   .sum(axis=1))
    return out


def resample_weights(n_trials: int, rng: np.random.Generator) -> np.ndarray:
    """Multiplicities of a bootstrap resample of ``n_trials`` trials (with replacement)."""
    return np.bincount(rng.integers(0, n_trials, size=n_trials), minlength=n_trials).astype(float)
