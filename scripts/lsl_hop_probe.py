"""The LSL hop alone: a 100 Hz behaviour outlet in a process of its own, ldns-sim's LSL
condition source in this one, nothing else; prints the transport (clock-synchronised LSL stamp
to arrival in the source) after the first 2 s (the inlet connecting).

    python scripts/lsl_hop_probe.py --seconds 35

Beside a stream, the source logs the same figure when it stops (`lsl source ...: transport`).
All traffic stays on this machine (LSL ResolveScope = machine).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import numpy as np

RATE_HZ = 100.0
NAME = "ldns-hop-probe"


def produce(seconds: float) -> None:
    import pylsl

    outlet = pylsl.StreamOutlet(pylsl.StreamInfo(NAME, "Behavior", 2, RATE_HZ, "float32",
                                                 f"{NAME}-src"))
    t0_s, k = pylsl.local_clock(), 0
    while pylsl.local_clock() - t0_s < seconds:
        outlet.push_sample([0.0, 0.0], pylsl.local_clock())
        k += 1
        time.sleep(max(0.0, t0_s + k / RATE_HZ - pylsl.local_clock()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=35.0)
    parser.add_argument("--produce", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    from ldns_sim.lsl_config import configure_lsl

    configure_lsl("machine")
    if args.produce:
        return produce(args.seconds + 5.0)
    import pylsl

    from ldns_sim.sources.lsl_source import LslConditionSource

    producer = subprocess.Popen([sys.executable, __file__, "--produce", "--seconds",
                                 str(args.seconds)])
    source = LslConditionSource(name=NAME, timeout_s=10.0, clock_now=pylsl.local_clock)
    source.start()
    time.sleep(args.seconds)
    transport_ms = source.transport_s()[int(2 * RATE_HZ):] * 1e3
    source.stop()
    producer.wait()
    p50, p90, p99 = np.percentile(transport_ms, [50, 90, 99])
    print(f"{len(transport_ms)} samples; transport p50 {p50:.3f}, p90 {p90:.3f}, "
          f"p99 {p99:.3f}, max {transport_ms.max():.3f} ms")


if __name__ == "__main__":
    main()
