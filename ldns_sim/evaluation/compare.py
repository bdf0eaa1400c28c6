"""Generated spikes against real spikes: every statistic's error, a data floor and intervals.

* Error of a candidate: each statistic of the candidate set against the same statistic of the
  real set (full sets).
* Floor: the same errors for one random half of the real trials against the other half (the
  LDNS "data" row); what a perfect model could reach with that many trials.
* Intervals: ``n_boot`` bootstrap resamples of trials (with replacement) of both sets, the
  2.5 and 97.5 percentiles of the recomputed error. Errors that are distances (RMSE, KL, JS)
  are biased upward by resampling, so near the floor an interval can lie above its point value.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, replace

import numpy as np
from threadpoolctl import threadpool_limits

from ldns_sim.core import SpikeData
from ldns_sim.errors import DataError
from ldns_sim.evaluation._set_stats import EvalConfig, SetStats, Summary
from ldns_sim.evaluation._trials import resample_weights
from ldns_sim.evaluation.decoding import RidgeDecoder, fit_ridge, r2_score
from ldns_sim.evaluation.ldns_errors import (
    correlation_pearson_r,
    correlation_rmse,
    pearson_r,
    rmse,
    unique_pairs,
)
from ldns_sim.evaluation.psth import condition_ids, psth_r2
from ldns_sim.evaluation.result import Estimate, EvaluationResult, MetricInfo
from ldns_sim.evaluation.spike_stats import jensen_shannon, kl_divergence, total_variation

log = logging.getLogger(__name__)

_METRICS = (
    MetricInfo("psch_kl", "nats", "lower", "KL(model||data) of population-count KDEs (LDNS)"),
    MetricInfo("psch_js", "bits", "lower", "Jensen-Shannon of population-count histograms"),
    MetricInfo("psch_tv", "", "lower", "total variation of population-count histograms"),
    MetricInfo("psch_r", "", "higher", "Pearson r of population-count KDE densities"),
    MetricInfo("corr_rmse", "", "lower", "pairwise correlation RMSE, LDNS convention (N^2 mean)"),
    MetricInfo("corr_r_ldns", "", "higher", "Pearson r of tril-zeroed correlation matrices"),
    MetricInfo("corr_r_pairs", "", "higher", "Pearson r of pairwise correlations (unique pairs)"),
    MetricInfo("mean_isi_rmse", "s", "lower", "RMSE across neurons of mean ISI"),
    MetricInfo("std_isi_rmse", "s", "lower", "RMSE across neurons of ISI std"),
    MetricInfo("mean_isi_r", "", "higher", "Pearson r of per-neuron mean ISI"),
    MetricInfo("std_isi_r", "", "higher", "Pearson r of per-neuron ISI std"),
    MetricInfo("rate_rmse", "Hz", "lower", "RMSE across neurons of firing rate"),
    MetricInfo("rate_r", "", "higher", "Pearson r of per-neuron firing rates"),
    MetricInfo("fano_rmse", "", "lower", "RMSE across neurons of the per-bin Fano factor"),
    MetricInfo("k_prob_l1", "", "lower", "sum |P_model(k) - P_data(k)|, k active neurons"),
    MetricInfo("autocorr_rmse", "", "lower", "RMSE of autocorrelations, lags 1..max_lag"),
    MetricInfo("psth_r2", "", "higher", "R^2 of candidate PSTHs against real PSTHs (NLB)"),
    MetricInfo("decode_r2", "", "higher", "R^2 of behaviour decoded from the candidate's spikes "
               "by a ridge decoder fitted on real spikes"),
)


def metric_infos(coarse_bins: tuple[int, ...]) -> tuple[MetricInfo, ...]:
    """Metric descriptions, with one coarse-bin correlation RMSE per window size."""
    coarse = tuple(MetricInfo(f"corr_rmse_x{k}", "", "lower",
                              f"correlation RMSE (LDNS convention) of counts summed over {k} bins")
                   for k in coarse_bins)
    return _METRICS[:5] + coarse + _METRICS[5:]


def errors(model: Summary, data: Summary) -> dict[str, float]:
    """Every metric of ``model`` against ``data``, keyed by the names of :func:`metric_infos`."""
    out = {
        "psch_kl": kl_divergence(model.pop_density, data.pop_density),
        "psch_js": jensen_shannon(model.pop_hist, data.pop_hist),
        "psch_tv": total_variation(model.pop_hist, data.pop_hist),
        "psch_r": pearson_r(model.pop_density, data.pop_density),
        "corr_rmse": correlation_rmse(model.corr[1], data.corr[1]),
        "corr_r_ldns": correlation_pearson_r(model.corr[1], data.corr[1]),
        "corr_r_pairs": pearson_r(unique_pairs(model.corr[1]), unique_pairs(data.corr[1])),
        "mean_isi_rmse": rmse(model.mean_isi_s, data.mean_isi_s),
        "std_isi_rmse": rmse(model.std_isi_s, data.std_isi_s),
        "mean_isi_r": pearson_r(model.mean_isi_s, data.mean_isi_s),
        "std_isi_r": pearson_r(model.std_isi_s, data.std_isi_s),
        "rate_rmse": rmse(model.rates_hz, data.rates_hz),
        "rate_r": pearson_r(model.rates_hz, data.rates_hz),
        "fano_rmse": rmse(model.fano, data.fano),
        "k_prob_l1": float(np.abs(model.k_prob - data.k_prob).sum()),
        "autocorr_rmse": rmse(model.autocorr[1:], data.autocorr[1:]),
        "psth_r2": psth_r2(data.psth_hz, model.psth_hz),
        "decode_r2": model.decode_r2,
    }
    for k in model.corr:
        if k != 1:
            out[f"corr_rmse_x{k}"] = correlation_rmse(model.corr[k], data.corr[k])
    return out


def fit_decoder(data: SpikeData, config: EvalConfig) -> RidgeDecoder:
    """The behaviour decoder of ``config``, fitted on ``data``'s counts and behaviour."""
    return fit_ridge(data.counts, data.behaviour, config.decoder_alpha, config.decoder_n_history,
                     config.decoder_smooth_s / data.bin_s)


class _Pairing:
    """Everything fixed for one data set: the conditions, PSTH length, decoder and support."""

    def __init__(self, data: SpikeData, config: EvalConfig, max_count: int, psth_n_bins: int,
                 decoder: RidgeDecoder | None = None):
        self.config = config
        self.max_count = max_count
        self.psth_n_bins = psth_n_bins
        ids, self.angles = condition_ids(data.direction_rad, data.n_trials)
        self.decoder = decoder
        if decoder is None and data.behaviour is not None:
            self.decoder = fit_decoder(data, config)
        self.data_stats = self._stats(data, ids, decoder=None)

    def _stats(self, s: SpikeData, ids: np.ndarray, decoder) -> SetStats:
        return SetStats(s, self.config, self.max_count, ids, len(self.angles),
                        self.psth_n_bins, decoder)

    def model_stats(self, model: SpikeData) -> SetStats:
        ref = None if np.isnan(self.angles).all() else self.angles
        direction = model.direction_rad if ref is not None else None
        ids, _ = condition_ids(direction, model.n_trials, reference_rad=ref)
        return self._stats(model, ids, self.decoder)


def _check_compatible(real: SpikeData, other: SpikeData, name: str) -> None:
    if other.n_neurons != real.n_neurons:
        raise DataError(f"candidate {name!r}: {other.n_neurons} neurons, the real set has "
                        f"{real.n_neurons}")
    if not np.isclose(other.bin_s, real.bin_s):
        raise DataError(f"candidate {name!r}: bin_s {other.bin_s}, the real set has {real.bin_s}")


def _interval(point: float, values: list[float], better: str) -> Estimate:
    """Bias-corrected percentile interval of bootstrap replicates around ``point``.

    The 2.5/97.5 percentiles of the replicates, shifted by the bootstrap bias estimate
    (median replicate - point), then clipped to the metric's range (errors >= 0, r and
    R² <= 1). Resampling with replacement duplicates trials, which adds noise and pushes
    distance-type errors up; the shift removes that offset and keeps the spread.
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0 or not np.isfinite(point):
        return Estimate(point, float("nan"), float("nan"), float("nan"))
    bias = float(np.median(v) - point)
    lo, hi = np.percentile(v, [2.5, 97.5]) - bias
    lo, hi = (max(lo, 0.0), hi) if better == "lower" else (lo, min(hi, 1.0))
    return Estimate(point, float(lo), float(hi), bias)


def _estimates(point: dict[str, float], boots: list[dict[str, float]]) -> dict[str, Estimate]:
    better = {m.name: m.better for m in _METRICS}
    return {k: _interval(v, [b[k] for b in boots], better.get(k, "lower"))
            for k, v in point.items()}


def _bootstrap(model: SetStats, data_point: Summary, data_boots: list[Summary],
               seeds: np.ndarray) -> dict[str, Estimate]:
    point = errors(model.summarise(), data_point)
    boots = []
    for seed, data in zip(seeds, data_boots):
        w_model = resample_weights(model.n_trials, np.random.default_rng(seed))
        boots.append(errors(model.summarise(w_model), data))
    return _estimates(point, boots)


def _data_summaries(pairing: _Pairing, rng: np.random.Generator, n_boot: int
                    ) -> tuple[Summary, list[Summary], np.ndarray]:
    """The data set's summary, its resampled summaries (shared by all candidates) and the
    seeds of the candidates' resamples (equal-sized candidates get the same trial indices)."""
    stats = pairing.data_stats
    seeds = rng.integers(0, 2 ** 63, size=n_boot)
    boots = [stats.summarise(resample_weights(stats.n_trials, rng)) for _ in range(n_boot)]
    return stats.summarise(), boots, seeds


def evaluate_sets(real: SpikeData, candidates: dict[str, SpikeData], rng: np.random.Generator,
                  n_boot: int = 20, config: EvalConfig | None = None,
                  decoder_data: SpikeData | None = None) -> EvaluationResult:
    """Score each candidate set against ``real``, with the real-vs-real floor and intervals.

    Parameters
    ----------
    real
        The recorded trials (the reference compares against the training split).
    candidates
        ``{name: generated set}``; same neurons and ``bin_s`` as ``real``. Trials may differ
        in number and length.
    rng
        Source of the floor's half split and of every bootstrap resample.
    n_boot
        Bootstrap resamples per interval (0 = point estimates only).
    config
        Metric options; defaults of :class:`EvalConfig`.
    decoder_data
        Recorded trials to fit the behaviour decoder on (e.g. the train split, when ``real``
        is the held-out test split); its R² on ``real`` is then reported in
        ``settings["decode_r2_real"]``, and the floor's half uses the same decoder. ``None``:
        fitted on ``real`` itself (and on one half for the floor).
    """
    # Many mid-sized matrix products follow; multi-threaded OpenBLAS spinning between them
    # ran 10x slower on a shared 2-core machine than one thread, so use one.
    with threadpool_limits(limits=1, user_api="blas"):
        return _evaluate_sets(real, candidates, rng, n_boot, config or EvalConfig(),
                              decoder_data)


def _evaluate_sets(real: SpikeData, candidates: dict[str, SpikeData], rng: np.random.Generator,
                   n_boot: int, config: EvalConfig,
                   decoder_data: SpikeData | None = None) -> EvaluationResult:
    if real.n_trials < 4:
        raise DataError(f"{real.source}: {real.n_trials} trials; the floor needs at least 4")
    for name, cand in candidates.items():
        _check_compatible(real, cand, name)
    sets = [real, *candidates.values()]
    shortest = min(min(len(c) for c in s.counts) for s in sets)
    config = _usable(config, shortest)
    max_count = config.max_count or int(max(max(c.sum(axis=1).max() for c in s.counts)
                                            for s in sets))
    psth_n_bins = config.psth_n_bins or shortest
    decoder, decode_r2_real = None, None  # None: not computed (JSON null)
    if decoder_data is not None and decoder_data.behaviour is not None \
            and real.behaviour is not None:
        decoder = fit_decoder(decoder_data, config)
        decode_r2_real = r2_score(real.behaviour, decoder.predict(real.counts))
    pairing = _Pairing(real, config, max_count, psth_n_bins, decoder)
    data_point, data_boots, seeds = _data_summaries(pairing, rng, n_boot)
    results = {}
    for name, cand in candidates.items():
        log.info("evaluating %s (%d trials) against %d real trials", name, cand.n_trials,
                 real.n_trials)
        results[name] = _bootstrap(pairing.model_stats(cand), data_point, data_boots, seeds)
    floor = _floor(real, config, max_count, psth_n_bins, rng, n_boot, decoder)
    settings = {"n_trials_real": real.n_trials, "n_neurons": real.n_neurons,
                "decoder_fitted_on": "the compared trials" if decoder is None
                else f"{decoder_data.n_trials} other trials ({decoder_data.source})",
                "decode_r2_real": decode_r2_real,
                "bin_s": real.bin_s, "max_count": max_count, "psth_n_bins": psth_n_bins,
                "n_trials": {k: v.n_trials for k, v in candidates.items()},
                "config": asdict(config)}
    return EvaluationResult(metrics=metric_infos(config.coarse_bins), candidates=results,
                            floor=floor, n_boot=n_boot, settings=settings)


def _usable(config: EvalConfig, shortest: int) -> EvalConfig:
    coarse = tuple(k for k in config.coarse_bins if 1 < k <= shortest // 2)
    if coarse != config.coarse_bins:
        log.warning("coarse_bins %s reduced to %s: trials are %d bins long", config.coarse_bins,
                    coarse, shortest)
    return replace(config, coarse_bins=coarse)


def _floor(real: SpikeData, config: EvalConfig, max_count: int, psth_n_bins: int,
           rng: np.random.Generator, n_boot: int,
           decoder: RidgeDecoder | None = None) -> dict[str, Estimate]:
    order = rng.permutation(real.n_trials)
    half_a, half_b = real.take(order[: real.n_trials // 2]), real.take(order[real.n_trials // 2:])
    pairing = _Pairing(half_a, config, max_count, psth_n_bins, decoder)
    data_point, data_boots, seeds = _data_summaries(pairing, rng, n_boot)
    return _bootstrap(pairing.model_stats(half_b), data_point, data_boots, seeds)


def compare(real: SpikeData, generated: SpikeData, rng: np.random.Generator, n_boot: int = 20,
            config: EvalConfig | None = None) -> dict[str, dict[str, float | None]]:
    """Every metric of ``generated`` against ``real``, with floor and intervals, as plain dicts.

    Returns ``{metric: {"value", "lo", "hi", "floor", "floor_lo", "floor_hi", "unit",
    "better"}}`` (``None`` for numbers that are NaN). See :func:`evaluate_sets`.
    """
    result = evaluate_sets(real, {"generated": generated}, rng, n_boot, config)
    out = {}
    for m in result.metrics:
        cand = result.candidates["generated"][m.name].to_dict()
        floor = result.floor[m.name].to_dict()
        out[m.name] = {**cand, "floor": floor["value"], "floor_lo": floor["lo"],
                       "floor_hi": floor["hi"], "unit": m.unit, "better": m.better}
    return out
