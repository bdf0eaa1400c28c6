"""Issue 2 must-shows 2-3 on the real M1 centre-out data: realism against held-out test trials.

For each sampler setting (DDIM 5/10/20/50 steps, DDPM 1000 steps; streamed, and whole-window
when the bundle has a window denoiser), generate one trial per test trial on that trial's
velocity, then compare with the real test trials beside the baselines and the data floor
(half vs half of the test trials), each with a bootstrap interval. Reports sampling time per
bin. The decoder behind ``decode_r2`` is a ridge fitted on real train trials.

    python scripts/m1_benchmark.py --model runs/m1-velocity --json runs/m1_benchmark.json
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import replace

import numpy as np

from ldns_sim.data.load import load_spike_data
from ldns_sim.evaluate_command import make_baselines, sample_model
from ldns_sim.evaluation import evaluate_sets

DATA = "../shared/data/m1_center_out_trialdata/center_out_data.mat"
KEY_METRICS = ("psch_kl", "corr_rmse", "corr_rmse_x4", "mean_isi_rmse", "std_isi_rmse",
               "rate_rmse", "fano_rmse", "k_prob_l1", "autocorr_rmse", "decode_r2")


def _row(estimates: dict) -> dict:
    return {k: [estimates[k].value, estimates[k].lo, estimates[k].hi]
            for k in KEY_METRICS if k in estimates}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="runs/m1-velocity")
    parser.add_argument("--data", default=DATA)
    parser.add_argument("--steps", default="5,10,20,50,1000")
    parser.add_argument("--n-boot", type=int, default=50)
    parser.add_argument("--bins", type=int, default=48)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    data = load_spike_data(args.data)
    train, test = data.select("train"), data.select("test")
    # every test trial cut to its first --bins bins: one batch per sampler (M1 trials have
    # 48..177 bins; the whole-window sampler would otherwise run once per distinct length)
    test = replace(test, counts=tuple(c[:args.bins] for c in test.counts),
                   behaviour=tuple(b[:args.bins] for b in test.behaviour))
    rng = np.random.default_rng(0)
    candidates, timing = {}, {}
    n_bins = test.n_bins_total
    for n_steps in (int(s) for s in args.steps.split(",")):
        eta = 1.0 if n_steps == 1000 else 0.0
        label = "DDPM 1000" if n_steps == 1000 else f"DDIM {n_steps}"
        start = time.perf_counter()
        sets, _ = sample_model(args.model, test, n_steps, np.random.SeedSequence(n_steps), eta)
        elapsed = time.perf_counter() - start
        for name, s in sets.items():
            key = f"{name} {label}"
            candidates[key] = s
            timing[key] = elapsed / len(sets) / n_bins * 1e3  # ms per generated bin (batched)
    candidates |= make_baselines(train, test, rng)
    result = evaluate_sets(test, candidates, np.random.default_rng(1), n_boot=args.n_boot,
                           decoder_data=train)
    report = {"model": args.model, "n_test_trials": test.n_trials, "n_train_trials":
              train.n_trials, "ms_per_bin_batched": timing,
              "decode_r2_real": result.settings["decode_r2_real"],
              "candidates": {k: _row(v) for k, v in result.candidates.items()},
              "floor": _row(result.floor)}
    print(result.format_table())
    print(f"decoder fitted on the train trials; R^2 on the real test trials (cut): "
          f"{result.settings['decode_r2_real']:.3f}")
    text = json.dumps(report, indent=2, default=float)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text)
    print(json.dumps(timing, indent=2))


if __name__ == "__main__":
    main()
