"""Neural Latents Benchmark (NLB'21) metrics for inferred firing rates.

Own implementation of the formulas of ``nlb_tools.evaluation`` (that package pins
``pandas<=1.3.4`` and does not install next to current numpy/pandas):

* co-bps: ``(LL(rates) - LL(null)) / (n_spikes * ln 2)``, the null predicting every neuron's
  mean count per bin over the evaluated bins; Poisson log likelihoods with the ``log n!`` term
  (it cancels); rates of exactly 0 become 1e-9 as in nlb_tools.
* velocity R²: ridge regression from rates to hand velocity, fitted on training trials,
  R² (mean over channels) on evaluation trials; the penalty picked by cross-validation over
  trials from a grid, like nlb_tools' ``GridSearchCV(Ridge(), alpha=logspace(-4, 0, 9))``.
* PSTH R²: :func:`ldns_sim.evaluation.psth.psth_r2`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import gammaln

from ldns_sim.errors import DataError
from ldns_sim.evaluation.decoding import fit_ridge, r2_score
from ldns_sim.evaluation.psth import psth_r2

__all__ = ["bits_per_spike", "poisson_log_likelihood", "psth_r2", "velocity_r2"]


def _stack(x: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    if isinstance(x, np.ndarray):
        return x.reshape(-1, x.shape[-1]).astype(float)
    return np.concatenate([np.asarray(a, dtype=float) for a in x])


def poisson_log_likelihood(rates: np.ndarray, spikes: np.ndarray) -> float:
    """``sum (n log r - r - log n!)`` in nats; ``rates`` are expected counts per bin."""
    r = np.where(rates == 0, 1e-9, rates)
    return float(np.sum(spikes * np.log(r) - r - gammaln(spikes + 1.0)))


def bits_per_spike(rates: np.ndarray | Sequence[np.ndarray],
                   spikes: np.ndarray | Sequence[np.ndarray]) -> float:
    """Bits per spike of predicted rates against held-out spikes (NLB co-bps).

    Parameters
    ----------
    rates
        Expected spike counts per bin (Hz * bin_s), ``(..., n_neurons)`` or a list of
        per-trial ``(n_bins_i, n_neurons)`` arrays.
    spikes
        Observed counts with the same layout.

    Returns
    -------
    ``(LL(rates) - LL(mean-rate null)) / (n_spikes * ln 2)``, in bits per spike; 0 for the
    null itself, higher is better.
    """
    r, s = _stack(rates), _stack(spikes)
    if r.shape != s.shape:
        raise DataError(f"bits_per_spike: rates {r.shape} and spikes {s.shape} differ")
    if np.any(r < 0) or not np.all(np.isfinite(r)):
        raise DataError("bits_per_spike: rates must be finite and >= 0")
    n_spikes = s.sum()
    if n_spikes == 0:
        raise DataError("bits_per_spike: the spikes contain no spike")
    null = np.broadcast_to(s.mean(axis=0), s.shape)
    ll_model = poisson_log_likelihood(r, s)
    ll_null = poisson_log_likelihood(null, s)
    return (ll_model - ll_null) / (n_spikes * np.log(2.0))


def _cv_alpha(rates: Sequence[np.ndarray], behaviour: Sequence[np.ndarray],
              alphas: Sequence[float], n_folds: int) -> float:
    folds = np.array_split(np.arange(len(rates)), min(n_folds, len(rates)))
    scores = []
    for alpha in alphas:
        fold_r2 = []
        for held in folds:
            train = np.setdiff1d(np.arange(len(rates)), held)
            dec = fit_ridge([rates[i] for i in train], [behaviour[i] for i in train], alpha)
            fold_r2.append(r2_score([behaviour[i] for i in held],
                                    dec.predict([rates[i] for i in held])))
        scores.append(np.nanmean(fold_r2))
    return float(alphas[int(np.nanargmax(scores))])


def velocity_r2(train_rates: Sequence[np.ndarray], train_behaviour: Sequence[np.ndarray],
                eval_rates: Sequence[np.ndarray], eval_behaviour: Sequence[np.ndarray],
                alphas: Sequence[float] = tuple(np.logspace(-4, 0, 9)), n_folds: int = 5
                ) -> float:
    """R² of hand velocity decoded from rates by ridge regression (NLB's velocity R²).

    The penalty is chosen from ``alphas`` by ``n_folds``-fold cross-validation over training
    trials (skipped for a single alpha); the decoder is refitted on all training trials and
    scored on the evaluation trials. Unitless, at most 1, higher is better.
    """
    if len(train_rates) < 2 and len(alphas) > 1:
        raise DataError("velocity_r2: cross-validating alpha needs at least 2 training trials")
    alpha = alphas[0] if len(alphas) == 1 else _cv_alpha(train_rates, train_behaviour,
                                                         alphas, n_folds)
    decoder = fit_ridge(train_rates, train_behaviour, alpha)
    return r2_score(eval_behaviour, decoder.predict(eval_rates))
