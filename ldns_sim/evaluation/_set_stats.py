"""Per-trial partial statistics of one spike set, so bootstrap resamples cost a weighted sum.

A bootstrap resample of trials is a vector of trial multiplicities; every statistic here is
a function of weighted per-trial sums, computed once per set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ldns_sim.core import SpikeData
from ldns_sim.evaluation._trials import rebin
from ldns_sim.evaluation.decoding import RidgeDecoder, r2_from_sums, r2_sums
from ldns_sim.evaluation.isi import isi_stats_from_sums, isi_trial_sums
from ldns_sim.evaluation.psth import psth
from ldns_sim.evaluation.spike_stats import (
    k_probabilities,
    kde_on_integers,
    spike_count_correlation,
)
from ldns_sim.evaluation.temporal import autocorrelation_from_sums, autocovariance_trial_sums


@dataclass(frozen=True)
class EvalConfig:
    """Options of :func:`ldns_sim.evaluation.compare.compare` and ``evaluate_sets``.

    Attributes
    ----------
    coarse_bins
        Window sizes (in model bins) at which pairwise correlations are also compared.
    max_lag_bins
        Largest lag of the temporal autocorrelations.
    psth_n_bins
        PSTH length in bins; ``None`` = the shortest trial of the compared sets.
    psth_smooth_s
        Gaussian smoothing sd (s) of PSTHs.
    decoder_alpha, decoder_n_history, decoder_smooth_s
        The ridge decoder of behaviour from counts (penalty, past bins, input smoothing sd in s).
    max_count
        Population-count support ``0..max_count``; ``None`` = the largest over all sets.
    """

    coarse_bins: tuple[int, ...] = (4, 20)
    max_lag_bins: int = 10
    psth_n_bins: int | None = None
    psth_smooth_s: float = 0.02
    decoder_alpha: float = 1.0
    decoder_n_history: int = 2
    decoder_smooth_s: float = 0.05
    max_count: int | None = None


@dataclass(frozen=True)
class Summary:
    """The statistics of one (possibly resampled) spike set."""

    rates_hz: np.ndarray  # (n_neurons,)
    fano: np.ndarray  # (n_neurons,)
    corr: dict[int, np.ndarray]  # bins_per_window -> (n_neurons, n_neurons)
    pop_density: np.ndarray  # (max_count + 1,) KDE
    pop_hist: np.ndarray  # (max_count + 1,) histogram
    k_prob: np.ndarray  # (n_neurons + 1,)
    mean_isi_s: np.ndarray  # (n_neurons,)
    std_isi_s: np.ndarray  # (n_neurons,)
    autocorr: np.ndarray  # (max_lag + 1, n_neurons)
    psth_hz: np.ndarray  # (n_conditions, n_bins, n_neurons)
    decode_r2: float  # NaN when not computed


class SetStats:
    """Per-trial partial sums of one spike set under one :class:`EvalConfig`.

    ``condition_ids`` maps each trial to a PSTH condition; ``decoder`` (fitted on the data the
    set is compared against) gives the behaviour-decoding R² when the set has behaviour.
    """

    def __init__(self, data: SpikeData, config: EvalConfig, max_count: int,
                 condition_ids: np.ndarray, n_conditions: int, psth_n_bins: int,
                 decoder: RidgeDecoder | None = None) -> None:
        self.counts = data.counts
        self.windows = {k: rebin(data.counts, k) for k in config.coarse_bins}
        self.windows[1] = list(data.counts)
        self.bin_s = data.bin_s
        self.config = config
        self.max_count = max_count
        self.n_trials = data.n_trials
        self.condition_ids = condition_ids
        self.n_conditions = n_conditions
        self.psth_n_bins = psth_n_bins
        self.n_bins = np.array([len(c) for c in data.counts], dtype=float)
        self.spike_sums = np.stack([c.sum(axis=0) for c in data.counts]).astype(float)
        self.square_sums = np.stack([(c.astype(float) ** 2).sum(axis=0) for c in data.counts])
        self.pop_values = np.stack([
            np.bincount(np.minimum(c.sum(axis=1), max_count).astype(np.int64),
                        minlength=max_count + 1) for c in data.counts]).astype(float)
        self.isi_sums = isi_trial_sums(data.counts, data.bin_s)
        self.acov_sums = autocovariance_trial_sums(data.counts, config.max_lag_bins)
        self.r2_sums = None
        if decoder is not None and data.behaviour is not None:
            self.r2_sums = r2_sums(data.behaviour, decoder.predict(data.counts))

    def summarise(self, w: np.ndarray | None = None) -> Summary:
        """All statistics with trial multiplicities ``w`` (``None`` = each trial once)."""
        w = np.ones(self.n_trials) if w is None else w
        n_bins = w @ self.n_bins
        mean = w @ self.spike_sums / n_bins
        var = w @ self.square_sums / n_bins - mean ** 2
        with np.errstate(invalid="ignore", divide="ignore"):
            fano = np.where(mean > 0, var / mean, np.nan)
        corr = {k: spike_count_correlation(self.windows[k], 1, w)
                for k in (1, *self.config.coarse_bins)}
        pop_values = w @ self.pop_values
        mean_isi, std_isi = isi_stats_from_sums(self.isi_sums, w)
        return Summary(
            rates_hz=mean / self.bin_s, fano=fano, corr=corr,
            pop_density=kde_on_integers(pop_values, self.max_count),
            pop_hist=pop_values / pop_values.sum(),
            k_prob=k_probabilities(self.counts, w),
            mean_isi_s=mean_isi, std_isi_s=std_isi,
            autocorr=autocorrelation_from_sums(self.acov_sums, w),
            psth_hz=psth(self.counts, self.bin_s, self.condition_ids, self.n_conditions,
                         self.psth_n_bins, self.config.psth_smooth_s, w),
            decode_r2=float("nan") if self.r2_sums is None else r2_from_sums(self.r2_sums, w),
        )
