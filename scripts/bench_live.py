"""Side-by-side live-loop benchmark: variants of the streaming generator / engine, alternated.

On a shared machine absolute times drift with the load, so variants are compared in one run:
each round runs every variant once for ``--duration`` seconds through the real engine on the
LSL clock (scripted centre-out user, counting sink, as ``ldns-sim bench``), in turn; the
report gives per-variant medians over rounds, the ratios to the first variant, the process
CPU time per wall second (spinning costs CPU), and the load average before and after.

    /work/venv/bin/python scripts/bench_live.py --model m1-velocity --duration 30 --rounds 3 \\
        --variant torch:spin=1 --variant numpy:spin=1

A variant is ``BACKEND[:key=value,...]`` with keys ``spin`` (LslClock busy-wait before each
deadline, ms), ``lookahead`` (fixed look-ahead, ms; default adaptive), ``prio`` (the engine's
``rt_priority``: SCHED_FIFO at this priority, 0 = off; needs CAP_SYS_NICE or an rtprio
limit), ``gc`` (1: the engine freezes the GC while streaming, 0: it does not), ``gil``
(the engine's GIL switch interval while streaming, ms; 0 = Python's default).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from ldns_sim.bench_command import _scripted_source
from ldns_sim.bundle import load_bundle
from ldns_sim.core import DEFAULT_STEPS
from ldns_sim.lsl_config import configure_lsl
from ldns_sim.pretrained import resolve_model
from ldns_sim.realtime.bench import CountingSink, peak_rss_mb
from ldns_sim.realtime.clock import LslClock
from ldns_sim.realtime.engine import Engine
from ldns_sim.simulator import SamplerSettings, StreamingGenerator
from ldns_sim.threads import use_one_thread


def parse_variant(text: str) -> dict:
    backend, _, rest = text.partition(":")
    opts = {"backend": backend, "spin": 1.0, "lookahead": None, "prio": 0.0, "gc": 1.0,
            "gil": 0.0}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        if key not in opts:
            raise SystemExit(f"unknown variant key {key!r} in {text!r}")
        opts[key] = float(value)
    opts["name"] = text
    return opts


def run_variant(bundle, variant: dict, duration_s: float, steps: int, seed: int) -> dict:
    clock = LslClock(spin_s=variant["spin"] / 1e3)
    generator = StreamingGenerator(bundle, SamplerSettings(n_steps=steps), seed=seed,
                                   bins_per_chunk=1, backend=variant["backend"])
    source = _scripted_source(bundle, generator.condition_names, seed, clock_now=clock.now)
    sink = CountingSink()
    lookahead = None if variant["lookahead"] is None else variant["lookahead"] / 1e3
    engine = Engine(generator, source, [sink], clock, lookahead_s=lookahead,
                    duration_s=duration_s, warmup_chunks=3, freeze_gc=bool(variant["gc"]),
                    rt_priority=int(variant["prio"]) or None,
                    gil_switch_s=variant["gil"] / 1e3 or None)
    cpu0, wall0 = time.process_time(), time.monotonic()
    stats = engine.run()
    cpu_s, wall_s = time.process_time() - cpu0, time.monotonic() - wall0
    leads_ms = engine._log._lead_s[:stats.n_chunks] * 1e3  # every chunk's lead (private)
    would_be_late = {f"late_if_L_{x:g}ms": int((leads_ms > x).sum())
                     for x in (1.5, 2, 2.5, 3, 4, 5, 6, 8, 10, 12.5)}
    return {**would_be_late, "rtf": stats.real_time_factor, "lat_p50_ms": stats.latency_p50_s * 1e3,
            "lat_p99_ms": stats.latency_p99_s * 1e3, "lat_max_ms": stats.latency_max_s * 1e3,
            "jit_p99_ms": stats.jitter_p99_s * 1e3, "jit_max_ms": stats.jitter_max_s * 1e3,
            "late": stats.n_late, "chunks": stats.n_chunks,
            "lookahead_ms": stats.lookahead_s * 1e3, "lead_p99_ms": stats.lead_p99_s * 1e3,
            "lead_max_ms": stats.lead_max_s * 1e3, "cpu_pct": 100 * cpu_s / wall_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="m1-velocity")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per variant run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--variant", action="append", required=True)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    configure_lsl("machine")
    use_one_thread()  # torch and BLAS, as `ldns-sim stream`
    bundle = load_bundle(resolve_model(args.model))
    variants = [parse_variant(v) for v in args.variant]
    load_before = os.getloadavg()
    runs = {v["name"]: [] for v in variants}
    for r in range(args.rounds):
        for v in variants:
            res = run_variant(bundle, v, args.duration, args.steps, seed=r)
            res["load_1min"] = os.getloadavg()[0]
            runs[v["name"]].append(res)
            print(f"round {r} {v['name']:<40} " + " ".join(
                f"{k}={x:.3g}" for k, x in res.items()), flush=True)
    keys = ["rtf", "lat_p50_ms", "lat_p99_ms", "lat_max_ms", "jit_p99_ms", "late", "chunks",
            "lookahead_ms", "lead_p99_ms", "lead_max_ms", "cpu_pct"]
    summary = {}
    for name, rs in runs.items():
        summary[name] = {k: float(np.median([x[k] for x in rs])) for k in keys}
        summary[name]["late_total"] = int(sum(x["late"] for x in rs))
        summary[name]["chunks_total"] = int(sum(x["chunks"] for x in rs))
    first = summary[variants[0]["name"]]
    print(f"\nload average before {load_before[0]:.2f} / {load_before[1]:.2f}, after "
          f"{os.getloadavg()[0]:.2f} / {os.getloadavg()[1]:.2f}; {args.rounds} rounds x "
          f"{args.duration:g} s per variant; medians over rounds")
    print(f"{'variant':<40} {'RTF':>6} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'jit99':>6} "
          f"{'late':>9} {'L ms':>6} {'lead99':>6} {'leadmx':>6} {'CPU %':>6} {'p50 ratio':>9}")
    for name, s in summary.items():
        print(f"{name:<40} {s['rtf']:6.1f} {s['lat_p50_ms']:7.2f} {s['lat_p99_ms']:7.2f} "
              f"{s['lat_max_ms']:7.2f} {s['jit_p99_ms']:6.3f} "
              f"{s['late_total']:>3}/{s['chunks_total']:<5} {s['lookahead_ms']:6.1f} "
              f"{s['lead_p99_ms']:6.2f} {s['lead_max_ms']:6.2f} "
              f"{s['cpu_pct']:6.1f} {s['lat_p50_ms'] / first['lat_p50_ms']:9.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "load_before": load_before,
                       "load_after": os.getloadavg(), "runs": runs, "summary": summary}, f,
                      indent=2)
    print(f"peak RSS {peak_rss_mb():.0f} MiB")


if __name__ == "__main__":
    main()
