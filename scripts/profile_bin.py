"""Where one streamed bin's time goes: the parts of a backend's step, timed bin by bin.

    python scripts/profile_bin.py --model m1-velocity --sleep-ms 48 --bins 300 --backend compiled

``--sleep-ms`` between bins imitates the live loop (0: back to back). Runs at SCHED_FIFO 10
where allowed, with one torch and one BLAS thread, as ``ldns-sim stream``; prints the median of
each part over the bins after the first 50, and the total.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from ldns_sim.bundle import load_bundle
from ldns_sim.core import DEFAULT_STEPS
from ldns_sim.pretrained import resolve_model
from ldns_sim.simulator import SamplerSettings, StreamingGenerator
from ldns_sim.threads import use_one_thread


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="m1-velocity")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--sleep-ms", type=float, default=48.0)
    parser.add_argument("--bins", type=int, default=300)
    parser.add_argument("--backend", choices=("compiled", "numpy"), default="compiled")
    args = parser.parse_args()
    use_one_thread()
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    except (AttributeError, PermissionError, OSError) as exc:
        print(f"normal priority ({exc})")
    bundle = load_bundle(resolve_model(args.model))
    gen = StreamingGenerator(bundle, SamplerSettings(n_steps=args.steps), seed=0,
                             backend=args.backend)
    n_cond = len(gen.condition_names)
    beh = np.full((1, n_cond), 0.5, np.float32) * gen._np_inv_scale if n_cond else None
    parts: dict[str, list[float]] = {}

    def tick(name: str, t0: float) -> float:
        t1 = time.perf_counter()
        parts.setdefault(name, []).append(t1 - t0)
        return t1

    if args.backend == "compiled":
        profile_compiled(gen, beh, args, tick)
    else:
        profile_numpy(gen, beh, args, tick)
    total = 0.0
    for name, values in parts.items():
        median_ms = float(np.median(values[50:])) * 1e3
        total += median_ms
        print(f"{name:34s} {median_ms:6.3f} ms")
    print(f"{'total (sum of medians)':34s} {total:6.3f} ms")


def _decode_and_draw(gen: StreamingGenerator, z: np.ndarray, tick, t: float) -> None:
    """The parts after the latent step, the same on both backends: decoder, spike history."""
    rates = gen._np_decoder(z[0] * gen._np_std + gen._np_mean)
    t = tick("decoder", t)
    if gen._np_history is not None:
        gen._np_history.step(rates, gen._generator)
        tick("spike-history draw", t)


def profile_compiled(gen: StreamingGenerator, beh, args, tick) -> None:
    sampler, rng = gen._np_sampler, gen._generator
    for _ in range(args.bins):
        time.sleep(args.sleep_ms / 1e3)
        t = time.perf_counter()
        in_pred, in_commit = sampler._input_terms(beh)
        t = tick("input terms", t)
        z, ctx_noise = sampler._draw(rng)
        t = tick("torch.randn", t)
        z = sampler._latent_step(z, ctx_noise, in_pred, in_commit)
        t = tick("latent step (one kernel call)", t)
        _decode_and_draw(gen, z, tick, t)


def profile_numpy(gen: StreamingGenerator, beh, args, tick) -> None:
    sampler, stepper, rng = gen._np_sampler, gen._np_sampler.stepper, gen._generator
    for _ in range(args.bins):
        time.sleep(args.sleep_ms / 1e3)
        t = time.perf_counter()
        rows = sampler._model_behaviour(beh)
        t = tick("behaviour rows", t)
        stepper.begin_bin(rows)
        t = tick("per-bin state terms", t)
        z = torch.randn((1, sampler.n_latents), generator=rng).numpy()
        t = tick("torch.randn", t)
        for k, step in enumerate(sampler.steps):
            eps = sampler._eps(z, step["t"])
            z0 = np.clip((z - step["c_eps"] * eps) * step["inv_sqrt_abar"], -5, 5)
            z = z0 if step["last"] else step["sqrt_abar_prev"] * z0 + step["c_dir"] * eps
            t = tick(f"denoiser pass {k + 1} + DDIM update", t)
        stepper.commit(z, 0)
        t = tick("commit pass", t)
        _decode_and_draw(gen, z, tick, t)


if __name__ == "__main__":
    main()
