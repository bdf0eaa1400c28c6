"""The synthetic Lorenz data set of LDNS (reference §5.1), generated with our own RK4.

Latents: the Lorenz system (sigma 10, rho 28, beta 8/3) from random initial conditions,
burn-in dropped, each of the 3 dimensions z-scored per trajectory. Observations: 128 neurons
with unit-norm loading rows sorted by their first column, rates
``softplus(C z + log(0.3), beta=2)`` in counts per bin, Poisson counts.

Time step (our choice; the reference used dysts' resampling, about 100 points per period,
which we cannot pin): one bin = 0.01 Lorenz time units, integrated by RK4 in 4 sub-steps of
0.0025. A lobe loop lasts about 0.7 time units, so 256 bins (2.56 units) cover about three
loops, the "few loops per trial" of the reference. Burn-in: 100 bins (1 time unit).
The bin width in seconds (default 5 ms) is an assumption: the reference data have no units.
"""

from __future__ import annotations

import numpy as np

from ldns_sim.core import SpikeData
from ldns_sim.data.splits import random_splits

SIGMA, RHO, BETA = 10.0, 28.0, 8.0 / 3.0
STEP_PER_BIN = 0.01
"""Lorenz time units per output bin."""
N_SUBSTEPS = 4
"""RK4 steps per output bin (step 0.0025)."""
BURN_IN_BINS = 100
BIAS = float(np.log(0.3))
"""Rate bias: softplus(b) ~ 0.3 counts per bin at the latent mean (reference §5.1)."""
_IC_CENTRE = np.array([-9.8, -15.0, 20.5])
"""A point near the attractor; initial conditions scatter N(0, 2^2) around it."""


def _lorenz_rhs(state: np.ndarray) -> np.ndarray:
    """d(state)/dt for ``(n, 3)`` states."""
    x, y, z = state[:, 0], state[:, 1], state[:, 2]
    return np.stack([SIGMA * (y - x), x * (RHO - z) - y, x * y - BETA * z], axis=1)


def integrate_lorenz(initial: np.ndarray, n_bins: int, step: float = STEP_PER_BIN,
                     n_substeps: int = N_SUBSTEPS) -> np.ndarray:
    """Classical RK4 integration of many Lorenz trajectories at once.

    Parameters
    ----------
    initial
        ``(n_trajectories, 3)`` initial states.
    n_bins
        Number of output samples (the first is ``initial``).
    step
        Time between output samples, in Lorenz time units.
    n_substeps
        RK4 steps per output sample.

    Returns
    -------
    np.ndarray
        ``(n_trajectories, n_bins, 3)`` float64 states.
    """
    h = step / n_substeps
    state = np.array(initial, dtype=np.float64)
    out = np.empty((len(state), n_bins, 3))
    for t in range(n_bins):
        out[:, t] = state
        for _ in range(n_substeps):
            k1 = _lorenz_rhs(state)
            k2 = _lorenz_rhs(state + 0.5 * h * k1)
            k3 = _lorenz_rhs(state + 0.5 * h * k2)
            k4 = _lorenz_rhs(state + h * k3)
            state = state + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
    return out


def softplus(x: np.ndarray, beta: float = 1.0) -> np.ndarray:
    """``log(1 + exp(beta x)) / beta``, computed without overflow."""
    return np.logaddexp(0.0, beta * x) / beta


def loading_matrix(n_neurons: int, n_latents: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_neurons, n_latents)`` N(0, 1) loadings, rows unit-norm, sorted by first column."""
    c = rng.standard_normal((n_neurons, n_latents))
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    return c[np.argsort(c[:, 0])]


def make_lorenz(n_trials: int, n_bins: int = 256, n_neurons: int = 128, seed: int = 0,
                bin_s: float = 0.005, fractions: tuple[float, float, float] = (0.7, 0.1, 0.2),
                latents_as_behaviour: bool = False) -> SpikeData:
    """Poisson spikes driven by Lorenz latents, as in the LDNS Lorenz benchmark.

    Parameters
    ----------
    n_trials
        Number of trajectories (the reference uses 5000).
    n_bins
        Bins per trial (reference 256).
    n_neurons
        Number of neurons (reference 128).
    seed
        Seeds one ``np.random.Generator`` for initial conditions, loadings, spikes, split.
    bin_s
        Bin width in seconds (an assumption; the reference has no physical time).
    fractions
        ``(train, val, test)`` split fractions.
    latents_as_behaviour
        Also return the z-scored latents as behaviour (``z0, z1, z2``).

    Returns
    -------
    SpikeData
        ``counts`` ``(n_bins, n_neurons)`` int32 per trial and ``true_rates`` (counts per
        bin, float32) of the same shape.
    """
    rng = np.random.default_rng(seed)
    initial = _IC_CENTRE + 2.0 * rng.standard_normal((n_trials, 3))
    z = integrate_lorenz(initial, BURN_IN_BINS + n_bins)[:, BURN_IN_BINS:]  # (T, L, 3)
    z = (z - z.mean(axis=1, keepdims=True)) / z.std(axis=1, keepdims=True)
    c = loading_matrix(n_neurons, 3, rng)  # (N, 3)
    rates, counts = [], []
    for first in range(0, n_trials, 256):  # batches keep float64 temporaries small
        batch = softplus(z[first:first + 256] @ c.T + BIAS, beta=2.0)  # (b, L, N) per bin
        rates.extend(batch.astype(np.float32))
        counts.extend(rng.poisson(batch).astype(np.int32))
    split = random_splits(n_trials, fractions, rng)
    return SpikeData(
        counts=tuple(counts), bin_s=bin_s,
        neuron_ids=tuple(f"lorenz{k}" for k in range(n_neurons)),
        split=split, source=f"lorenz(seed={seed})",
        behaviour=tuple(z.astype(np.float32)) if latents_as_behaviour else None,
        behaviour_names=("z0", "z1", "z2") if latents_as_behaviour else (),
        true_rates=tuple(rates),
    )
