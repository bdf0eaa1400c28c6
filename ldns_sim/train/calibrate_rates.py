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
each train trial's condition (the default streaming sampler), keep their rates fixed, and solve
mean count(intercept) = the real train mean, neuron by neuron. The counts are drawn by inverse
CDF from the same uniforms at every trial intercept, so the sampled mean is a deterministic,
non-decreasing function of it; the solver takes secant steps (a Newton step on the mean
intensity first), falls back to the middle of the bracket when a step leaves it, and keeps
each neuron's best intercept.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import torch

from ldns_sim.bundle import ModelBundle
from ldns_sim.core import DEFAULT_STEPS, SpikeData
from ldns_sim.simulator import SamplerSettings, sample_trials

log = logging.getLogger(__name__)

_MAX_STEP = 1.0  # largest intercept change per step (units of the softplus's argument)
_MIN_SLOPE = 0.05  # smallest d log(mean) / d intercept a step divides by
TOLERANCE = 1e-3
"""|log(sampled mean / real mean)| at which a neuron counts as calibrated."""


@dataclass(frozen=True)
class RateCalibration:
    bias: torch.Tensor  # (N,) the calibrated intercept of SpikeHistoryModel
    shift: torch.Tensor  # (N,) calibrated minus fitted intercept (softplus-argument units)
    fit_log_error: np.ndarray  # (N,) |log(sampled / real mean count)| at ``bias``, fitting draws
    real_hz: np.ndarray  # (N,) the train trials' mean rates
    before_hz: np.ndarray  # (N,) the samples' mean count rate with the fitted intercept
    after_hz: np.ndarray  # (N,) ... with the calibrated intercept (fresh draws)
    n_silent: int  # neurons without a spike in the train trials (left as fitted)

    def report(self) -> dict[str, float]:
        """Scalars for the bundle's metrics."""
        active = self.real_hz > 0
        return {
            "calibration_population_hz_real": float(self.real_hz.sum()),
            "calibration_population_hz_before": float(self.before_hz.sum()),
            "calibration_population_hz_after": float(self.after_hz.sum()),
            "calibration_rate_rmse_hz_before": _rmse(self.before_hz, self.real_hz),
            "calibration_rate_rmse_hz_after": _rmse(self.after_hz, self.real_hz),
            "calibration_max_intercept_shift": float(self.shift.abs().max()),
            "calibration_max_log_error": float(self.fit_log_error[active].max()),
            "calibration_units_unconverged": float((self.fit_log_error[active] > TOLERANCE).sum()),
            "calibration_units_silent": float(self.n_silent),
        }


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


def sampled_rates(bundle: ModelBundle, train: SpikeData, samples_per_trial: int,
                  settings: SamplerSettings, seed: int, batch: int = 256
                  ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The model's rates (counts per bin) on every train trial's condition,
    ``samples_per_trial`` each, as batches ``(rates (B, N, L), in_trial (B, L))`` of trials
    of similar length: trials sorted by length, each batch sampled at its longest (the sampler
    is causal, so a trial's bins do not depend on the padding after its end)."""
    lengths = np.array([len(c) for c in train.counts])
    order = np.repeat(np.argsort(lengths, kind="stable"), samples_per_trial)
    out = []
    for k, start in enumerate(range(0, len(order), batch)):
        idx = order[start:start + batch]
        n_bins = int(lengths[idx].max())
        behaviour = direction = None
        if bundle.meta.condition == "velocity":  # hold the last sample past a trial's end
            behaviour = np.stack([np.pad(np.asarray(train.behaviour[i], np.float32),
                                         ((0, n_bins - lengths[i]), (0, 0)), mode="edge")
                                  for i in idx])  # (B, L, n_behaviour)
        elif bundle.meta.condition == "direction":
            direction = np.asarray(train.direction_rad, float)[idx]
        gen = sample_trials(bundle, len(idx), n_bins, behaviour, direction, settings,
                            seed=seed + k, batch=batch)
        rates = torch.as_tensor(gen.rates).transpose(1, 2)  # (B, N, L)
        in_trial = torch.as_tensor(np.arange(n_bins)[None, :] < lengths[idx][:, None])
        out.append((rates, in_trial))
    return out


@torch.no_grad()
def _mean_counts(bundle: ModelBundle, batches, bias: torch.Tensor, seed: int
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """At intercept ``bias`` (N,): each neuron's mean count per in-trial bin of counts drawn
    causally through the history model (from a warm history, as sampling does), and
    d log(mean intensity) / d bias; (N,) each. The same ``seed`` gives the same uniforms."""
    history = bundle.history
    fitted = history.bias.detach().clone()
    generator = torch.Generator().manual_seed(seed)
    count_sum = torch.zeros(history.cfg.n_neurons, dtype=torch.float64)
    mu_sum = torch.zeros_like(count_sum)
    dmu_sum = torch.zeros_like(count_sum)  # sum of d softplus / d bias = sigmoid(drive)
    n_trial_bins = 0

    def draw(buffer, rates_t):
        drive = history.drive(buffer, rates_t)  # (B, N)
        counts = history.inverse_cdf_counts(torch.nn.functional.softplus(drive), generator)
        return drive, counts, history.shift_in(buffer, counts)

    try:
        history.bias.copy_(bias)
        for rates, in_trial in batches:
            buffer = history.initial_buffer(rates.shape[0])
            for _ in range(history.warm_up_bins):  # at the first bin's rates, dropped
                _, _, buffer = draw(buffer, rates[..., 0])
            for t in range(rates.shape[-1]):
                drive, counts, buffer = draw(buffer, rates[..., t])
                weight = in_trial[:, t, None].double()  # (B, 1)
                count_sum += (counts.double() * weight).sum(0)
                mu_sum += (torch.nn.functional.softplus(drive).double() * weight).sum(0)
                dmu_sum += (torch.sigmoid(drive).double() * weight).sum(0)
                n_trial_bins += int(in_trial[:, t].sum())
    finally:
        history.bias.copy_(fitted)
    return (count_sum / n_trial_bins).float(), (dmu_sum / mu_sum.clamp_min(1e-12)).float()


def calibrate_rates(bundle: ModelBundle, train: SpikeData, samples_per_trial: int = 5,
                    n_iters: int = 10, seed: int = 0,
                    settings: SamplerSettings | None = None) -> RateCalibration:
    """Fit the observation model's intercept (module docstring). ``bundle`` is not changed."""
    if bundle.history is None:
        raise ValueError("this bundle has no observation model to calibrate")
    if bundle.n_neurons != train.n_neurons:
        raise ValueError(f"bundle has {bundle.n_neurons} neurons, data {train.n_neurons}")
    if n_iters < 1 or samples_per_trial < 1:
        raise ValueError(f"n_iters and samples_per_trial must be >= 1, got {n_iters} and "
                         f"{samples_per_trial}")
    settings = settings or SamplerSettings(n_steps=DEFAULT_STEPS)
    start = time.perf_counter()
    sample_seed, draw_seed, check_seed = (int(s.generate_state(1)[0])
                                          for s in np.random.SeedSequence(seed).spawn(3))
    batches = sampled_rates(bundle, train, samples_per_trial, settings, sample_seed)
    real_hz = train.mean_rate_hz()  # (N,)
    target = torch.as_tensor(real_hz * train.bin_s, dtype=torch.float32)  # counts per bin
    active = target > 0  # a silent neuron keeps its fitted intercept
    log_target = torch.log(target.clamp_min(1e-12))
    fitted = bundle.history.bias.detach().clone()
    bias, best = fitted.clone(), fitted.clone()
    best_error = torch.full_like(fitted, np.inf)
    low, high = torch.full_like(fitted, -np.inf), torch.full_like(fitted, np.inf)
    previous = None  # (bias, error) of the last evaluation, for the secant
    before = None
    for _ in range(n_iters):
        mean, intensity_slope = _mean_counts(bundle, batches, bias, draw_seed)
        before = mean if before is None else before
        error = torch.where(active, torch.log(mean.clamp_min(1e-12)) - log_target, 0.0)
        better = error.abs() < best_error
        best = torch.where(better, bias, best)
        best_error = torch.where(better, error.abs(), best_error)
        if best_error.max() < TOLERANCE:
            break
        low = torch.where(error < 0, bias, low)
        high = torch.where(error >= 0, bias, high)
        slope = intensity_slope
        if previous is not None:
            step_bias, step_error = bias - previous[0], error - previous[1]
            moved = step_bias.abs() > 1e-9
            secant = step_error / torch.where(moved, step_bias, 1.0)
            slope = torch.where(moved & (secant > 0), secant, intensity_slope)
        previous = (bias, error)
        proposal = bias - (error / slope.clamp_min(_MIN_SLOPE)).clamp(-_MAX_STEP, _MAX_STEP)
        bracketed = torch.isfinite(low) & torch.isfinite(high)
        outside = (proposal <= low) | (proposal >= high)
        bias = torch.where(active, torch.where(bracketed & outside, (low + high) / 2,
                                               proposal), fitted)
    after, _ = _mean_counts(bundle, batches, best, check_seed)  # fresh draws
    out = RateCalibration(bias=best, shift=best - fitted, fit_log_error=best_error.numpy(),
                          real_hz=real_hz, before_hz=before.numpy() / train.bin_s,
                          after_hz=after.numpy() / train.bin_s,
                          n_silent=int((~active).sum()))
    rep = out.report()
    log.info("rate calibration (%d sampled trials, %.0f s): population %.1f Hz -> %.1f Hz "
             "(train %.1f), per-neuron rate RMSE %.2f -> %.2f Hz; %d of %d units within "
             "%.0e of their train mean (largest |log error| %.4f)",
             sum(len(m) for _, m in batches), time.perf_counter() - start,
             rep["calibration_population_hz_before"], rep["calibration_population_hz_after"],
             rep["calibration_population_hz_real"], rep["calibration_rate_rmse_hz_before"],
             rep["calibration_rate_rmse_hz_after"],
             int(active.sum()) - int(rep["calibration_units_unconverged"]), int(active.sum()),
             TOLERANCE, rep["calibration_max_log_error"])
    return out
