"""The velocity Kalman filter (Wu et al. 2006; Kim et al. 2008) and its ReFIT recalibration.

Model, per bin ``t`` (state ``x_t`` = 2-D velocity, observation ``y_t`` = counts)::

    x_t = A x_{t-1} + w_t,         w_t ~ N(0, W)            (2, 2) dynamics
    y_t = C x_t + d + q_t,         q_t ~ N(0, Q)            (n_neurons, 2), (n_neurons,)

Fitting is least squares on the calibration trials: ``A`` regresses ``x_t`` on ``x_{t-1}``
within trials, ``W`` is its residual covariance; ``[C d]`` regresses counts on ``[x_t 1]`` and
``Q`` is its residual covariance (plus ``q_floor`` on the diagonal, so silent units cannot make
it singular). Decoding is the standard predict/update recursion from ``x_0 = 0``, ``P_0 = 0``;
with ``steady_state=True`` the gain is the converged one (the Riccati iteration run at fit
time), which is what most rigs run because it costs one matrix-vector product per bin.

ReFIT (Gilja et al. 2012): after a closed-loop block with the filter, the observation model is
fitted again on the same spikes, but against the velocity the user *intended*: the decoded
velocity rotated to point from the cursor to the target (speed kept), and zero while the cursor
is inside the target. ``A`` and ``W`` are kept. Gilja et al.'s second innovation, position
feedback (the filter treats the displayed position as certain), needs position in the state;
this velocity-only filter does not have it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ldns_sim.decoders.base import Decoder, check_trials
from ldns_sim.errors import ConfigError, DataError

RICCATI_MAX_ITER = 10_000
RICCATI_TOL = 1e-10


class VelocityKalmanFilter(Decoder):
    """Kalman filter with a 2-D velocity state and spike counts as observations.

    Parameters
    ----------
    steady_state
        Use the converged gain (fixed at fit/load time) instead of propagating ``P``.
    q_floor
        Added to the diagonal of ``Q`` (counts² per bin), ``> 0``.
    """

    kind = "kalman"

    def __init__(self, steady_state: bool = False, q_floor: float = 1e-3) -> None:
        if not q_floor > 0:
            raise ConfigError(f"{type(self).__name__}: q_floor must be > 0, got {q_floor}")
        self.steady_state = bool(steady_state)
        self.q_floor = float(q_floor)
        self.A = np.eye(2)
        self.W = np.eye(2)
        self.C = np.zeros((0, 2))
        self.d = np.zeros(0)
        self.Q = np.zeros((0, 0))
        self.n_neurons = 0
        self.gain_ss = np.zeros((2, 0))  # (2, n_neurons) steady-state Kalman gain
        self.x = np.zeros(2)
        self.P = np.zeros((2, 2))

    # ------------------------------------------------------------------ fitting
    def fit(self, counts_list: Sequence[np.ndarray],
            velocity_list: Sequence[np.ndarray]) -> VelocityKalmanFilter:
        counts, velocity = check_trials(counts_list, velocity_list, f"{self.kind}.fit")
        x_prev = np.concatenate([v[:-1] for v in velocity])
        x_next = np.concatenate([v[1:] for v in velocity])
        if len(x_prev) < 3:
            raise DataError(f"{self.kind}.fit: trials too short to fit the dynamics")
        self.A = np.linalg.lstsq(x_prev, x_next, rcond=None)[0].T
        resid = x_next - x_prev @ self.A.T
        self.W = resid.T @ resid / len(resid) + 1e-9 * np.eye(2)
        self._fit_observation(np.concatenate(counts), np.concatenate(velocity))
        return self

    def _fit_observation(self, y: np.ndarray, x: np.ndarray) -> None:
        """``C``, ``d``, ``Q`` from ``(n, n_neurons)`` counts and ``(n, 2)`` velocity."""
        design = np.column_stack([x, np.ones(len(x))])  # (n, 3)
        coef = np.linalg.lstsq(design, y, rcond=None)[0]  # (3, n_neurons)
        self.C, self.d = coef[:2].T.copy(), coef[2].copy()
        resid = y - design @ coef
        self.Q = resid.T @ resid / len(resid) + self.q_floor * np.eye(y.shape[1])
        self.n_neurons = y.shape[1]
        self.gain_ss = self._steady_state_gain()
        self.reset()

    def _steady_state_gain(self) -> np.ndarray:
        P = np.zeros((2, 2))
        q_inv_c = np.linalg.solve(self.Q, self.C)  # (n_neurons, 2)
        info = self.C.T @ q_inv_c  # (2, 2) C' Q^-1 C
        for _ in range(RICCATI_MAX_ITER):
            prior = self.A @ P @ self.A.T + self.W
            post = np.linalg.inv(np.linalg.inv(prior) + info)
            if np.max(np.abs(post - P)) < RICCATI_TOL:
                P = post
                break
            P = post
        return P @ q_inv_c.T  # K = P+ C' Q^-1, (2, n_neurons)

    # ------------------------------------------------------------------ decoding
    def reset(self) -> None:
        self.x = np.zeros(2)
        self.P = np.zeros((2, 2))

    def step(self, counts_bin: np.ndarray) -> np.ndarray:
        y = self._check_bin(counts_bin)
        x_prior = self.A @ self.x
        innovation = y - self.C @ x_prior - self.d
        if self.steady_state:
            self.x = x_prior + self.gain_ss @ innovation
            return self.x.copy()
        P_prior = self.A @ self.P @ self.A.T + self.W
        S = self.C @ P_prior @ self.C.T + self.Q  # (n_neurons, n_neurons)
        K = np.linalg.solve(S, self.C @ P_prior).T  # P C' S^-1, S and P symmetric
        self.x = x_prior + K @ innovation
        self.P = (np.eye(2) - K @ self.C) @ P_prior
        return self.x.copy()

    # ------------------------------------------------------------------ storage
    def params(self) -> dict[str, np.ndarray]:
        return {"steady_state": np.array(self.steady_state), "q_floor": np.array(self.q_floor),
                "A": self.A, "W": self.W, "C": self.C, "d": self.d, "Q": self.Q}

    @classmethod
    def from_params(cls, params: dict[str, np.ndarray]) -> VelocityKalmanFilter:
        out = cls(bool(params["steady_state"]), float(params["q_floor"]))
        for name in ("A", "W", "C", "d", "Q"):
            setattr(out, name, np.asarray(params[name], dtype=np.float64))
        out.n_neurons = out.C.shape[0]
        out.gain_ss = out._steady_state_gain()
        out.reset()
        return out

    def __repr__(self) -> str:
        mode = "steady-state" if self.steady_state else "full"
        return f"<{type(self).__name__} | {self.n_neurons} neurons | {mode}>"


def intended_velocity(decoded: np.ndarray, cursor_xy: np.ndarray, target_xy: np.ndarray,
                      inside: np.ndarray) -> np.ndarray:
    """ReFIT's estimate of what the user meant, bin by bin (Gilja et al. 2012).

    Parameters
    ----------
    decoded
        ``(n_bins, 2)`` decoded velocity.
    cursor_xy, target_xy
        ``(n_bins, 2)`` cursor and target positions the user saw when the bin's spikes were
        made: the cursor at the bin's start, not after the bin's own decoded step.
    inside
        ``(n_bins,)`` bool, that cursor inside the target window (intention: stay, 0).

    Returns
    -------
    numpy.ndarray
        ``(n_bins, 2)``: ``|decoded|`` along the unit vector from cursor to target; 0 inside.
    """
    to_target = np.asarray(target_xy, float) - np.asarray(cursor_xy, float)
    dist = np.linalg.norm(to_target, axis=1, keepdims=True)
    unit = np.divide(to_target, dist, out=np.zeros_like(to_target), where=dist > 0)
    out = unit * np.linalg.norm(np.asarray(decoded, float), axis=1, keepdims=True)
    out[np.asarray(inside, bool)] = 0.0
    return out


class RefitKalmanFilter(VelocityKalmanFilter):
    """A velocity Kalman filter that can be recalibrated on its own closed-loop data (ReFIT).

    ``fit`` is the ordinary (open-loop) calibration; ``refit`` re-estimates ``C``, ``d`` and
    ``Q`` from closed-loop blocks against :func:`intended_velocity`.
    """

    kind = "refit"

    def refit(self, counts_list: Sequence[np.ndarray], decoded_list: Sequence[np.ndarray],
              cursor_list: Sequence[np.ndarray], target_list: Sequence[np.ndarray],
              inside_list: Sequence[np.ndarray]) -> RefitKalmanFilter:
        """Refit the observation model on closed-loop blocks (one array per block each).

        Parameters
        ----------
        counts_list
            ``(n_bins_i, n_neurons)`` counts the filter decoded.
        decoded_list, cursor_list, target_list
            ``(n_bins_i, 2)`` decoded velocity, cursor and target positions.
        inside_list
            ``(n_bins_i,)`` bool, cursor inside the target.
        """
        intended = [intended_velocity(*args) for args in
                    zip(decoded_list, cursor_list, target_list, inside_list)]
        counts, intended = check_trials(counts_list, intended, "RefitKalmanFilter.refit")
        if counts[0].shape[1] != self.n_neurons:
            raise DataError(f"RefitKalmanFilter.refit: {counts[0].shape[1]} channels, the "
                            f"filter has {self.n_neurons}")
        self._fit_observation(np.concatenate(counts), np.concatenate(intended))
        return self
