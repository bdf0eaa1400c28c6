"""The Wiener filter: velocity as a linear function of the last few bins of counts.

``v_t = b + sum_{k=0}^{n_taps-1} W_k y_{t-k}`` (Carmena et al. 2003; Serruya et al. 2002), fitted
by ridge regression on all bins of all trials, with bins before a trial's start taken as zero
(the same zero history ``reset`` gives a stream). The ridge penalty is relative:
``alpha = ridge * trace(Xc' Xc) / n_features``, so one value suits any rate and population size.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ldns_sim.decoders.base import Decoder, check_trials
from ldns_sim.errors import ConfigError


def lagged(counts: np.ndarray, n_taps: int) -> np.ndarray:
    """``(n_bins, n_taps * n_neurons)`` features: counts at lags 0..n_taps-1, lag-major."""
    counts = np.asarray(counts, dtype=np.float64)
    out = np.zeros((len(counts), n_taps * counts.shape[1]))
    n = counts.shape[1]
    for k in range(n_taps):
        out[k:, k * n:(k + 1) * n] = counts[:len(counts) - k]
    return out


class WienerFilter(Decoder):
    """Ridge regression on lagged counts.

    Parameters
    ----------
    n_taps
        Bins of history (lag 0 included): 5 at 50 ms bins is 250 ms.
    ridge
        Relative ridge penalty (see the module docstring); ``>= 0``.
    """

    kind = "wiener"

    def __init__(self, n_taps: int = 5, ridge: float = 1e-2) -> None:
        if n_taps < 1 or not ridge >= 0:
            raise ConfigError(f"WienerFilter: needs n_taps >= 1 and ridge >= 0, got {n_taps}, "
                              f"{ridge}")
        self.n_taps, self.ridge = int(n_taps), float(ridge)
        self.weights = np.zeros((0, 2))  # (n_taps * n_neurons, 2)
        self.bias = np.zeros(2)
        self.n_neurons = 0
        self._history = np.zeros((0, 0))  # (n_taps, n_neurons), row 0 newest

    def fit(self, counts_list: Sequence[np.ndarray],
            velocity_list: Sequence[np.ndarray]) -> WienerFilter:
        counts, velocity = check_trials(counts_list, velocity_list, "WienerFilter.fit")
        x = np.concatenate([lagged(c, self.n_taps) for c in counts])
        y = np.concatenate(velocity)
        x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
        xc = x - x_mean
        gram = xc.T @ xc  # (n_features, n_features)
        alpha = self.ridge * max(np.trace(gram), 1e-12) / gram.shape[0]
        gram[np.diag_indices_from(gram)] += alpha
        self.weights = np.linalg.solve(gram, xc.T @ (y - y_mean))
        self.bias = y_mean - x_mean @ self.weights
        self.n_neurons = counts[0].shape[1]
        self.reset()
        return self

    def reset(self) -> None:
        self._history = np.zeros((self.n_taps, self.n_neurons))

    def step(self, counts_bin: np.ndarray) -> np.ndarray:
        y = self._check_bin(counts_bin)
        self._history = np.roll(self._history, 1, axis=0)
        self._history[0] = y
        return self._history.reshape(-1) @ self.weights + self.bias

    def params(self) -> dict[str, np.ndarray]:
        return {"n_taps": np.array(self.n_taps), "ridge": np.array(self.ridge),
                "weights": self.weights, "bias": self.bias}

    @classmethod
    def from_params(cls, params: dict[str, np.ndarray]) -> WienerFilter:
        out = cls(int(params["n_taps"]), float(params["ridge"]))
        out.weights = np.asarray(params["weights"], dtype=np.float64)
        out.bias = np.asarray(params["bias"], dtype=np.float64)
        out.n_neurons = out.weights.shape[0] // out.n_taps
        out.reset()
        return out

    def __repr__(self) -> str:
        return f"<WienerFilter | {self.n_neurons} neurons | {self.n_taps} taps>"
