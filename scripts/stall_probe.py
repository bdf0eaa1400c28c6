"""How often does this machine stop a running thread, and does the hypervisor say it did?

A thread pinned to one CPU reads the clock in a tight loop for ``--seconds``; every gap
between consecutive reads longer than ``--gap-ms`` is a stall. Two causes can be told apart:
the guest kernel ran something else (the time is missing from the thread's CPU time:
``not_scheduled_ms``), or the hypervisor stopped the virtual CPU under it (the guest counts the
time as the thread's; the CPU's *steal* time in /proc/stat grows). Run it on a quiet machine.
It needs a whole CPU, so it cannot run beside a stream: ``scripts/wake_probe.py`` (a thread
that sleeps and wakes every millisecond) can. ``--fifo`` adds real-time priority, but a busy
loop at real-time priority is throttled by the kernel (``sched_rt_runtime_us``: 50 ms of every
second by default), so leave it off to measure steal. On a bare-metal machine both are ~0; on a
VM with stolen time the stalls are what makes an otherwise fast real-time loop miss deadlines
(docs/benchmarks.md 2.1).

    python scripts/stall_probe.py --cpu 1 --seconds 60
"""

from __future__ import annotations

import argparse
import json
import os
import time

from wake_probe import read_steal_ticks


def steal_ms(cpu: int) -> float:
    """Cumulative steal time of one CPU in ms (/proc/stat, USER_HZ ticks)."""
    ticks = read_steal_ticks()
    if f"cpu{cpu}" not in ticks:
        raise RuntimeError(f"cpu{cpu} not in /proc/stat")
    return ticks[f"cpu{cpu}"] * 1000.0 / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--gap-ms", type=float, default=1.0)
    parser.add_argument("--fifo", action="store_true", help="real-time priority (see above)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    os.sched_setaffinity(0, {args.cpu})
    policy = "SCHED_OTHER"
    if args.fifo:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
        policy = "SCHED_FIFO 10"
    gap_s = args.gap_ms / 1e3
    stalls = []
    steal_start = steal_ms(args.cpu)
    cpu_start = time.thread_time()
    start = last = time.perf_counter()
    end = start + args.seconds
    while last < end:
        now = time.perf_counter()
        if now - last > gap_s:
            stalls.append((last - start, (now - last) * 1e3))
        last = now
    wall_s = last - start
    report = {"cpu": args.cpu, "policy": policy, "seconds": wall_s,
              "not_scheduled_ms": (wall_s - (time.thread_time() - cpu_start)) * 1e3,
              "steal_ms": steal_ms(args.cpu) - steal_start,
              "stalls": len(stalls), "stalled_ms": sum(ms for _, ms in stalls),
              "longest_stall_ms": max((ms for _, ms in stalls), default=0.0),
              "stalls_over_5ms": sum(ms > 5 for _, ms in stalls),
              "gap_threshold_ms": args.gap_ms}
    print(json.dumps(report, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report | {"stall_list_s_ms": stalls}, f)


if __name__ == "__main__":
    main()
