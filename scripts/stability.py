"""Issue 3 must-show 4: does a long stream stay inside the training distribution?

Runs the streaming generator (the exact object `ldns-sim stream` drives, same seed handling)
for ``--minutes`` of simulated time as fast as it computes, driven by the scripted centre-out
user (``--behaviour script``) or by the recorded velocity of the held-out test trials laid end
to end and looped (``--behaviour replay``), and reports per minute: population firing rate,
latent mean and std (normalised units; pooled, and per latent: the RMS of the latents' block
means and their mean within-block std), and pairwise spike-count correlation, beside the same
statistics of the training data: the 5th-95th percentile range of 200 random 1-minute blocks of
training bins, and for the latents of the training trials as the training pipeline encodes them
for the diffusion model (``encode_trials`` over the trials laid end to end).

    python scripts/stability.py --model m1-velocity --minutes 30 --json runs/stability.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from ldns_sim.bundle import load_bundle
from ldns_sim.core import DEFAULT_STEPS
from ldns_sim.data.load import load_spike_data
from ldns_sim.data.windows import laid_end_to_end
from ldns_sim.pretrained import resolve_model
from ldns_sim.simulator import SamplerSettings, StreamingGenerator, with_model_defaults
from ldns_sim.sources.script_source import ScriptedCenterOut
from ldns_sim.threads import use_one_thread
from ldns_sim.train.pipeline import encode_trials

DATA = "../shared/data/m1_center_out_trialdata/center_out_data.mat"


def block_stats(counts: np.ndarray, latents_norm: np.ndarray | None, bin_s: float) -> dict:
    corr = np.corrcoef(counts.T)
    pairs = corr[np.triu_indices_from(corr, k=1)]
    out = {"rate_hz": float(counts.mean() / bin_s),
           "mean_pair_corr": float(np.nanmean(pairs))}
    if latents_norm is not None:
        out |= latent_stats(latents_norm)
    return out


def latent_stats(latents_norm: np.ndarray) -> dict:
    """(n_bins, Z) normalised latents of a block -> pooled mean and std, and per latent: the
    RMS over latents of each one's block mean (how far the block sits from the training
    centre) and the mean over latents of each one's std within the block."""
    return {"latent_mean": float(latents_norm.mean()), "latent_std": float(latents_norm.std()),
            "latent_offset_rms": float(np.sqrt((latents_norm.mean(axis=0) ** 2).mean())),
            "latent_within_std": float(latents_norm.std(axis=0).mean())}


def _behaviour(kind: str, bundle, data):
    """velocity_at(t_s) -> (n_behaviour,) for the scripted user or the replayed test trials."""
    if kind == "script":
        user = ScriptedCenterOut(peak_speed=bundle.meta.velocity_scale,
                                 rng=np.random.default_rng(0), start_s=0.0)
        return user.velocity_at
    test = data.select("test")
    replay = np.concatenate([np.asarray(b, dtype=np.float32) for b in test.behaviour])

    def velocity_at(t_s: float) -> np.ndarray:
        return replay[int(round(t_s / test.bin_s)) % len(replay)]

    return velocity_at


@torch.no_grad()
def _training_latents(bundle, train) -> np.ndarray:
    """(n_bins, Z) un-normalised latents of the training trials laid end to end, encoded as
    the training pipeline encodes them for the diffusion model."""
    return encode_trials(bundle.ae, laid_end_to_end(train), bundle.meta.train_config["ae"]
                         ["window_bins"])[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="m1-velocity")
    parser.add_argument("--data", default=DATA)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--json", default=None)
    parser.add_argument("--behaviour", choices=["script", "replay"], default="script")
    parser.add_argument("--guidance", type=float, default=None,
                        help="guidance weight (default: the model's)")
    parser.add_argument("--context-noise", type=int, default=None,
                        help="context noise level (default: the model's)")
    args = parser.parse_args()
    if int(args.minutes) < 2:
        parser.error(f"--minutes {args.minutes:g}: at least 2 (the drift is a slope over minutes)")
    use_one_thread()  # torch and BLAS, as `ldns-sim stream`
    bundle = load_bundle(resolve_model(args.model))
    bin_s = bundle.meta.bin_s
    settings = with_model_defaults(bundle, SamplerSettings(
        n_steps=args.steps, guidance=args.guidance, context_noise_t=args.context_noise))
    gen = StreamingGenerator(bundle, settings, seed=0)
    data = load_spike_data(args.data)
    velocity_at = _behaviour(args.behaviour, bundle, data)
    bins_per_minute = int(round(60 / bin_s))
    n_minutes = int(args.minutes)
    mean, std = bundle.latent_mean.numpy(), bundle.latent_std.numpy()
    minutes, start = [], time.perf_counter()
    for minute in range(n_minutes):
        counts, latents = [], []
        for b in range(bins_per_minute):
            t = (minute * bins_per_minute + b + 1) * bin_s
            chunk = gen.next_chunk(velocity_at(t)[None, :])
            counts.append(chunk.counts[0])
            latents.append(chunk.latents[0])
        stats = block_stats(np.array(counts), (np.array(latents) - mean) / std, bin_s)
        minutes.append(stats)
        print(f"minute {minute + 1}: {stats}", flush=True)
    compute_s = time.perf_counter() - start

    train = data.select("train")
    flat = np.concatenate(train.counts)
    flat_latents = (_training_latents(bundle, train) - mean) / std
    rng = np.random.default_rng(0)
    blocks = [block_stats(flat[i:i + bins_per_minute], None, bin_s)
              for i in rng.integers(0, len(flat) - bins_per_minute, size=200)]
    blocks_z = [latent_stats(flat_latents[i:i + bins_per_minute])
                for i in rng.integers(0, len(flat_latents) - bins_per_minute, size=200)]
    ref = {k: [float(np.percentile([b[k] for b in blocks], q)) for q in (5, 50, 95)]
           for k in ("rate_hz", "mean_pair_corr")}
    ref |= {k: [float(np.percentile([b[k] for b in blocks_z], q)) for q in (5, 50, 95)]
            for k in blocks_z[0]}
    drift = {k: float(np.polyfit(np.arange(n_minutes), [m[k] for m in minutes], 1)[0])
             for k in minutes[0]}
    inside = {k: int(sum(ref[k][0] <= m[k] <= ref[k][2] for m in minutes)) for k in ref}
    report = {"model": args.model, "behaviour": args.behaviour,
              "guidance": settings.guidance, "context_noise_t": settings.context_noise_t,
              "minutes": n_minutes, "steps": args.steps,
              "compute_seconds": compute_s, "per_minute": minutes,
              "training_per_minute_p5_p50_p95": ref, "drift_per_minute_slope": drift,
              "minutes_inside_training_p5_p95": inside}
    print(json.dumps({k: v for k, v in report.items() if k != "per_minute"}, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
