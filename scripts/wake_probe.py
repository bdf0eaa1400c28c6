"""How late does this machine wake a real-time thread? A probe to run beside a stream.

One thread, alone in its own process (no GIL to share), ``SCHED_FIFO`` when allowed, sleeps
to targets every ``--period-ms`` (absolute targets, so lateness never accumulates) and logs
every wake-up later than ``--threshold-ms`` with its ``time.monotonic()`` stamp (the LSL clock
on Linux, so stalls can be matched with the stream's telemetry ``emitted_at_s``). Once a
second it reads the per-CPU steal time of ``/proc/stat`` (time the hypervisor ran someone
else while this VM's CPU was ready to run).

If the probe stalls at the same moments as the stream's engine thread, the stall is outside
the simulator (the VM or the kernel); if the engine stalls alone, it is inside the process.

    python scripts/wake_probe.py --duration 660 --cpu 1 --json runs/wake_probe_cpu1.json

Steal time is per virtual CPU: a stall of one stops only the threads on it, so to match a
stall with a chunk, run one probe per CPU (``--cpu``; ``scripts/stream_check.py --probe``
does).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


def read_steal_ticks() -> dict[str, int]:
    """Steal time per CPU since boot, in USER_HZ ticks (``/proc/stat`` column 8)."""
    steal: dict[str, int] = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3] != " ":
                fields = line.split()
                steal[fields[0]] = int(fields[8])
    return steal


def probe(duration_s: float, period_s: float, threshold_s: float, rt_priority: int,
          cpu: int | None = None) -> dict:
    if cpu is not None:  # a stall of one virtual CPU stops only what runs on it
        os.sched_setaffinity(0, {cpu})
    rt = False
    if rt_priority > 0:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(rt_priority))
            rt = True
        except (AttributeError, OSError) as error:
            print(f"wake_probe: normal priority ({error})")
    tick_s = 1.0 / os.sysconf("SC_CLK_TCK")
    t0_s = time.monotonic()
    n_wakes = int(duration_s / period_s)
    lateness_s = np.empty(n_wakes)
    stalls: list[tuple[float, float]] = []
    steal_events: list[tuple[float, dict[str, float]]] = []
    steal_before = read_steal_ticks()
    next_steal_s = t0_s + 1.0
    for k in range(n_wakes):
        target_s = t0_s + (k + 1) * period_s
        remaining_s = target_s - time.monotonic()
        if remaining_s > 0:
            time.sleep(remaining_s)
        late_s = time.monotonic() - target_s
        lateness_s[k] = late_s
        if late_s > threshold_s:
            stalls.append((target_s, late_s))
        if target_s >= next_steal_s:
            next_steal_s += 1.0
            steal_now = read_steal_ticks()
            delta = {cpu: (steal_now[cpu] - steal_before.get(cpu, 0)) * tick_s
                     for cpu in steal_now if steal_now[cpu] != steal_before.get(cpu, 0)}
            if delta:
                steal_events.append((target_s, delta))
            steal_before = steal_now
    ms = lateness_s * 1e3
    return {
        "rt_priority": rt_priority if rt else 0, "cpu": cpu, "period_ms": period_s * 1e3,
        "duration_s": duration_s, "t0_monotonic_s": t0_s, "n_wakes": n_wakes,
        "lateness_ms": {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)),
                        "p99_9": float(np.percentile(ms, 99.9)), "max": float(ms.max())},
        "n_late_over": {f"{t}ms": int((ms > t).sum()) for t in (1, 2, 3, 4, 5, 6, 8, 10)},
        "stalls": [{"t_monotonic_s": t, "late_ms": late * 1e3} for t, late in stalls],
        "steal_s": [{"t_monotonic_s": t, "per_cpu_s": d} for t, d in steal_events],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds")
    parser.add_argument("--period-ms", type=float, default=1.0)
    parser.add_argument("--threshold-ms", type=float, default=1.0,
                        help="wake-ups later than this are listed with their time")
    parser.add_argument("--rt-priority", type=int, default=10, help="SCHED_FIFO; 0: normal")
    parser.add_argument("--cpu", type=int, help="pin the probe to this CPU (Linux)")
    parser.add_argument("--json", help="write the result here")
    args = parser.parse_args()
    result = probe(args.duration, args.period_ms / 1e3, args.threshold_ms / 1e3,
                   args.rt_priority, args.cpu)
    summary = {k: v for k, v in result.items() if k not in ("stalls", "steal_s")}
    print(json.dumps(summary, indent=1))
    print(f"{len(result['stalls'])} wake-ups later than {args.threshold_ms} ms; "
          f"{len(result['steal_s'])} seconds with steal time")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
