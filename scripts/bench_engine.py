"""Measure how well the real-time engine keeps time, with the numpy tuning-curve generator.

Streams ``TuningCurveGenerator`` (96 neurons, one bin per chunk) through the engine on the LSL
clock for each bin width and prints one JSON report per run: emission jitter (push time -
bin end), generation latency, late chunks, real-time factor, peak RSS.

    /work/venv/bin/python scripts/bench_engine.py --duration 30 --bin-ms 20 50
"""

from __future__ import annotations

import argparse
import json
import logging

import numpy as np

from ldns_sim.lsl_config import configure_lsl
from ldns_sim.realtime import LslClock
from ldns_sim.realtime.bench import run_bench
from ldns_sim.testing import TuningCurveGenerator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per run")
    parser.add_argument("--bin-ms", type=float, nargs="+", default=[20.0, 50.0])
    parser.add_argument("--neurons", type=int, default=96)
    parser.add_argument("--bins-per-chunk", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--spin-ms", type=float, default=1.0,
                        help="LslClock busy-wait before each deadline, ms")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    configure_lsl("machine")
    clock = LslClock(spin_s=args.spin_ms / 1e3)
    for bin_ms in args.bin_ms:
        def factory(bin_s=bin_ms / 1e3):
            return TuningCurveGenerator(args.neurons, bin_s, args.bins_per_chunk,
                                        np.random.default_rng(args.seed))

        report = run_bench(factory, args.duration, clock)
        report.update(spin_ms=args.spin_ms, jitter_p99_ms=report["jitter_p99_s"] * 1e3,
                      jitter_max_ms=report["jitter_max_s"] * 1e3,
                      latency_p99_ms=report["latency_p99_s"] * 1e3)
        print(json.dumps(report))


if __name__ == "__main__":
    main()
