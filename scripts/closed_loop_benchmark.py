"""Closed-loop decoder benchmark: scores per decoder, under perturbations, and offline R².

With the default model (or ``--model DIR``) and the scripted user, in process (as fast as the
model generates, reproducible from ``--seed``):

1. offline R² of each decoder: fitted on real M1 training trials and scored on the real test
   trials; fitted on a synthetic open-loop calibration block and scored on a held-out synthetic
   block; and fitted on synthetic, scored on real (does the simulator teach a usable decoder?);
2. closed-loop scores of each decoder (and of the ideal decoder, the ceiling);
3. closed-loop scores of each decoder under each perturbation, applied for the whole session.

Prints markdown tables and writes JSON (``--json``). Usage::

    python scripts/closed_loop_benchmark.py --model runs/m1-velocity --json cl.json
"""

from __future__ import annotations

import argparse
import json
import logging
import time

import numpy as np

from ldns_sim.closed_loop import (
    ClosedLoopSession,
    calibration_block,
    default_task,
    default_user,
    parse_perturbation,
)
from ldns_sim.closed_loop_command import calibrated_decoder
from ldns_sim.core import DEFAULT_STEPS
from ldns_sim.decoders import make_decoder
from ldns_sim.evaluation.decoding import r2_score
from ldns_sim.threads import use_one_thread

log = logging.getLogger("closed_loop_benchmark")

DATA = "/work/shared/data/m1_center_out_trialdata/center_out_data.mat"
DECODERS = ("wiener", "kalman", "refit")
PERTURBATIONS = ("dropout:0.5", "drift:1", "gain:2", "noise:20", "shuffle:0.5")


def _generator_factory(model: str | None, steps: int):
    if model == "tuning":
        from ldns_sim.testing import TuningCurveGenerator

        return (lambda seed: TuningCurveGenerator(84, 0.05, 1, np.random.default_rng(seed)),
                1.0, "tuning-curves")

    from ldns_sim.bundle import load_bundle
    from ldns_sim.pretrained import resolve_model
    from ldns_sim.simulator import SamplerSettings, StreamingGenerator

    use_one_thread()  # torch and BLAS, as `ldns-sim stream`
    bundle = load_bundle(resolve_model(model))
    return (lambda seed: StreamingGenerator(bundle, SamplerSettings(n_steps=steps), seed=seed),
            float(bundle.meta.velocity_scale), bundle.meta.name)


def offline_r2(make_gen, velocity_scale: float, calibration_s: float, seed: int,
               real_path: str | None) -> dict:
    """Offline R² per decoder: real->real, synthetic->synthetic, synthetic->real."""
    gen = make_gen(seed)
    train = calibration_block(gen, calibration_s, velocity_scale, np.random.default_rng(seed))
    test = calibration_block(gen, calibration_s / 2, velocity_scale,
                             np.random.default_rng(seed + 1))
    real = None
    if real_path:
        from ldns_sim.data.load import load_spike_data

        data = load_spike_data(real_path)
        real = data.select("train"), data.select("test")
    out = {}
    for kind in DECODERS[:2]:  # refit == kalman offline (ReFIT needs closed-loop data)
        row = {}
        synth = make_decoder(kind).fit(train.counts, train.velocity)
        row["synthetic"] = r2_score(test.velocity, synth.predict(test.counts))
        if real is not None:
            tr, te = real
            dec = make_decoder(kind).fit(tr.counts, tr.behaviour)
            row["real"] = r2_score(te.behaviour, dec.predict(te.counts))
            row["synthetic_to_real"] = r2_score(te.behaviour, synth.predict(te.counts))
        out[kind] = row
    return out


def closed_loop(make_gen, velocity_scale, decoder_kind, perturbation, duration_s,
                calibration_s, refit_s, seed) -> dict:
    """Calibrate (once per call, same seed: same decoder) and run one scored session."""
    gen = make_gen(seed)
    rng = np.random.default_rng(seed)
    decoder = calibrated_decoder(decoder_kind, gen, velocity_scale, calibration_s, refit_s, rng)
    perturbations = [parse_perturbation(perturbation)] if perturbation else []
    session = ClosedLoopSession(gen, decoder, default_task(velocity_scale),
                                default_user(velocity_scale), np.random.default_rng(seed + 7),
                                perturbations)
    return session.run(duration_s).scores().as_dict()


def _fmt(x: float, digits: int = 2) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="model name or bundle dir (default m1-velocity); 'tuning'")
    ap.add_argument("--duration", type=float, default=120.0, help="s per scored session")
    ap.add_argument("--perturbed-duration", type=float, default=60.0,
                    help="s per perturbed session")
    ap.add_argument("--calibration", type=float, default=120.0, help="s of calibration")
    ap.add_argument("--refit-block", type=float, default=60.0, help="s of ReFIT block")
    ap.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--real-data", default=DATA, help="real M1 recording ('' to skip)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    make_gen, vs, name = _generator_factory(args.model, args.steps)
    t_start = time.perf_counter()
    results = {"model": name, "velocity_scale": vs, "seed": args.seed,
               "duration_s": args.duration, "perturbed_duration_s": args.perturbed_duration,
               "calibration_s": args.calibration, "refit_block_s": args.refit_block}
    results["offline_r2"] = offline_r2(make_gen, vs, args.calibration, args.seed,
                                       args.real_data or None)
    log.info("offline R²: %s", results["offline_r2"])
    clean, perturbed = {}, {}
    for kind in ("ideal",) + DECODERS:
        clean[kind] = closed_loop(make_gen, vs, kind, None, args.duration, args.calibration,
                                  args.refit_block, args.seed)
        log.info("%s: %s", kind, clean[kind])
        if kind == "ideal":
            continue
        perturbed[kind] = {}
        for spec in PERTURBATIONS:
            perturbed[kind][spec] = closed_loop(make_gen, vs, kind, spec,
                                                args.perturbed_duration, args.calibration,
                                                args.refit_block, args.seed)
            log.info("%s %s: %s", kind, spec, perturbed[kind][spec])
    results.update(closed_loop=clean, perturbed=perturbed,
                   wall_s=time.perf_counter() - t_start)
    print(f"\n### Closed loop, scripted user, model {name} ({args.duration:g} s each)\n")
    print("| decoder | success | time to target (s) | path efficiency | bitrate (bits/s) |"
          " offline R² real | offline R² synthetic | synthetic→real |")
    print("|---|---|---|---|---|---|---|---|")
    for kind, s in clean.items():
        r2 = results["offline_r2"].get("kalman" if kind == "refit" else kind, {})
        print(f"| {kind} | {_fmt(s['success_rate'])} | {_fmt(s['time_to_target_s'])} | "
              f"{_fmt(s['path_efficiency'])} | {_fmt(s['bitrate_bps'])} | "
              f"{_fmt(r2.get('real'))} | {_fmt(r2.get('synthetic'))} | "
              f"{_fmt(r2.get('synthetic_to_real'))} |")
    print(f"\n### Bitrate (bits/s) [success rate] under perturbations "
          f"({args.perturbed_duration:g} s each)\n")
    print("| decoder | none | " + " | ".join(PERTURBATIONS) + " |")
    print("|---|---|" + "---|" * len(PERTURBATIONS))
    for kind in DECODERS:
        cells = [f"{_fmt(clean[kind]['bitrate_bps'])} [{_fmt(clean[kind]['success_rate'])}]"]
        cells += [f"{_fmt(perturbed[kind][p]['bitrate_bps'])} "
                  f"[{_fmt(perturbed[kind][p]['success_rate'])}]" for p in PERTURBATIONS]
        print(f"| {kind} | " + " | ".join(cells) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2, default=float)
        log.info("wrote %s (%.0f s)", args.json, results["wall_s"])


if __name__ == "__main__":
    main()
