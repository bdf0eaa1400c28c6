"""The LDNS paper's Table-1 errors and the Pearson r of its Lorenz numbers, replicated exactly.

These conventions are odd in places (the correlation RMSE averages over all N² entries of a
lower-triangular matrix, zeros included; the correlation r is computed on those zero-padded
matrices); they are kept so our numbers compare with the paper's. See docs/evaluation.md.
"""

from __future__ import annotations

import numpy as np


def _lower_triangle_zeroed(corr: np.ndarray) -> np.ndarray:
    """The matrix with its diagonal and upper triangle set to 0 (``np.tril(k=-1)``)."""
    return np.tril(np.asarray(corr, dtype=float), k=-1)


def correlation_rmse(corr_model: np.ndarray, corr_data: np.ndarray) -> float:
    """LDNS pairwise-correlation RMSE: ``sqrt(nanmean((tril(Cm, -1) - tril(Cd, -1))²))``.

    The mean runs over all ``N²`` entries, the zeroed diagonal and upper triangle included,
    so it is about 0.705 times the RMSE over the ``N(N-1)/2`` unique pairs (for large N).
    NaN entries (silent neurons) are skipped. Unitless, lower is better.
    """
    diff = _lower_triangle_zeroed(corr_model) - _lower_triangle_zeroed(corr_data)
    return float(np.sqrt(np.nanmean(diff ** 2)))


def correlation_pearson_r(corr_model: np.ndarray, corr_data: np.ndarray) -> float:
    """Pearson r of the flattened ``tril(k=-1)`` matrices, as in the LDNS Lorenz numbers.

    The zeroed diagonal and upper triangle match exactly and inflate r; use
    :func:`pearson_r` on the unique pairs for an honest figure.
    """
    return pearson_r(_lower_triangle_zeroed(corr_model).ravel(),
                     _lower_triangle_zeroed(corr_data).ravel())


def unique_pairs(corr: np.ndarray) -> np.ndarray:
    """``(N(N-1)/2,)`` the strictly-lower-triangle entries of a correlation matrix."""
    rows, cols = np.tril_indices(corr.shape[0], k=-1)
    return np.asarray(corr)[rows, cols]


def rmse(model: np.ndarray, data: np.ndarray) -> float:
    """``sqrt(nanmean((model - data)²))``, entries that are NaN in either skipped.

    Used for the mean/std ISI RMSE across neurons (seconds), the rate RMSE (Hz) and the
    like. Same units as the inputs, lower is better.
    """
    diff = np.asarray(model, dtype=float) - np.asarray(data, dtype=float)
    if not np.isfinite(diff).any():
        return float("nan")
    return float(np.sqrt(np.nanmean(diff ** 2)))


def pearson_r(model: np.ndarray, data: np.ndarray) -> float:
    """Pearson correlation of two statistics over the entries finite in both.

    Unitless in [-1, 1], 1 = the statistics agree up to a positive affine map, higher is
    better; NaN when fewer than two entries remain or either side is constant.
    """
    a = np.asarray(model, dtype=float).ravel()
    b = np.asarray(data, dtype=float).ravel()
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    a, b = a - a.mean(), b - b.mean()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))
