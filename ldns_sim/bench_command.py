"""``ldns-sim bench``: how fast the streaming generator is on this machine, and how it scales.

Three measurements, all with one torch thread (one core per stream, as ``stream`` runs):

real time
    The model streamed through the real engine on the LSL clock for ``--duration`` seconds,
    driven by the scripted centre-out user at the model's peak speed (what
    ``stream --condition script:center-out`` does, without the network sinks): real-time
    factor, generation latency, emission jitter, late chunks, peak memory.
offline
    The same generator stepped back to back without waiting (the same scripted condition,
    timed on the same clock): pure generation throughput, one bin at a time.
scaling (``--scaling``)
    For 96/192/384/1024 neurons and 1/4/16 streams, round robin in one engine on the LSL
    clock (``ldns_sim.realtime.bench.run_scaling``), ``SCALING_DURATION_S`` seconds per
    configuration at most. Neuron counts the model does not have get random weights with
    the model's architecture (``ldns_sim.testing.make_random_bundle``): cost, not realism.

The output is a table on stdout, or with ``--json`` one JSON object holding every number,
the machine, the date, the versions and the command.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import logging
import math
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch

from ldns_sim.bundle import ModelBundle, load_bundle
from ldns_sim.errors import ConfigError
from ldns_sim.lsl_config import configure_lsl
from ldns_sim.pretrained import resolve_model
from ldns_sim.realtime.bench import CountingSink, peak_rss_mb, run_scaling
from ldns_sim.realtime.clock import Clock, LslClock
from ldns_sim.realtime.condition import ConditionSource, ConstantSource
from ldns_sim.realtime.engine import Engine
from ldns_sim.simulator import SamplerSettings, StreamingGenerator
from ldns_sim.sinks.profile import load_profile
from ldns_sim.sources.script_source import ScriptedCenterOut
from ldns_sim.stream_session import engine_options
from ldns_sim.testing import make_random_bundle
from ldns_sim.threads import one_thread

log = logging.getLogger(__name__)

SCALING_NEURONS = (96, 192, 384, 1024)
SCALING_STREAMS = (1, 4, 16)
#: Longest engine run per scaling configuration, seconds (12 configurations: ~40 s in all).
SCALING_DURATION_S = 3.0
#: Bins generated and discarded before the offline timing starts (first-call overheads).
OFFLINE_WARMUP_BINS = 5
#: Fewest bins the offline measurement times.
OFFLINE_MIN_BINS = 20
#: Chunks generated and discarded before the real-time run, as ``ldns-sim stream`` does.
STREAM_WARMUP_CHUNKS = 3


def run_bench_command(args: argparse.Namespace) -> int:
    """Run ``ldns-sim bench`` and write the table (or JSON) to stdout; returns the exit code.

    Parameters
    ----------
    args
        ``model`` (name or bundle directory, ``None``: the default model), ``duration``
        (seconds of the real-time run), ``steps`` (denoising steps per bin), ``scaling``
        and ``json`` (flags), as parsed by ``ldns_sim.cli``.
    """
    if not (math.isfinite(args.duration) and args.duration > 0):
        raise ConfigError(f"--duration {args.duration}: expected a positive number of seconds")
    if args.steps < 1:
        raise ConfigError(f"--steps {args.steps}: expected at least 1 denoising step")
    path = resolve_model(args.model)
    bundle = load_bundle(path)
    if args.duration < bundle.meta.bin_s:
        raise ConfigError(f"--duration {args.duration}: shorter than one bin of "
                          f"{bundle.meta.name} ({bundle.meta.bin_s} s)")
    try:
        configure_lsl()  # before the first pylsl call, the clock's included
    except ValueError:
        pass  # configured already (by the caller) with another scope: that one stands
    with one_thread():  # one core per stream, as `ldns-sim stream` runs
        report = bench_report(bundle, str(path), args.steps, args.duration, args.scaling,
                              LslClock(), command=_command_line(args))
    _write(json.dumps(_json_safe(report), indent=2, allow_nan=False) if args.json
           else format_report(report))
    return 0


def bench_report(bundle: ModelBundle, model_path: str, n_steps: int, duration_s: float,
                 scaling: bool, clock: Clock, command: str = "") -> dict:
    """Every measurement of ``ldns-sim bench`` as one JSON-ready dict.

    Parameters
    ----------
    bundle
        The model under test.
    model_path
        Where it was loaded from (recorded in the report).
    n_steps
        Denoising steps per bin.
    duration_s
        Length of the real-time run in seconds; the offline run times as many bins, and
        each scaling configuration runs ``min(duration_s, SCALING_DURATION_S)`` seconds.
    scaling
        Also measure the neuron x stream table.
    clock
        ``LslClock()`` (a ``ManualClock`` measures zero time: plumbing only).
    command
        The command line, recorded as is.
    """
    settings = SamplerSettings(n_steps=n_steps)
    meta = bundle.meta
    report = {
        "command": command, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"),
        "machine": machine_info(), "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "model": {"name": meta.name, "path": model_path, "sha256": meta.weights_sha256,
                  "n_neurons": bundle.n_neurons, "n_latents": meta.ae.n_latents,
                  "bin_ms": meta.bin_s * 1e3, "condition": meta.condition, "n_steps": n_steps},
    }
    log.info("real-time run: %s, %g s on the LSL clock", meta.name, duration_s)
    report["realtime"] = measure_realtime(bundle, settings, duration_s, clock)
    n_offline = max(OFFLINE_MIN_BINS, report["realtime"]["n_bins"])
    log.info("offline run: %d bins back to back", n_offline)
    report["offline"] = measure_offline(bundle, settings, n_offline, clock)
    report["scaling"] = None
    if scaling:
        report["scaling"] = measure_scaling(bundle, settings,
                                            min(duration_s, SCALING_DURATION_S), clock)
    return report


def measure_realtime(bundle: ModelBundle, settings: SamplerSettings, duration_s: float,
                     clock: Clock, seed: int = 0) -> dict:
    """Stream ``bundle`` through the engine for ``duration_s`` seconds, centre-out driven.

    Returns
    -------
    dict
        ``real_time_factor`` (bin time / generation time), ``latency_{p50,p99,max}_ms`` and
        ``latency_{p50,p99}_fraction_of_bin`` (generation time per one-bin chunk),
        ``jitter_{p50,p99,max}_ms`` (hand-off time - bin end),
        ``interval_jitter_{p99,max}_ms`` (|time between hand-offs - one one-bin chunk|),
        ``lookahead_ms``,
        ``n_late``, ``n_chunks``, ``n_bins``, ``peak_rss_mib``, ``duration_s``, ``condition``,
        ``lead_{p99,max}_ms`` (generation end - scheduled start: late above the look-ahead),
        ``emission`` and ``deadline_ms`` (immediate emission: late past the deadline),
        ``cpu_percent_of_one_core`` (this process, wall time of the run), ``backend``,
        ``rt_priority``. The engine runs with the default stream profile's ``[engine]``
        options and ``STREAM_WARMUP_CHUNKS`` warm-up chunks, as ``ldns-sim stream`` does.
    """
    generator = StreamingGenerator(bundle, settings, seed=seed, bins_per_chunk=1)
    source = _scripted_source(bundle, generator.condition_names, seed, clock_now=clock.now)
    sink = CountingSink()
    engine_opts = engine_options(load_profile("default"))  # as `ldns-sim stream` runs it
    cpu_start_s, wall_start_s = time.process_time(), time.monotonic()
    engine = Engine(generator, source, [sink], clock, duration_s=duration_s,
                    warmup_chunks=STREAM_WARMUP_CHUNKS, **engine_opts)
    stats = engine.run()
    cpu_s, wall_s = time.process_time() - cpu_start_s, time.monotonic() - wall_start_s
    if sink.n_chunks != stats.n_chunks:  # the sink is the ground truth of what went out
        raise RuntimeError(f"bench: the sink saw {sink.n_chunks} chunks, the engine "
                           f"{stats.n_chunks}")
    bin_s = generator.bin_s
    return {
        "backend": generator.backend,
        "emission": "immediate" if engine.immediate else "scheduled",
        "deadline_ms": engine.deadline_s * 1e3 if engine.immediate else math.nan,
        "rt_priority": engine_opts["rt_priority"] if engine.rt_granted else None,
        "lead_p99_ms": stats.lead_p99_s * 1e3, "lead_max_ms": stats.lead_max_s * 1e3,
        "cpu_percent_of_one_core": 100 * cpu_s / wall_s if wall_s > 0 else math.nan,
        "real_time_factor": stats.real_time_factor,
        "latency_p50_ms": stats.latency_p50_s * 1e3, "latency_p99_ms": stats.latency_p99_s * 1e3,
        "latency_max_ms": stats.latency_max_s * 1e3,
        "latency_p50_fraction_of_bin": stats.latency_p50_s / bin_s,
        "latency_p99_fraction_of_bin": stats.latency_p99_s / bin_s,
        "jitter_p50_ms": stats.jitter_p50_s * 1e3, "jitter_p99_ms": stats.jitter_p99_s * 1e3,
        "jitter_max_ms": stats.jitter_max_s * 1e3, "lookahead_ms": stats.lookahead_s * 1e3,
        "interval_jitter_p99_ms": stats.interval_jitter_p99_s * 1e3,
        "interval_jitter_max_ms": stats.interval_jitter_max_s * 1e3,
        "n_late": stats.n_late, "n_chunks": stats.n_chunks, "n_bins": stats.n_bins,
        "peak_rss_mib": peak_rss_mb(), "duration_s": duration_s, "condition": source.name,
    }


def measure_offline(bundle: ModelBundle, settings: SamplerSettings, n_bins: int, clock: Clock,
                    seed: int = 0) -> dict:
    """Generate ``n_bins`` bins back to back (no waiting) and time each on ``clock``.

    The condition is the scripted centre-out velocity at each bin's end, as in the real-time
    run. ``OFFLINE_WARMUP_BINS`` bins are generated first and not timed.

    Returns
    -------
    dict
        ``n_bins``, ``generation_s`` (total), ``real_time_factor`` (bin time / generation
        time) and ``cost_per_bin_{mean,p50,p99}_ms``.
    """
    generator = StreamingGenerator(bundle, settings, seed=seed, bins_per_chunk=1)
    source = _scripted_source(bundle, generator.condition_names, seed, start_s=0.0)
    bin_end_s = (np.arange(OFFLINE_WARMUP_BINS + n_bins) + 1) * generator.bin_s
    condition = np.stack([source.read(float(t)).value for t in bin_end_s])  # (n, n_cond)
    condition = condition.reshape(len(bin_end_s), 1, -1).astype(np.float32)  # (n, 1, n_cond)
    for row in condition[:OFFLINE_WARMUP_BINS]:
        generator.next_chunk(row)
    cost_s = np.empty(n_bins)
    for i, row in enumerate(condition[OFFLINE_WARMUP_BINS:]):
        t_start_s = clock.now()
        generator.next_chunk(row)
        cost_s[i] = clock.now() - t_start_s
    total_s = float(cost_s.sum())
    return {
        "n_bins": int(n_bins), "generation_s": total_s,
        "real_time_factor": n_bins * generator.bin_s / total_s if total_s > 0 else math.inf,
        "cost_per_bin_mean_ms": float(cost_s.mean() * 1e3),
        "cost_per_bin_p50_ms": float(np.quantile(cost_s, 0.5) * 1e3),
        "cost_per_bin_p99_ms": float(np.quantile(cost_s, 0.99) * 1e3),
    }


def measure_scaling(bundle: ModelBundle, settings: SamplerSettings, duration_s: float,
                    clock: Clock, neuron_counts: Sequence[int] = SCALING_NEURONS,
                    stream_counts: Sequence[int] = SCALING_STREAMS) -> list[dict]:
    """Cost per stream for each neuron count x number of streams, round robin in one engine.

    Each configuration streams ``duration_s`` seconds on ``clock`` with a zero condition
    (the cost does not depend on its value). Neuron counts other than the model's use
    ``make_random_bundle(n, like=bundle)``.

    Returns
    -------
    list of dict
        One row per configuration: ``n_neurons``, ``n_streams``, ``weights`` (``"model"``
        or ``"random"``), ``cost_per_bin_per_stream_ms`` (median chunk latency / streams),
        ``real_time_factor_per_stream`` (bin time / mean generation time per stream),
        ``streams_per_core_p50`` and ``streams_per_core_p99`` (whole streams whose median,
        or 99th-percentile, cost fits in one bin; over a short run the p99 is close to the
        worst chunk, first-call overheads included), ``latency_p99_ms`` (all streams),
        ``jitter_p99_ms``, ``n_late``, ``n_chunks``, ``peak_rss_mib`` (process so far).
    """
    rows = []
    for n_neurons in neuron_counts:
        own = bundle.n_neurons == n_neurons
        model = bundle if own else make_random_bundle(n_neurons, like=bundle)
        for n_streams in stream_counts:
            seeds = itertools.count()
            report = run_scaling(lambda m=model, s=seeds: StreamingGenerator(
                m, settings, seed=next(s), bins_per_chunk=1), n_streams, duration_s, clock)
            rows.append(_scaling_row(report, n_neurons, n_streams, own))
            log.info("scaling: %d neurons x %d streams: %.2f ms per bin per stream",
                     n_neurons, n_streams, rows[-1]["cost_per_bin_per_stream_ms"])
    return rows


def _scaling_row(report: dict, n_neurons: int, n_streams: int, own_weights: bool) -> dict:
    bin_s = report["bin_s"]  # the generators emit one bin per chunk
    per_stream_p99_s = report["latency_p99_s"] / n_streams
    return {
        "n_neurons": n_neurons, "n_streams": n_streams,
        "weights": "model" if own_weights else "random",
        "cost_per_bin_per_stream_ms": report["latency_p50_per_stream_s"] * 1e3,
        "real_time_factor_per_stream": report["real_time_factor"] * n_streams,
        "streams_per_core_p50": _whole(report["max_streams_estimate"]),
        "streams_per_core_p99": _whole(bin_s / per_stream_p99_s if per_stream_p99_s > 0
                                       else math.inf),
        "latency_p99_ms": report["latency_p99_s"] * 1e3,
        "jitter_p99_ms": report["jitter_p99_s"] * 1e3,
        "n_late": report["n_late"], "n_chunks": report["n_chunks"],
        "duration_s": report["duration_s"], "peak_rss_mib": report["peak_rss_mb"],
    }


def _whole(x: float) -> int | float:
    """``floor(x)`` as an int, or ``x`` itself when it is not finite."""
    return int(math.floor(x)) if math.isfinite(x) else x


def _scripted_source(bundle: ModelBundle, condition_names: tuple[str, ...], seed: int, *,
                     clock_now: Callable[[], float] | None = None,
                     start_s: float | None = None) -> ConditionSource:
    """The centre-out user at the model's peak speed; zeros for a model without velocity."""
    if len(condition_names) != 2:
        return ConstantSource.zeros(condition_names)
    return ScriptedCenterOut(peak_speed=bundle.meta.velocity_scale,
                             rng=np.random.default_rng(seed), channel_names=condition_names,
                             clock_now=clock_now, start_s=start_s)


def machine_info() -> dict:
    """Platform, processor and CPU counts of this machine, plus its load at the start."""
    info = {"platform": platform.platform(), "machine": platform.machine(),
            "processor": platform.processor() or _cpu_model(), "cpu_count": os.cpu_count(),
            "python": platform.python_version()}
    if hasattr(os, "sched_getaffinity"):
        info["cpus_usable"] = len(os.sched_getaffinity(0))
    if hasattr(os, "getloadavg"):
        info["load_average_1min"] = os.getloadavg()[0]
    return info


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _command_line(args: argparse.Namespace) -> str:
    """The ``ldns-sim bench`` command that reproduces this run."""
    words = ["ldns-sim", "bench"]
    if args.model:
        words += ["--model", str(args.model)]
    words += ["--duration", f"{args.duration:g}", "--steps", str(args.steps)]
    words += ["--scaling"] * bool(args.scaling) + ["--json"] * bool(args.json)
    return shlex.join(words)


def _json_safe(value):
    """``value`` with every non-finite float replaced by ``None`` (JSON has no inf or NaN)."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def format_report(report: dict) -> str:
    """The report as a readable table (what ``ldns-sim bench`` prints without ``--json``)."""
    m, rt, off = report["model"], report["realtime"], report["offline"]
    machine = report["machine"]
    lines = [
        f"ldns-sim bench: {m['name']} ({m['n_neurons']} neurons, {m['bin_ms']:g} ms bins, "
        f"{m['n_steps']} steps per bin)",
        f"machine: {machine['platform']}, {machine['cpu_count']} CPUs "
        f"({machine.get('processor', '')}), load {machine.get('load_average_1min', 0):.2f}; "
        f"torch {report['torch_version']}, {report['torch_threads']} thread; {report['date']}",
        f"command: {report['command']}",
        "",
        f"real time: engine on the LSL clock, {rt['duration_s']:g} s, condition "
        f"{rt['condition']}",
        f"  real-time factor          {rt['real_time_factor']:10.1f}",
        f"  generation latency p50    {rt['latency_p50_ms']:10.2f} ms  "
        f"({100 * rt['latency_p50_fraction_of_bin']:.1f} % of the bin)",
        f"  generation latency p99    {rt['latency_p99_ms']:10.2f} ms  "
        f"({100 * rt['latency_p99_fraction_of_bin']:.1f} % of the bin)",
        f"  emission jitter p99       {rt['jitter_p99_ms']:10.3f} ms  (hand-off - bin end)",
        f"  interval jitter p99       {rt['interval_jitter_p99_ms']:10.3f} ms  "
        f"(|hand-off interval - bin|)",
        (f"  emission                  {'immediate':>10}, late past {rt['deadline_ms']:.2f} ms"
         if rt["emission"] == "immediate" else
         f"  look-ahead / lead p99, max {rt['lookahead_ms']:9.2f} ms / {rt['lead_p99_ms']:.2f}, "
         f"{rt['lead_max_ms']:.2f} ms"),
        f"  late chunks               {rt['n_late']:10d} of {rt['n_chunks']}",
        f"  CPU (this process)        {rt['cpu_percent_of_one_core']:10.1f} % of one core",
        f"  backend, engine priority  {rt['backend']:>10}, "
        f"{'SCHED_FIFO ' + str(rt['rt_priority']) if rt['rt_priority'] else 'normal'}",
        f"  bins                      {rt['n_bins']:10d}",
        f"  peak memory (RSS)         {rt['peak_rss_mib']:10.0f} MiB",
        "",
        f"offline: {off['n_bins']} bins back to back, no clock waits",
        f"  real-time factor          {off['real_time_factor']:10.1f}",
        f"  cost per bin p50 / p99    {off['cost_per_bin_p50_ms']:10.2f} / "
        f"{off['cost_per_bin_p99_ms']:.2f} ms",
    ]
    if report.get("scaling"):
        lines += ["", *_scaling_table(report["scaling"])]
    return "\n".join(lines) + "\n"


def _scaling_table(rows: list[dict]) -> list[str]:
    duration_s = rows[0]["duration_s"]
    lines = [f"scaling: streams round robin in one engine on the LSL clock, {duration_s:g} s "
             f"each; * random weights with the model's architecture",
             f"  {'neurons':>8} {'streams':>8} {'ms/bin/stream':>14} {'RTF/stream':>11} "
             f"{'fit/core p50':>13} {'fit/core p99':>13} {'late':>10}"]
    for r in rows:
        mark = "*" if r["weights"] == "random" else " "
        lines.append(f"  {r['n_neurons']:>7}{mark} {r['n_streams']:>8} "
                     f"{r['cost_per_bin_per_stream_ms']:>14.2f} "
                     f"{r['real_time_factor_per_stream']:>11.1f} "
                     f"{r['streams_per_core_p50']:>13} {r['streams_per_core_p99']:>13} "
                     f"{r['n_late']:>4} of {r['n_chunks']}")
    return lines


def _write(text: str) -> None:
    """The command's output goes to stdout (logging goes to stderr)."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()
