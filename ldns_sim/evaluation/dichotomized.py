"""Discretised (dichotomized) Gaussian model of spike counts, after Macke et al. (2009).

Each neuron's count in a bin is a thresholded latent Gaussian:
``count_i = #{a : u_i > tau_ia}`` with ``u ~ N(0, Lambda)``, ``diag(Lambda) = 1`` and
thresholds ``tau_ia = Phi^-1(P(count_i < a))``, a = 1..max count. This reproduces each
neuron's empirical count distribution exactly. The latent correlation ``lambda_ij`` of every
pair is found by bisection so that the model's count covariance,
``sum_a sum_b [Phi2(-tau_ia, -tau_jb; lambda) - Phi(-tau_ia) Phi(-tau_jb)]``, equals the target
``rho_ij sd_i sd_j``. The bivariate-normal term uses the identity
``Phi2(h, k; r) - Phi(h) Phi(k) = (1 / 2 pi) int_0^r exp(-(h² - 2hks + k²) / (2(1 - s²)))
/ sqrt(1 - s²) ds`` with Gauss-Legendre quadrature. A ``Lambda`` that is not positive definite
is projected (eigenvalues clipped, unit diagonal restored). Bins are independent: the model has
no temporal structure and no time-varying rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

from ldns_sim.evaluation._trials import Counts, check_counts
from ldns_sim.evaluation.spike_stats import spike_count_correlation

_FAR = 8.0  # thresholds beyond +-8 sd are as good as infinite
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(16)
_NODES, _WEIGHTS = 0.5 * (_NODES + 1.0), 0.5 * _WEIGHTS  # on [0, 1]


@dataclass(frozen=True)
class DiscretisedGaussian:
    """A fitted model: ``(n_neurons, max_count)`` thresholds and the latent correlation."""

    thresholds: np.ndarray  # (n_neurons, max_count); _FAR where a count is never reached
    latent_corr: np.ndarray  # (n_neurons, n_neurons), positive definite, unit diagonal

    def sample(self, n_bins: int, rng: np.random.Generator) -> np.ndarray:
        """``(n_bins, n_neurons)`` int64 counts, bins independent."""
        chol = np.linalg.cholesky(self.latent_corr)
        u = rng.standard_normal((n_bins, len(chol))) @ chol.T  # (n_bins, n_neurons)
        return (u[:, :, None] > self.thresholds[None]).sum(axis=2)


def _thresholds(x: np.ndarray) -> np.ndarray:
    """``(n_neurons, max_count)`` thresholds from ``(n_bins, n_neurons)`` counts."""
    top = max(int(x.max()), 1)
    below = np.stack([(x < a).mean(axis=0) for a in range(1, top + 1)], axis=1)
    return np.clip(ndtri(below), -_FAR, _FAR)


def _pair_covariance(h: np.ndarray, k: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """Count covariance of pairs at latent correlations ``lam``.

    ``h``: ``(n_pairs, K)`` thresholds of neuron i negated, ``k`` likewise for j, ``lam``
    ``(n_pairs,)``.
    """
    r = lam[:, None] * _NODES[None, :]  # (n_pairs, G)
    hh = h[:, :, None, None] ** 2  # (P, K, 1, 1)
    kk = k[:, None, :, None] ** 2  # (P, 1, K, 1)
    hk = h[:, :, None, None] * k[:, None, :, None]  # (P, K, K, 1)
    one_m = 1.0 - r[:, None, None, :] ** 2  # (P, 1, 1, G)
    f = np.exp(-(hh - 2.0 * hk * r[:, None, None, :] + kk) / (2.0 * one_m)) / np.sqrt(one_m)
    return lam * (f @ _WEIGHTS).sum(axis=(1, 2)) / (2.0 * np.pi)


def _solve_latent(h: np.ndarray, k: np.ndarray, target: np.ndarray,
                  n_iter: int = 26) -> np.ndarray:
    lo, hi = np.full(len(target), -0.999), np.full(len(target), 0.999)
    for _ in range(n_iter):
        mid = 0.5 * (lo + hi)
        too_low = _pair_covariance(h, k, mid) < target
        lo, hi = np.where(too_low, mid, lo), np.where(too_low, hi, mid)
    return 0.5 * (lo + hi)


def _nearest_correlation(lam: np.ndarray, min_eig: float = 1e-4) -> np.ndarray:
    vals, vecs = np.linalg.eigh(lam)
    if vals.min() >= min_eig:
        return lam
    fixed = (vecs * np.clip(vals, min_eig, None)) @ vecs.T
    d = np.sqrt(np.diag(fixed))
    return fixed / np.outer(d, d)


def fit_discretised_gaussian(counts: Counts, block_pairs: int = 512) -> DiscretisedGaussian:
    """Fit the count marginals and pairwise count correlations of ``counts``.

    Parameters
    ----------
    counts
        One ``(n_bins_i, n_neurons)`` array per trial; all bins are pooled.
    block_pairs
        Pairs solved at once (memory ~ block_pairs * max_count² * 24 floats).
    """
    n_neurons = check_counts(counts)
    x = np.concatenate([np.asarray(c) for c in counts]).astype(np.int64)
    thresholds = _thresholds(x)
    corr = np.nan_to_num(spike_count_correlation(counts), nan=0.0)
    sd = x.std(axis=0)
    rows, cols = np.tril_indices(n_neurons, k=-1)
    lam = np.eye(n_neurons)
    for start in range(0, len(rows), block_pairs):
        i, j = rows[start:start + block_pairs], cols[start:start + block_pairs]
        target = corr[i, j] * sd[i] * sd[j]
        solved = _solve_latent(-thresholds[i], -thresholds[j], target)
        solved[(sd[i] == 0) | (sd[j] == 0)] = 0.0
        lam[i, j] = lam[j, i] = solved
    return DiscretisedGaussian(thresholds=thresholds, latent_corr=_nearest_correlation(lam))
