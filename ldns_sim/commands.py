"""One function per ``ldns-sim`` subcommand: arguments in, library calls, an exit code out."""

from __future__ import annotations

import argparse
import logging
import math
import platform
from pathlib import Path

import numpy as np

from ldns_sim.errors import ConfigError

log = logging.getLogger(__name__)


def _configure_lsl(args: argparse.Namespace) -> None:
    """liblsl's scope must be set before the first pylsl call (the clock included)."""
    from ldns_sim.lsl_config import configure_lsl
    from ldns_sim.sinks.profile import load_profile

    configure_lsl(getattr(args, "lsl_scope", None) or load_profile(args.profile).lsl.scope)


def _session_options(args: argparse.Namespace):
    from ldns_sim.perturbations import from_command_line
    from ldns_sim.sinks.profile import load_profile
    from ldns_sim.stream_session import SessionOptions, check_record_path

    check_record_path(args.record)
    if args.duration is not None and not args.duration > 0:
        raise ConfigError(f"--duration {args.duration}: expected a positive number of seconds")
    perturbations = from_command_line(getattr(args, "perturb", []),
                                      getattr(args, "perturb_file", None))
    load_profile(args.profile)  # a bad profile (its perturbations too) fails before the model
    return SessionOptions(profile=args.profile, lsl=args.lsl, zmq_endpoint=args.zmq_endpoint,
                          no_zmq=args.no_zmq, bind_any=args.bind_any, record=args.record,
                          duration_s=args.duration, seed=args.seed, lsl_scope=args.lsl_scope,
                          lsl_prefix=args.lsl_prefix, perturbations=tuple(perturbations))


def _bins_per_chunk(args: argparse.Namespace) -> int:
    from ldns_sim.sinks.profile import load_profile

    return load_profile(args.profile).bins_per_chunk


def _load_model(name: str | None):
    from ldns_sim.bundle import load_bundle
    from ldns_sim.pretrained import resolve_model

    path = resolve_model(name)
    return load_bundle(path), path


def cmd_stream(args: argparse.Namespace) -> int:

    from ldns_sim.realtime.clock import LslClock
    from ldns_sim.simulator import SamplerSettings, StreamingGenerator
    from ldns_sim.sources.factory import make_source
    from ldns_sim.stream_session import make_meta, run_session
    from ldns_sim.threads import use_one_thread

    opts = _session_options(args)
    bundle, _ = _load_model(args.model)
    use_one_thread()  # one core per stream: per-op overhead dominates, not FLOPs
    _configure_lsl(args)
    clock = LslClock()
    direction = None if args.direction is None else math.radians(args.direction)
    generator = StreamingGenerator(bundle, SamplerSettings(n_steps=args.steps,
                                                           guidance=args.guidance,
                                                           context_noise_t=args.context_noise,
                                                           step_spacing=args.step_spacing),
                                   seed=args.seed,
                                   bins_per_chunk=_bins_per_chunk(args), direction_rad=direction)
    source = make_source(args.condition, velocity_scale=bundle.meta.velocity_scale,
                         channel_names=generator.condition_names, clock_now=clock.now,
                         rng=np.random.default_rng(args.seed))
    meta = make_meta(generator, bundle.meta.name, bundle.sha256, args.seed, args.condition)
    # a few unsent chunks first: torch's first calls are slow (and, with scheduled emission,
    # they seed the look-ahead)
    stats = run_session(generator, source, meta, opts, clock, warmup_chunks=3)
    log.info("stream ended: %s", _short_stats(stats))
    return 0


def _short_stats(stats: dict) -> str:
    keys = ("n_chunks", "n_late", "latency_p99_s", "jitter_p99_s", "interval_jitter_p99_s",
            "real_time_factor")
    return ", ".join(f"{k}={stats[k]:.4g}" for k in keys if k in stats)


def cmd_replay(args: argparse.Namespace) -> int:
    from ldns_sim.data.load import load_spike_data
    from ldns_sim.realtime.clock import LslClock
    from ldns_sim.realtime.condition import ConstantSource
    from ldns_sim.replay import RecordingReplayer
    from ldns_sim.stream_session import make_meta, run_session

    opts = _session_options(args)
    data = load_spike_data(args.data, args.adapter)
    _configure_lsl(args)
    clock = LslClock()
    generator = RecordingReplayer(data, bins_per_chunk=_bins_per_chunk(args), loop=not args.once)
    source = ConstantSource.zeros(generator.condition_names)
    meta = make_meta(generator, f"replay:{Path(args.data).name}", "", args.seed,
                     "recording")
    stats = run_session(generator, source, meta, opts, clock)
    log.info("replay ended: %s", _short_stats(stats))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from ldns_sim.data.load import load_spike_data
    from ldns_sim.train.config import preset
    from ldns_sim.train.pipeline import train_model, with_overrides

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = preset(args.preset)
    cfg = with_overrides(cfg, **{k: v for k, v in {
        "ae": {"epochs": args.epochs_ae} if args.epochs_ae else None,
        "diffusion": {"epochs": args.epochs_diffusion, "direction_epochs": args.epochs_diffusion}
        if args.epochs_diffusion else None,
    }.items() if v})
    if args.window_denoiser:
        cfg = with_overrides(cfg, diffusion={"train_window_denoiser": True})
    if args.direction_window_bins is not None:
        if args.direction_window_bins < 0:
            raise ConfigError(f"--direction-window-bins {args.direction_window_bins}: expected "
                              f"a number of bins, or 0 for windows across each trial")
        cfg = with_overrides(cfg, diffusion={
            "direction_window_bins": args.direction_window_bins or None})
    from dataclasses import replace

    cfg = replace(cfg, condition=args.condition, seed=args.seed)
    data = load_spike_data(args.data, args.adapter)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    log.info("training on %s (%d trials, %d neurons, %.0f ms bins) on %s", args.data,
             data.n_trials, data.n_neurons, data.bin_s * 1e3, device)
    bundle = train_model(data, args.out, cfg, name=args.name or Path(args.out).name,
                         show_progress=not args.quiet)
    if bundle is not None:
        log.info("bundle written to %s (sha256 %s)", args.out, bundle.meta.weights_sha256
                 if bundle.meta.weights_sha256 else "see config.json")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from ldns_sim.sampling_io import sample_to_file

    bundle, _ = _load_model(args.model)
    out = sample_to_file(bundle, args)
    log.info("wrote %s", out)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ldns_sim.evaluate_command import run_evaluate

    return run_evaluate(args)


def cmd_bench(args: argparse.Namespace) -> int:
    from ldns_sim.bench_command import run_bench_command

    return run_bench_command(args)


def cmd_models(args: argparse.Namespace) -> int:
    from ldns_sim.pretrained import list_models, pretrained_dir

    names = list_models()
    if not names:
        print(f"no models in {pretrained_dir()}")
    for name in names:
        print(name)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from ldns_sim.pretrained import card_summary, resolve_model

    print(card_summary(resolve_model(args.model)))
    return 0


def cmd_recover(args: argparse.Namespace) -> int:
    from ldns_sim.sinks.nwb_recorder import recover_session

    out = recover_session(args.partial, args.out)
    log.info("recovered session written to %s", out)
    return 0


def cmd_sys_info(args: argparse.Namespace) -> int:
    import importlib.metadata as md

    import torch

    print(f"python {platform.python_version()} on {platform.platform()}")
    for pkg in ("ldns-sim", "torch", "numpy", "numba", "scipy", "pynwb", "h5py", "pylsl", "pyzmq",
                "pydantic", "safetensors", "pygame"):
        try:
            print(f"{pkg} {md.version(pkg)}")
        except md.PackageNotFoundError:
            print(f"{pkg} not installed")
    print(f"torch threads {torch.get_num_threads()}, cuda {torch.cuda.is_available()}")
    try:
        from ldns_sim.lsl_config import configure_lsl

        configure_lsl()
        import pylsl

        print(f"liblsl {pylsl.library_version()} (protocol {pylsl.protocol_version()})")
    except Exception as e:  # sys-info reports, it does not fail
        print(f"liblsl unavailable: {e}")
    return 0


def cmd_closed_loop(args: argparse.Namespace) -> dict:
    from ldns_sim.closed_loop_command import run_closed_loop

    return run_closed_loop(args)
