"""Reference generators: spike sets made on the same conditions as a given real set.

Each baseline returns a ``SpikeData`` with the trial lengths, behaviour, direction labels,
split and alignment of ``like`` (the trials to imitate), and counts from a simple model
fitted on ``train``. Where a baseline has rates, they go in ``true_rates`` (counts per bin).
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
from scipy.ndimage import gaussian_filter1d

from ldns_sim.core import SpikeData
from ldns_sim.evaluation.dichotomized import fit_discretised_gaussian
from ldns_sim.evaluation.psth import NO_CONDITION, condition_ids

log = logging.getLogger(__name__)


def _imitate(like: SpikeData, counts: list[np.ndarray], name: str,
             rates: list[np.ndarray] | None = None) -> SpikeData:
    return replace(like, counts=tuple(c.astype(np.int16) for c in counts),
                   true_rates=None if rates is None else tuple(r.astype(np.float32)
                                                               for r in rates),
                   source=f"baseline:{name} (like {like.source})")


def _aligned_mean(counts: list[np.ndarray]) -> np.ndarray:
    """``(max_len, n_neurons)`` mean count per bin over the trials that reach that bin."""
    max_len = max(len(c) for c in counts)
    total = np.zeros((max_len, counts[0].shape[1]))
    n = np.zeros(max_len)
    for c in counts:
        total[: len(c)] += c
        n[: len(c)] += 1
    return total / n[:, None]


def _stretch(profile: np.ndarray, n_bins: int, fill: np.ndarray) -> np.ndarray:
    if n_bins <= len(profile):
        return profile[:n_bins]
    return np.concatenate([profile, np.repeat(fill[None], n_bins - len(profile), axis=0)])


def psth_poisson(train: SpikeData, like: SpikeData, rng: np.random.Generator,
                 smooth_s: float = 0.02) -> SpikeData:
    """Inhomogeneous Poisson spikes from per-direction PSTHs of ``train``.

    Each direction's PSTH is the mean count per bin, aligned at bin 0, over the training
    trials that reach the bin, smoothed with a Gaussian of sd ``smooth_s`` seconds. A trial of
    ``like`` uses the PSTH of the nearest training direction, or the PSTH of all training
    trials when it has no label (or ``train`` has none). Past the PSTH's end a trial continues
    at the condition's mean rate. Keeps each neuron's condition-dependent mean; has no noise
    correlations and Poisson variability.
    """
    sigma_bins = smooth_s / train.bin_s

    def smoothed(trials: list[np.ndarray]) -> np.ndarray:
        mean = _aligned_mean(trials)
        return gaussian_filter1d(mean, sigma_bins, axis=0, mode="nearest") if sigma_bins > 0 \
            else mean

    overall = smoothed(list(train.counts))
    train_ids, angles = condition_ids(train.direction_rad, train.n_trials)
    labelled = train.direction_rad is not None and np.isfinite(angles).any()
    profiles = [smoothed([c for c, i in zip(train.counts, train_ids) if i == k])
                if labelled and np.any(train_ids == k) else overall for k in range(len(angles))]
    like_ids = (condition_ids(like.direction_rad, like.n_trials, reference_rad=angles)[0]
                if labelled and like.direction_rad is not None
                else np.full(like.n_trials, NO_CONDITION))
    counts, rates = [], []
    for cid, c in zip(like_ids, like.counts):
        profile = overall if cid == NO_CONDITION else profiles[cid]
        r = _stretch(profile, len(c), profile.mean(axis=0))
        rates.append(r)
        counts.append(rng.poisson(r))
    return _imitate(like, counts, "psth_poisson", rates)


def homogeneous_poisson(train: SpikeData, like: SpikeData, rng: np.random.Generator
                        ) -> SpikeData:
    """Poisson spikes at each neuron's constant mean rate over all of ``train``."""
    rate = train.mean_rate_hz() * train.bin_s  # (n_neurons,) counts per bin
    rates = [np.broadcast_to(rate, c.shape).copy() for c in like.counts]
    return _imitate(like, [rng.poisson(r) for r in rates], "homogeneous_poisson", rates)


def dichotomized_gaussian(train: SpikeData, like: SpikeData, rng: np.random.Generator
                          ) -> SpikeData:
    """Counts from a discretised Gaussian fitted to ``train``'s count marginals and correlations.

    See :mod:`ldns_sim.evaluation.dichotomized`: matches every neuron's per-bin count
    distribution (hence mean and Fano factor) and the pairwise count correlations at the model
    bin; bins are independent and stationary (no PSTH, no temporal correlations).
    """
    model = fit_discretised_gaussian(train.counts)
    return _imitate(like, [model.sample(len(c), rng) for c in like.counts],
                    "dichotomized_gaussian")


def trial_shuffled(real: SpikeData, rng: np.random.Generator) -> SpikeData:
    """Real counts with each neuron's trial index permuted within condition.

    Trials are grouped by (direction label, length); within a group every neuron gets its own
    random permutation of the trials, which keeps each neuron's PSTH exactly and destroys the
    correlations between neurons that are not locked to the condition (noise correlations).
    A trial alone in its group (recordings with trials of many lengths) takes each neuron's
    counts from a random longer trial of its condition, cut to its length (PSTH kept in
    expectation); with no longer trial it keeps its own counts (logged).
    """
    ids, _ = condition_ids(real.direction_rad, real.n_trials)
    lengths = np.array([len(c) for c in real.counts])
    shuffled = [np.array(c) for c in real.counts]
    n_alone = 0
    for cid, n_bins in sorted(set(zip(ids.tolist(), lengths.tolist()))):
        members = np.flatnonzero((ids == cid) & (lengths == n_bins))
        if len(members) == 1:
            donors = np.flatnonzero((ids == cid) & (lengths > n_bins))
            if len(donors) == 0:
                n_alone += 1
                continue
            pick = rng.choice(donors, size=real.n_neurons)
            shuffled[members[0]] = np.stack(
                [real.counts[d][:n_bins, n] for n, d in enumerate(pick)], axis=1)
            continue
        stacked = np.stack([real.counts[i] for i in members])  # (n_members, n_bins, n_neurons)
        donors = np.stack([rng.permutation(len(members)) for _ in range(real.n_neurons)],
                          axis=1)  # (n_members, n_neurons): donor trial of each neuron
        mixed = stacked[donors[:, None, :], np.arange(n_bins)[None, :, None],
                        np.arange(real.n_neurons)[None, None, :]]
        for trial, counts in zip(members, mixed):
            shuffled[trial] = counts
    if n_alone:
        log.warning("trial_shuffled: %d trials had no other trial of their condition to draw "
                    "from and were left unshuffled", n_alone)
    return _imitate(real, shuffled, "trial_shuffled")
