"""Inter-spike intervals from binned counts, with the LDNS reference's convention.

Binned data have no spike times, so the reference places the ``c`` spikes of a bin evenly
inside it: bin ``i`` (start ``i * bin_s``) holding ``c`` spikes gets spikes at
``i * bin_s + k * bin_s / (c + 1)`` for ``k = 1..c``. ISIs are the differences of consecutive
times within one (trial, neuron) train; they never span two trials. Each neuron's ISIs are
pooled across trials, and their mean and standard deviation (ddof = 0) are reported in seconds.
"""

from __future__ import annotations

import numpy as np

from ldns_sim.evaluation._trials import Counts, check_counts, trial_weights_or_ones


def counts_to_spike_times(counts_1d: np.ndarray, bin_s: float) -> np.ndarray:
    """Spike times (s, from the trial start) of one neuron's ``(n_bins,)`` counts.

    ``c`` spikes in bin ``i`` are placed at ``i * bin_s + k * bin_s / (c + 1)``, k = 1..c.
    """
    c = np.asarray(counts_1d).astype(np.int64)
    bin_of_spike = np.repeat(np.arange(len(c)), c)
    first_spike_of_bin = np.cumsum(c) - c
    k = np.arange(len(bin_of_spike)) - first_spike_of_bin[bin_of_spike] + 1
    return (bin_of_spike + k / (c[bin_of_spike] + 1.0)) * bin_s


def isi_trial_sums(counts: Counts, bin_s: float) -> np.ndarray:
    """Per-trial sufficient statistics of the ISIs: ``(n_trials, 3, n_neurons)``.

    For each trial and neuron: number of ISIs, their sum (s) and their sum of squares (s^2).
    """
    n_neurons = check_counts(counts)
    out = np.zeros((len(counts), 3, n_neurons))
    for t, trial in enumerate(counts):
        trial = np.asarray(trial).astype(np.int64)
        n_bins = len(trial)
        flat = trial.T.ravel()  # neuron-major: all bins of neuron 0, then neuron 1, ...
        times = counts_to_spike_times(flat, bin_s)  # offsets grow by n_bins*bin_s per neuron
        neuron = np.repeat(np.arange(n_neurons), trial.sum(axis=0))
        times = times - neuron * (n_bins * bin_s)
        same = neuron[1:] == neuron[:-1]
        isi = np.diff(times)[same]
        owner = neuron[1:][same]
        out[t, 0] = np.bincount(owner, minlength=n_neurons)
        out[t, 1] = np.bincount(owner, weights=isi, minlength=n_neurons)
        out[t, 2] = np.bincount(owner, weights=isi ** 2, minlength=n_neurons)
    return out


def isi_stats_from_sums(sums: np.ndarray, trial_weights: np.ndarray | None = None
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std ISI per neuron (s) from :func:`isi_trial_sums`, trials weighted."""
    w = trial_weights_or_ones(trial_weights, len(sums))
    n, s1, s2 = np.tensordot(w, sums, axes=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, s1 / n, np.nan)
        var = np.where(n > 0, s2 / n - mean ** 2, np.nan)
    return mean, np.sqrt(np.clip(var, 0.0, None))


def isi_stats(counts: Counts, bin_s: float, trial_weights: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """Per-neuron mean and standard deviation of the ISIs, in seconds.

    Spikes are spread evenly in their bin (``start + k * bin_s / (c + 1)``), ISIs are taken
    within each (trial, neuron) and pooled across trials; std has ddof = 0. Returns two
    ``(n_neurons,)`` arrays; NaN for a neuron with no ISI (fewer than two spikes in every
    trial). As errors against data, lower is better.
    """
    return isi_stats_from_sums(isi_trial_sums(counts, bin_s), trial_weights)
