"""Rate calibration: the observation model's per-neuron intercept, refitted so that the spikes
the whole model samples on the train trials' conditions have the train trials' mean counts.

Why: the spike-history model is fitted on real spikes given the autoencoder's rates of the real
trials, but at sampling time it is driven by rates decoded from *sampled* latents. A diffusion
stage whose latents sit, on average, where the decoder gives a few percent fewer spikes (and the
history model free-running on its own counts, ~2 % under its rates) shifts every neuron's rate
and the population count distribution with it, by an amount that differs from training run to
training run (docs/benchmarks.md 1.2). Only the intercept ``bias`` (N,) of
``SpikeHistoryModel`` moves, so every sampler and streaming backend uses the calibration as is.

The calibration is fitted on the **train** split only: sample ``samples_per_trial`` trials on
each train trial's condition (the default streaming sampler), keep their rates fixed, and move
each neuron's intercept by Newton steps on log(mean count) until the counts drawn through the
history model match the real train counts' mean.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ldns_sim.bundle import ModelBundle
from ldns_sim.core import SpikeData
from ldns_sim.simulator import SamplerSettings, sample_trials

log = logging.getLogger(__name__)

_LOG_EPS = 1e-8
_MAX_STEP = 1.0  # largest intercept change per Newton step (drive units)
_TOLERANCE = 1e-3  # |log(sampled mean / real mean)| at which every neuron is done


@dataclass(frozen=True)
class RateCalibration:
    bias: torch.Tensor  # (N,) the calibrated intercept of SpikeHistoryModel
    shift: torch.Tensor  # (N,) calibrated minus fitted intercept
    real_hz: np.ndarray  # (N,) the train trials' mean rates
    before_hz: np.ndarray  # (N,) the samples' mean count rate with the fitted intercept
    after_hz: np.ndarray  # (N,) ... with the calibrated intercept (fresh draws)

    def report(self) -> dict[str, float]:
        """Scalars for the bundle's metrics."""
        return {
            "calibration_population_hz_real": float(self.real_hz.sum()),
            "calibration_population_hz_before": float(self.before_hz.sum()),
            "calibration_population_hz_after": float(self.after_hz.sum()),
            "calibration_rate_rmse_hz_before": _rmse(self.before_hz, self.real_hz),
            "calibration_rate_rmse_hz_after": _rmse(self.after_hz, self.real_hz),
            "calibration_max_abs_shift": float(self.shift.abs().max()),
        }


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


def sampled_rates(bundle: ModelBundle, train: SpikeData, samples_per_trial: int,
                  settings: SamplerSettings, seed: int, batch: int = 256
                  ) -> list[torch.Tensor]:
    """The model's rates on every train trial's condition, ``samples_per_trial`` each:
    [(B, N, L)] batches of trials of similar length (trials sorted by length, each batch
    sampled at its longest and every trial masked past its own end by ``lengths``)."""
    lengths = np.array([len(c) for c in train.counts])
    order = np.repeat(np.argsort(lengths, kind="stable"), samples_per_trial)
    out = []
    for k, start in enumerate(range(0, len(order), batch)):
        idx = order[start:start + batch]
        n_bins = int(lengths[idx].max())
        behaviour = direction = None
        if bundle.meta.condition == "velocity":  # hold the last sample (never seen: causal)
            behaviour = np.stack([np.pad(np.asarray(train.behaviour[i], np.float32),
                                         ((0, n_bins - lengths[i]), (0, 0)), mode="edge")
                                  for i in idx])
        elif bundle.meta.condition == "direction":
            direction = np.asarray(train.direction_rad, float)[idx]
        gen = sample_trials(bundle, len(idx), n_bins, behaviour, direction, settings,
                            seed=seed + k, batch=batch)
        rates = torch.as_tensor(gen.rates).transpose(1, 2)  # (B, N, L)
        mask = torch.as_tensor(np.arange(n_bins)[None, :] < lengths[idx][:, None])  # (B, L)
        out.append((rates, mask))
    return out


@torch.no_grad()
def _mean_counts(bundle: ModelBundle, batches, bias: torch.Tensor, seed: int
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-neuron mean count per bin of counts drawn through the history model at ``bias``,
    and d log(mean intensity) / d bias, (N,) each; the same draws for the same ``seed``."""
    history = bundle.history
    fitted = history.bias.detach().clone()
    generator = torch.Generator().manual_seed(seed)
    total = torch.zeros(history.cfg.n_neurons, dtype=torch.float64)
    mu_total = torch.zeros_like(total)
    slope_total = torch.zeros_like(total)
    n_bins = 0
    try:
        history.bias.copy_(bias)
        for rates, mask in batches:
            buffer = history.warm_buffer(rates[..., 0], generator)
            for t in range(rates.shape[-1]):
                keep = mask[:, t]
                if not keep.any():
                    break
                drive = ((buffer * history.weights).sum(-1)
                         + history.log_rate_gain * torch.log(rates[..., t] + _LOG_EPS)
                         + history.bias)  # (B, N)
                counts, buffer = history.sample_step(buffer, rates[..., t], generator)
                w = keep[:, None].double()
                total += (counts.double() * w).sum(0)
                mu_total += (F.softplus(drive).double() * w).sum(0)
                slope_total += (torch.sigmoid(drive).double() * w).sum(0)
                n_bins += int(keep.sum())
    finally:
        history.bias.copy_(fitted)
    mean = total / n_bins
    slope = slope_total / mu_total.clamp_min(_LOG_EPS)  # d log(sum softplus) / d bias
    return mean.float(), slope.float()


def calibrate_rates(bundle: ModelBundle, train: SpikeData, samples_per_trial: int = 5,
                    n_iters: int = 10, seed: int = 0,
                    settings: SamplerSettings | None = None) -> RateCalibration:
    """Fit the observation model's intercept (module docstring). ``bundle`` is not changed."""
    if bundle.n_neurons != train.n_neurons:
        raise ValueError(f"bundle has {bundle.n_neurons} neurons, data {train.n_neurons}")
    settings = settings or SamplerSettings(n_steps=4)
    start = time.perf_counter()
    batches = sampled_rates(bundle, train, samples_per_trial, settings, seed)
    real = np.concatenate([np.asarray(c, float) for c in train.counts]).mean(0)  # (N,)
    target = torch.as_tensor(real, dtype=torch.float32)
    fitted = bundle.history.bias.detach().clone()
    bias, best, best_error = fitted.clone(), fitted.clone(), torch.full_like(fitted, np.inf)
    low, high = torch.full_like(fitted, -np.inf), torch.full_like(fitted, np.inf)
    before = None
    draw_seed = seed + 1_000_003  # the same draws at every trial intercept (monotone in it)
    for _ in range(n_iters):
        mean, slope = _mean_counts(bundle, batches, bias, draw_seed)
        before = mean if before is None else before
        error = torch.log(mean + _LOG_EPS) - torch.log(target + _LOG_EPS)  # (N,)
        better = error.abs() < best_error
        best, best_error = torch.where(better, bias, best), torch.where(better, error.abs(),
                                                                        best_error)
        if best_error.max() < _TOLERANCE:
            break
        low, high = torch.where(error < 0, bias, low), torch.where(error >= 0, bias, high)
        # safeguarded Newton: the step, unless it leaves the bracket; then the bracket's middle
        proposal = bias - (error / slope.clamp_min(0.05)).clamp(-_MAX_STEP, _MAX_STEP)
        bracketed = torch.isfinite(low) & torch.isfinite(high)
        outside = (proposal <= low) | (proposal >= high)
        bias = torch.where(bracketed & outside, (low + high) / 2, proposal)
    bias = best
    after, _ = _mean_counts(bundle, batches, bias, draw_seed + 1)  # fresh draws
    bin_s = train.bin_s
    out = RateCalibration(bias=bias, shift=bias - fitted, real_hz=real / bin_s,
                          before_hz=before.numpy() / bin_s, after_hz=after.numpy() / bin_s)
    rep = out.report()
    log.info("rate calibration (%d sampled trials, %.0f s): population %.1f Hz -> %.1f Hz "
             "(train %.1f), per-neuron rate RMSE %.2f -> %.2f Hz",
             sum(len(m) for _, m in batches), time.perf_counter() - start,
             rep["calibration_population_hz_before"], rep["calibration_population_hz_after"],
             rep["calibration_population_hz_real"], rep["calibration_rate_rmse_hz_before"],
             rep["calibration_rate_rmse_hz_after"])
    return out
