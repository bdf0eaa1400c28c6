"""Issue 2 must-show 1: the Lorenz benchmark of the LDNS reference, on this machine.

Trains the ``lorenz`` preset on synthetic Lorenz data (ground truth known), then reports
* autoencoder rates vs true rates, R^2 on held-out trials;
* diffusion samples vs training data: Pearson r of per-neuron mean ISI, std ISI, the pairwise
  correlation matrix and the population spike-count density, computed with the reference's
  conventions (ldns-reference.md 6.1-6.2; reference values 0.997 / 0.991 / 0.999 / 0.999),
  for the streaming (causal, bin-by-bin) sampler and the whole-window sampler.

    python scripts/lorenz_benchmark.py --out runs/lorenz --json runs/lorenz.json
    # a trained bundle again, streaming sampler only, the old step spacing:
    python scripts/lorenz_benchmark.py --out runs/lorenz --sample-only --samplers stream \
        --step-spacing leading
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import replace

import numpy as np
import torch

from ldns_sim.bundle import load_bundle
from ldns_sim.core import DEFAULT_STEP_SPACING, STEP_SPACINGS
from ldns_sim.data.lorenz import make_lorenz
from ldns_sim.evaluation.isi import isi_stats
from ldns_sim.evaluation.ldns_errors import correlation_pearson_r, pearson_r, unique_pairs
from ldns_sim.evaluation.spike_stats import (
    population_count_density,
    population_counts,
    spike_count_correlation,
)
from ldns_sim.simulator import SamplerSettings, sample_trials
from ldns_sim.train.config import preset
from ldns_sim.train.pipeline import train_model, with_overrides

REFERENCE = {"mean_isi": 0.9969, "std_isi": 0.9905, "correlation": 0.9988, "density": 0.9988}


def realism(real: list[np.ndarray], sampled: list[np.ndarray], bin_s: float) -> dict:
    """Pearson r of each statistic, sampled vs real, with the reference's conventions."""
    mean_r, std_r = isi_stats(real, bin_s)
    mean_s, std_s = isi_stats(sampled, bin_s)
    corr_r = spike_count_correlation(real)
    corr_s = spike_count_correlation(sampled)
    top = int(max(population_counts(real).max(), population_counts(sampled).max()))
    return {
        "mean_isi": pearson_r(mean_s, mean_r),
        "std_isi": pearson_r(std_s, std_r),
        "correlation": correlation_pearson_r(corr_s, corr_r),
        "correlation_unique_pairs": pearson_r(unique_pairs(corr_s), unique_pairs(corr_r)),
        "density": pearson_r(population_count_density(sampled, top),
                             population_count_density(real, top)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/lorenz")
    parser.add_argument("--json", default=None)
    parser.add_argument("--n-trials", type=int, default=1000)
    parser.add_argument("--epochs-ae", type=int, default=40)
    parser.add_argument("--epochs-diffusion", type=int, default=80)
    parser.add_argument("--window-steps", type=int, default=1000)
    parser.add_argument("--stream-steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--window-trials", type=int, default=None,
                        help="sample only this many trials with the window sampler (its 1000 "
                             "DDPM steps over whole windows are the slow part on a CPU)")
    parser.add_argument("--sample-only", action="store_true",
                        help="no training: sample the bundle already in --out")
    parser.add_argument("--samplers", default="stream,window",
                        help="comma-separated: stream, window (default both)")
    parser.add_argument("--step-spacing", default=DEFAULT_STEP_SPACING, choices=STEP_SPACINGS,
                        help="the streaming sampler's step spacing (default trailing)")
    args = parser.parse_args()
    samplers = set(args.samplers.split(","))
    unknown = samplers - {"stream", "window"}
    if unknown:
        parser.error(f"--samplers: unknown {sorted(unknown)}; expected stream and/or window")
    logging.basicConfig(level=logging.INFO)
    torch.set_num_threads(args.threads)
    data = make_lorenz(args.n_trials, n_bins=256, n_neurons=128, seed=0)
    cfg = with_overrides(preset("lorenz"), ae={"epochs": args.epochs_ae},
                         diffusion={"epochs": args.epochs_diffusion})
    cfg = replace(cfg, seed=0)
    t0 = time.perf_counter()
    if not args.sample_only:
        train_model(data, args.out, cfg, name="lorenz")
    train_s = None if args.sample_only else time.perf_counter() - t0
    bundle = load_bundle(args.out)

    test = data.select("test")
    counts = torch.as_tensor(np.stack(test.counts), dtype=torch.float32).transpose(1, 2)
    with torch.no_grad():
        rates = bundle.ae(counts)[0].transpose(1, 2).numpy()  # (n, L, N) counts per bin
    true = np.stack(test.true_rates)
    ae_r2 = 1.0 - ((rates - true) ** 2).sum() / ((true - true.mean()) ** 2).sum()

    train = data.select("train")
    results = {"n_train_trials": train.n_trials, "train_seconds": train_s, "ae_rates_r2": ae_r2,
               "reference": REFERENCE, "samplers": {}}
    for name, settings in (
        ("stream", SamplerSettings(n_steps=args.stream_steps, mode="stream",
                                   step_spacing=args.step_spacing)),
        ("window", SamplerSettings(n_steps=args.window_steps, eta=1.0, mode="window")),
    ):
        if name not in samplers:
            continue
        t1 = time.perf_counter()
        n = train.n_trials if name == "stream" else (args.window_trials or train.n_trials)
        gen = sample_trials(bundle, n, 256, settings=settings, seed=1)
        stats = realism(list(train.counts), list(gen.counts), data.bin_s)
        stats["n_samples"] = n
        stats["sample_seconds"] = time.perf_counter() - t1
        stats["settings"] = (f"{settings.mode}, {settings.n_steps} steps ({settings.step_spacing}"
                             f"), eta {settings.eta}")
        results["samplers"][name] = stats
        logging.info("%s: %s", name, stats)
    floor = realism(list(train.counts[: train.n_trials // 2]),
                    list(train.counts[train.n_trials // 2:]), data.bin_s)
    results["data_half_vs_half"] = floor
    text = json.dumps(results, indent=2, default=float)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
