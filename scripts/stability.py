"""Issue 3 must-show 4: does a long stream stay inside the training distribution?

Runs the streaming generator (the exact object `ldns-sim stream` drives, same seed handling)
for ``--minutes`` of simulated time as fast as it computes, driven by the scripted centre-out
user, and reports per minute: population firing rate, latent mean and std (normalised units),
and pairwise spike-count correlation, beside the same statistics of the training data
(the 5th-95th percentile range of per-minute blocks of training bins).

    python scripts/stability.py --model runs/m1-velocity --minutes 30 --json runs/stability.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from ldns_sim.bundle import load_bundle
from ldns_sim.data.load import load_spike_data
from ldns_sim.pretrained import resolve_model
from ldns_sim.simulator import SamplerSettings, StreamingGenerator
from ldns_sim.sources.script_source import ScriptedCenterOut

DATA = "../shared/data/m1_center_out_trialdata/center_out_data.mat"


def block_stats(counts: np.ndarray, latents_norm: np.ndarray | None, bin_s: float) -> dict:
    corr = np.corrcoef(counts.T)
    pairs = corr[np.triu_indices_from(corr, k=1)]
    out = {"rate_hz": float(counts.mean() / bin_s),
           "mean_pair_corr": float(np.nanmean(pairs))}
    if latents_norm is not None:
        out |= {"latent_mean": float(latents_norm.mean()), "latent_std": float(latents_norm.std())}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="m1-velocity")
    parser.add_argument("--data", default=DATA)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    bundle = load_bundle(resolve_model(args.model))
    bin_s = bundle.meta.bin_s
    gen = StreamingGenerator(bundle, SamplerSettings(n_steps=args.steps), seed=0)
    user = ScriptedCenterOut(peak_speed=bundle.meta.velocity_scale,
                             rng=np.random.default_rng(0), start_s=0.0)
    bins_per_minute = int(round(60 / bin_s))
    n_minutes = int(args.minutes)
    mean, std = bundle.latent_mean.numpy(), bundle.latent_std.numpy()
    minutes, start = [], time.perf_counter()
    for minute in range(n_minutes):
        counts, latents = [], []
        for b in range(bins_per_minute):
            t = (minute * bins_per_minute + b + 1) * bin_s
            chunk = gen.next_chunk(user.velocity_at(t)[None, :])
            counts.append(chunk.counts[0])
            latents.append(chunk.latents[0])
        stats = block_stats(np.array(counts), (np.array(latents) - mean) / std, bin_s)
        minutes.append(stats)
        print(f"minute {minute + 1}: {stats}", flush=True)
    compute_s = time.perf_counter() - start

    train = load_spike_data(args.data).select("train")
    flat = np.concatenate(train.counts)
    rng = np.random.default_rng(0)
    blocks = [block_stats(flat[i:i + bins_per_minute], None, bin_s)
              for i in rng.integers(0, len(flat) - bins_per_minute, size=200)]
    ref = {k: [float(np.percentile([b[k] for b in blocks], q)) for q in (5, 50, 95)]
           for k in ("rate_hz", "mean_pair_corr")}
    ref["latent_mean"] = [0.0, 0.0, 0.0]  # training latents are normalised to mean 0, std 1
    ref["latent_std"] = [1.0, 1.0, 1.0]
    drift = {k: float(np.polyfit(np.arange(n_minutes), [m[k] for m in minutes], 1)[0])
             for k in minutes[0]}
    inside = {k: int(sum(ref[k][0] <= m[k] <= ref[k][2] for m in minutes))
              for k in ("rate_hz", "mean_pair_corr")}
    report = {"model": args.model, "minutes": n_minutes, "steps": args.steps,
              "compute_seconds": compute_s, "per_minute": minutes,
              "training_per_minute_p5_p50_p95": ref, "drift_per_minute_slope": drift,
              "minutes_inside_training_p5_p95": inside}
    print(json.dumps({k: v for k, v in report.items() if k != "per_minute"}, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
