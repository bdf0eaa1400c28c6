"""Small synthetic centre-out data: cosine-tuned Poisson neurons driven by reach velocity.

For fast tests of conditioning. Each trial is a straight reach in one of ``n_directions``
directions with a bell-shaped (minimum-jerk) speed profile starting at ``onset_bin``. Neuron
n fires at ``softplus(baseline_n + gain_n * v(t) . pd_n)`` Hz, where v(t) is the velocity
stored as behaviour for that bin: the lag is already applied, as in SpikeData.
"""

from __future__ import annotations

import numpy as np

from ldns_sim.core import SpikeData
from ldns_sim.data.splits import random_splits


def reach_velocity(n_bins: int, onset_bin: int, duration_bins: int, angle_rad: float,
                   peak_speed: float) -> np.ndarray:
    """``(n_bins, 2)`` velocity of a minimum-jerk reach (zero before onset and after)."""
    t = (np.arange(n_bins) - onset_bin + 0.5) / duration_bins
    inside = (t >= 0) & (t <= 1)
    profile = np.where(inside, 30 * t**2 * (1 - t) ** 2, 0.0)  # max 1.875 at t = 0.5
    speed = peak_speed * profile / 1.875
    return np.stack([speed * np.cos(angle_rad), speed * np.sin(angle_rad)], axis=1)


def make_tuning_data(n_trials: int = 64, n_neurons: int = 32, n_bins: int = 50,
                     bin_s: float = 0.02, n_directions: int = 8, seed: int = 0,
                     baseline_hz: float = 10.0, gain_hz: float = 20.0,
                     peak_speed: float = 1.0,
                     fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)) -> SpikeData:
    """Cosine-tuned Poisson neurons during synthetic centre-out reaches.

    Parameters
    ----------
    n_trials, n_neurons, n_bins
        Sizes; every trial has ``n_bins`` bins.
    bin_s
        Bin width in seconds.
    n_directions
        Reach directions equally spaced on the circle; trials cycle through them.
    seed
        Seeds the one ``np.random.Generator`` (tuning, spikes, split).
    baseline_hz, gain_hz
        Mean baseline rate and the rate change at ``peak_speed`` along the preferred
        direction (each neuron draws its own around these).
    peak_speed
        Peak hand speed (behaviour units, e.g. m/s).
    fractions
        ``(train, val, test)``, stratified by direction.

    Returns
    -------
    SpikeData
        Behaviour ``("vel_x", "vel_y")``, ``direction_rad``, ``align_bin`` (movement onset)
        and ``true_rates`` in counts per bin.
    """
    rng = np.random.default_rng(seed)
    directions = 2 * np.pi * (np.arange(n_trials) % n_directions) / n_directions
    onset = n_bins // 4
    duration = max(2, n_bins // 2)
    velocity = np.stack([reach_velocity(n_bins, onset, duration, a, peak_speed)
                         for a in directions]).astype(np.float32)  # (T, L, 2)
    preferred = rng.uniform(0, 2 * np.pi, n_neurons)
    pd = np.stack([np.cos(preferred), np.sin(preferred)], axis=1)  # (N, 2)
    baseline = baseline_hz * rng.uniform(0.5, 1.5, n_neurons)
    gain = gain_hz * rng.uniform(0.5, 1.5, n_neurons) / peak_speed
    drive_hz = baseline + gain * (velocity @ pd.T)  # (T, L, N)
    rates = (np.logaddexp(0.0, drive_hz) * bin_s).astype(np.float32)  # counts per bin
    counts = rng.poisson(rates).astype(np.int32)
    split = random_splits(n_trials, fractions, rng, strata=directions)
    return SpikeData(
        counts=tuple(counts), bin_s=bin_s,
        neuron_ids=tuple(f"tuned{k}" for k in range(n_neurons)),
        split=split, source=f"tuning(seed={seed})",
        behaviour=tuple(velocity), behaviour_names=("vel_x", "vel_y"),
        direction_rad=np.arctan2(np.sin(directions), np.cos(directions)),
        align_bin=np.full(n_trials, onset), true_rates=tuple(rates),
    )
