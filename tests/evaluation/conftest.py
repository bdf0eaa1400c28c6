"""A small centre-out reach data set with direction tuning and shared (noise-correlated) gain."""

import numpy as np
import pytest

from ldns_sim.core import SpikeData


def make_reach_data(n_trials: int = 48, n_bins: int = 40, n_neurons: int = 12,
                    bin_s: float = 0.01, shared_sd: float = 0.5, seed: int = 0) -> SpikeData:
    """Poisson counts tuned to 8 reach directions, with a shared per-bin gain across neurons.

    The shared gain gives positive noise correlations between all neurons.
    """
    rng = np.random.default_rng(seed)
    angles = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    directions = angles[np.arange(n_trials) % 8]
    preferred = np.linspace(0, 2 * np.pi, n_neurons, endpoint=False)
    profile = np.sin(np.pi * np.arange(n_bins) / (n_bins - 1))  # (n_bins,) speed profile
    counts, behaviour = [], []
    for d in directions:
        velocity = profile[:, None] * np.array([np.cos(d), np.sin(d)])[None]  # (n_bins, 2)
        tuning = velocity @ np.stack([np.cos(preferred), np.sin(preferred)])  # (n_bins, n)
        gain = rng.normal(0, shared_sd, size=(n_bins, 1))
        rate = np.exp(np.log(0.25) + 1.2 * tuning + gain - shared_sd ** 2 / 2)
        counts.append(rng.poisson(rate).astype(np.int16))
        behaviour.append(velocity.astype(np.float32))
    return SpikeData(counts=tuple(counts), bin_s=bin_s,
                     neuron_ids=tuple(f"unit{i}" for i in range(n_neurons)),
                     split=np.array(["train"] * n_trials), source="synthetic-reach",
                     behaviour=tuple(behaviour), behaviour_names=("vel_x", "vel_y"),
                     direction_rad=directions)


@pytest.fixture(scope="session")
def reach_data() -> SpikeData:
    return make_reach_data()
