"""Population rate of a direction model's samples over a long stretch, in blocks of bins.

Each generated trial starts from an empty context at its start (as `ldns-sim sample` and a
`ldns-sim stream --direction` do) and runs on far past the trial length the model learned
from. Beside it, the real train trials' population rate in the same blocks (as far as they
last).

    python scripts/direction_time_course.py runs/m1-direction --bins 300 --block 30
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from ldns_sim.bundle import load_bundle
from ldns_sim.data.load import load_spike_data
from ldns_sim.pretrained import resolve_model
from ldns_sim.simulator import SamplerSettings, sample_trials

DATA = "../shared/data/m1_center_out_trialdata/center_out_data.mat"


def block_rates_hz(counts: list[np.ndarray], bin_s: float, block: int, n_bins: int
                   ) -> list[float]:
    """Mean population rate per neuron (Hz) in each block of bins, over the trials that reach it."""
    out = []
    for start in range(0, n_bins, block):
        pieces = [c[start:start + block] for c in counts if len(c) > start]
        if not pieces:
            break
        stacked = np.concatenate(pieces)  # (bins, N)
        out.append(float(stacked.sum(1).mean() / (stacked.shape[1] * bin_s)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--data", default=DATA)
    parser.add_argument("--bins", type=int, default=300)
    parser.add_argument("--block", type=int, default=30)
    parser.add_argument("--per-direction", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    bundle = load_bundle(resolve_model(args.model))
    directions = np.repeat(np.arange(8) * np.pi / 4, args.per_direction)
    gen = sample_trials(bundle, len(directions), args.bins, direction_rad=directions,
                        settings=SamplerSettings(n_steps=4), seed=args.seed)
    bin_s = bundle.meta.bin_s
    sampled = block_rates_hz(list(gen.counts), bin_s, args.block, args.bins)
    real = block_rates_hz(list(load_spike_data(args.data).select("train").counts), bin_s,
                          args.block, args.bins)
    print(f"blocks of {args.block} bins ({args.block * bin_s:g} s), population rate (Hz):")
    print("sampled:", " ".join(f"{r:.1f}" for r in sampled))
    print("real train trials:", " ".join(f"{r:.1f}" for r in real))


if __name__ == "__main__":
    main()
