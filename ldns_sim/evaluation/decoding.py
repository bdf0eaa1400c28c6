"""A closed-form ridge decoder from spike counts (or rates) to behaviour, and R².

Used to ask whether generated spikes carry the behaviour they were conditioned on: fit on real
counts -> real behaviour, apply to generated counts, score against the generated set's
conditioning behaviour.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from ldns_sim.errors import DataError
from ldns_sim.evaluation._trials import check_counts


def decoder_features(x: np.ndarray, n_history: int = 0, smooth_bins: float = 0.0) -> np.ndarray:
    """Features of one trial: ``(n_bins, n_inputs * (n_history + 1))``.

    Optional Gaussian smoothing along time (sd ``smooth_bins`` bins), then the inputs at lags
    0..n_history bins (zero before the trial starts), lag-major.
    """
    x = np.asarray(x, dtype=float)
    if smooth_bins > 0:
        x = gaussian_filter1d(x, smooth_bins, axis=0, mode="nearest")
    taps = [x]
    for lag in range(1, n_history + 1):
        shifted = np.zeros_like(x)
        shifted[lag:] = x[:-lag] if lag < len(x) else 0.0
        taps.append(shifted)
    return np.concatenate(taps, axis=1)


@dataclass(frozen=True)
class RidgeDecoder:
    """``behaviour = features(inputs) @ weights + bias``.

    Attributes
    ----------
    weights
        ``(n_inputs * (n_history + 1), n_behaviour)``.
    bias
        ``(n_behaviour,)``.
    n_history
        Past bins used as extra inputs (0 = instantaneous).
    smooth_bins
        Gaussian smoothing (sd, bins) applied to the inputs before the taps.
    alpha
        The ridge penalty the decoder was fitted with.
    """

    weights: np.ndarray
    bias: np.ndarray
    n_history: int = 0
    smooth_bins: float = 0.0
    alpha: float = 1.0

    def predict(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """One ``(n_bins_i, n_behaviour)`` prediction per ``(n_bins_i, n_inputs)`` trial."""
        n_in = self.weights.shape[0] // (self.n_history + 1)
        if check_counts(inputs, "decoder inputs") != n_in:
            raise DataError(f"decoder inputs: {inputs[0].shape[1]} channels, expected {n_in}")
        return [decoder_features(x, self.n_history, self.smooth_bins) @ self.weights + self.bias
                for x in inputs]


def fit_ridge(inputs: Sequence[np.ndarray], behaviour: Sequence[np.ndarray], alpha: float = 1.0,
              n_history: int = 0, smooth_bins: float = 0.0) -> RidgeDecoder:
    """Fit a ridge decoder in closed form, ``W = (Xc'Xc + alpha I)^-1 Xc'Yc``.

    ``Xc`` and ``Yc`` are the features and behaviour centred over all bins of all trials, so
    the bias is not penalised. ``alpha`` is in units of squared feature (count) times bins.
    """
    check_counts(inputs, "decoder inputs")
    check_counts(behaviour, "behaviour")
    if len(inputs) != len(behaviour) or any(len(a) != len(b)
                                            for a, b in zip(inputs, behaviour)):
        raise DataError("fit_ridge: inputs and behaviour must have the same trials and bins")
    if alpha < 0:
        raise DataError(f"fit_ridge: alpha must be >= 0, got {alpha}")
    x = np.concatenate([decoder_features(a, n_history, smooth_bins) for a in inputs])
    y = np.concatenate([np.asarray(b, dtype=float) for b in behaviour])
    x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
    xc, yc = x - x_mean, y - y_mean
    gram = xc.T @ xc + alpha * np.eye(x.shape[1])  # (n_features, n_features)
    weights = np.linalg.lstsq(gram, xc.T @ yc, rcond=None)[0]  # (n_features, n_behaviour)
    return RidgeDecoder(weights=weights, bias=y_mean - x_mean @ weights, n_history=n_history,
                        smooth_bins=smooth_bins, alpha=alpha)


def r2_sums(y_true: Sequence[np.ndarray], y_pred: Sequence[np.ndarray]) -> np.ndarray:
    """Per-trial sufficient statistics of R²: ``(n_trials, 4, n_behaviour)`` holding
    n_bins, sum y, sum y² and sum (y - pred)² of each trial."""
    out = []
    for t, p in zip(y_true, y_pred):
        t = np.asarray(t, dtype=float)
        out.append(np.stack([np.full(t.shape[1], len(t)), t.sum(axis=0), (t ** 2).sum(axis=0),
                             ((t - p) ** 2).sum(axis=0)]))
    return np.asarray(out)


def r2_from_sums(sums: np.ndarray, trial_weights: np.ndarray | None = None) -> float:
    """R² (mean over behaviour channels) from :func:`r2_sums`, trials weighted."""
    w = np.ones(len(sums)) if trial_weights is None else np.asarray(trial_weights, dtype=float)
    n, s1, s2, ss_res = np.tensordot(w, sums, axes=1)
    ss_tot = s2 - s1 ** 2 / n
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = np.where(ss_tot > 0, 1.0 - ss_res / ss_tot, np.nan)
    return float(np.nanmean(r2)) if np.isfinite(r2).any() else float("nan")


def r2_score(y_true: Sequence[np.ndarray], y_pred: Sequence[np.ndarray]) -> float:
    """Coefficient of determination over all bins of all trials, averaged over channels.

    Per channel ``1 - sum (y - pred)² / sum (y - mean y)²`` (sklearn's ``uniform_average``);
    channels with constant ``y`` are skipped. Unitless, at most 1, higher is better.
    """
    return r2_from_sums(r2_sums(y_true, y_pred))
