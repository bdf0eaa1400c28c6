"""``ldns-sim closed-loop``: calibrate a decoder, close the loop, score it, record everything.

Steps: load the model -> (``--user joystick|mouse``: open the task window) -> open-loop
calibration block (scripted reaches, ``--calibration S``) -> fit the decoder (or load
``--decoder-file``) -> for ``refit``, a closed-loop block with the calibrated Kalman filter
(``--refit-block S``, driven by the same user as the session) and the ReFIT recalibration ->
the scored closed-loop session (``--duration S``) with the scripted user or the person, and
any ``--perturb`` -> scores as JSON on stdout, and the session in ``--record FILE.nwb``.

Without ``--realtime`` (and with the scripted user) the loop runs headless as fast as the model
generates; with it (or with a human user, or when publishing over LSL/ZMQ) each bin is paced
on the LSL clock so a rig can follow along.
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from pathlib import Path

import numpy as np

from ldns_sim.core import DEFAULT_STEPS
from ldns_sim.errors import ConfigError

log = logging.getLogger(__name__)

TUNING_MODEL = "tuning"
"""``--model tuning``: a cosine-tuned Poisson population (``ldns_sim.testing``), no torch model."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``closed-loop`` subcommand's options (called from ``cli.build_parser``)."""
    p.add_argument("--decoder", choices=["wiener", "kalman", "refit", "ideal"], required=True,
                   help="decoder under test; 'ideal' moves the cursor with the intended "
                        "velocity (the ceiling)")
    p.add_argument("--user", choices=["script", "joystick", "mouse"], default="script",
                   help="who drives: the scripted user (headless, reproducible) or a person")
    p.add_argument("--model", help="model name or bundle directory (default m1-velocity); "
                                   "'tuning' for a cosine-tuned demo population")
    p.add_argument("--duration", type=float, default=120.0, metavar="S",
                   help="scored closed-loop time in seconds (default 120)")
    p.add_argument("--calibration", type=float, default=120.0, metavar="S",
                   help="open-loop calibration block in seconds (default 120)")
    p.add_argument("--refit-block", type=float, default=60.0, metavar="S",
                   help="closed-loop block the ReFIT decoder is recalibrated on (default 60)")
    p.add_argument("--decoder-file", metavar="FILE.npz",
                   help="use this fitted decoder instead of calibrating one")
    p.add_argument("--save-decoder", metavar="FILE.npz", help="save the fitted decoder")
    p.add_argument("--perturb", action="append", default=[], metavar="KIND:VALUE@START-END",
                   help="scheduled perturbation in session seconds, repeatable: "
                        "dropout:FRACTION, drift:PER_MIN, gain:FACTOR, noise:HZ, "
                        "shuffle:FRACTION, e.g. dropout:0.3@60-120 (see docs/closed-loop.md)")
    p.add_argument("--perturb-file", metavar="FILE.toml",
                   help="perturbations as [[perturbation]] tables (kind, value, start_s, end_s)")
    p.add_argument("--record", metavar="FILE.nwb", help="record the session to NWB")
    p.add_argument("--realtime", action="store_true",
                   help="pace the loop on the clock, one bin per bin width")
    p.add_argument("--lsl", action="store_true", help="publish the session's streams over LSL")
    p.add_argument("--zmq", dest="zmq_endpoint", metavar="ENDPOINT",
                   help="publish the session's streams on this ZMQ PUB endpoint")
    p.add_argument("--decoder-process", choices=["zmq", "lsl"],
                   help="run the fitted decoder in a process of its own that reads the "
                        "published spikes over ZMQ or LSL and sends its velocity back, as on "
                        "a rig (paced in real time; loop latency in the output)")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                   help=f"denoising steps per bin (default {DEFAULT_STEPS})")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


def load_generator(model: str | None, seed: int, steps: int = 5):
    """``(generator, velocity_scale, model_name, sha256)`` for ``--model``."""
    if model == TUNING_MODEL:
        from ldns_sim.testing import TuningCurveGenerator

        gen = TuningCurveGenerator(84, 0.05, 1, np.random.default_rng(seed))
        return gen, 1.0, "tuning-curves", ""
    from ldns_sim.bundle import load_bundle
    from ldns_sim.pretrained import resolve_model
    from ldns_sim.simulator import SamplerSettings, StreamingGenerator
    from ldns_sim.threads import use_one_thread

    use_one_thread()
    bundle = load_bundle(resolve_model(model))
    gen = StreamingGenerator(bundle, SamplerSettings(n_steps=steps), seed=seed)
    return gen, float(bundle.meta.velocity_scale), bundle.meta.name, bundle.sha256


def _perturbations(args: argparse.Namespace) -> list:
    from ldns_sim.closed_loop.perturbations import load_perturbations, parse_perturbation

    out = [parse_perturbation(s) for s in args.perturb]
    if args.perturb_file:
        out += load_perturbations(args.perturb_file)
    return out


def _check(args: argparse.Namespace) -> None:
    for name in ("duration", "calibration"):
        value = getattr(args, name)
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(f"--{name} {value}: expected a positive number of seconds")
    if args.record is not None:
        p = Path(args.record)
        if p.suffix != ".nwb" or not p.parent.is_dir():
            raise ConfigError(f"--record {args.record}: expected FILE.nwb in an existing folder")
        if p.exists():
            raise ConfigError(f"--record {args.record}: file exists; choose another name")
    if getattr(args, "decoder_process", None) and args.decoder == "ideal":
        raise ConfigError("--decoder-process: 'ideal' has no fitted decoder to run; choose "
                          "wiener, kalman or refit")


def calibrated_decoder(kind: str, generator, velocity_scale: float, calibration_s: float,
                       refit_s: float, rng: np.random.Generator, progress=None,
                       closed_loop_block=None):
    """Calibrate ``kind`` open loop; for ``refit`` also run the ReFIT block. ``None`` = ideal.

    ``closed_loop_block(generator, decoder, duration_s, rng) -> SessionLog`` runs the ReFIT
    block (``HumanMode.refit_block``: with the person); by default the scripted user drives it.
    """
    from ldns_sim.closed_loop.calibration import (
        calibration_block,
        default_task,
        default_user,
        fit_decoder,
        refit_on_session,
    )
    from ldns_sim.closed_loop.session import ClosedLoopSession

    if kind == "ideal":
        return None
    block = calibration_block(generator, calibration_s, velocity_scale, rng, progress=progress)
    decoder = fit_decoder(kind, block)
    if kind == "refit":
        task = default_task(velocity_scale)
        if closed_loop_block is None:
            session = ClosedLoopSession(generator, decoder, task, default_user(velocity_scale),
                                        rng)
            block_log = session.run(refit_s, progress=progress)
        else:
            block_log = closed_loop_block(generator, decoder, refit_s, rng)
        refit_on_session(decoder, block_log, task)
        log.info("ReFIT: recalibrated on %.0f s of closed-loop data", refit_s)
    return decoder


def run_closed_loop(args: argparse.Namespace) -> dict:
    """Everything ``ldns-sim closed-loop`` does; returns the scores as a dict."""
    from tqdm import tqdm

    from ldns_sim.closed_loop.calibration import default_task, default_user
    from ldns_sim.closed_loop.human_mode import human_mode
    from ldns_sim.closed_loop.session import ClosedLoopSession
    from ldns_sim.decoders import load_decoder
    from ldns_sim.stream_session import make_meta

    _check(args)
    perturbations = _perturbations(args)
    generator, velocity_scale, model_name, sha256 = load_generator(args.model, args.seed,
                                                                   args.steps)
    rng = np.random.default_rng(args.seed)
    n_pre = 0 if args.decoder_file or args.decoder == "ideal" else int(
        (args.calibration + (args.refit_block if args.decoder == "refit" else 0))
        / generator.bin_s)
    with tqdm(total=n_pre + int(round(args.duration / generator.bin_s)), unit="bin",
              desc=f"closed-loop {args.decoder}", disable=None) as bar, \
            human_mode(args.user, velocity_scale, generator.bin_s) as human:
        if args.decoder_file:
            decoder = load_decoder(args.decoder_file)
        elif human is None:
            decoder = calibrated_decoder(args.decoder, generator, velocity_scale,
                                         args.calibration, args.refit_block, rng, bar.update)
        else:  # the window stays responsive; the ReFIT block is run with the person
            decoder = calibrated_decoder(args.decoder, generator, velocity_scale,
                                         args.calibration, args.refit_block, rng,
                                         human.calibration_progress(
                                             int(args.calibration / generator.bin_s),
                                             bar.update),
                                         human.refit_block(bar.update))
        if args.save_decoder and decoder is not None:
            decoder.save(args.save_decoder)
        meta = make_meta(generator, model_name, sha256, args.seed,
                         f"closed-loop:{args.user}:{args.decoder}")
        sinks, clock = _open_sinks(args, meta)
        if human is not None and clock is None:
            clock = human.clock  # a person needs real time
        remote, workdir = _decoder_process(args, decoder, sinks, meta, clock)
        # headless: stamp on time.monotonic() from now (the LSL clock on Linux), so the
        # NWB session start time is right; session time still runs as fast as generated
        t0 = clock.now() if clock is not None else time.monotonic()
        try:
            task = default_task(velocity_scale)
            if remote is not None:
                remote.begin(t0)
            session = ClosedLoopSession(generator, remote or decoder, task,
                                        default_user(velocity_scale) if human is None
                                        else human.user,
                                        rng, perturbations, sinks, t0_s=t0,
                                        monotonic_offset_s=_offset(clock), clock=clock)
            if human is None:
                session.run(args.duration, progress=bar.update)
            else:
                human.run(session, args.duration, bar.update)
            session_log = session.finish()
        finally:
            if remote is not None:
                remote.close()
                workdir.cleanup()
            for sink in sinks:
                sink.close()
    scores = session_log.scores().as_dict()
    if args.record:
        from ldns_sim.closed_loop.recording import add_task_data

        add_task_data(args.record, session_log, task, args.decoder, {
            "calibration_s": args.calibration, "seed": args.seed,
            "perturbations": [p.spec() for p in perturbations], "user": args.user,
            **(human.facts() if human is not None else {})})
        if perturbations:
            from ldns_sim.perturbations.nwb import add_perturbation_intervals

            add_perturbation_intervals(args.record, perturbations)
        log.info("recorded the session to %s", args.record)
    out = {"decoder": args.decoder, "user": args.user, "model": model_name,
           "duration_s": args.duration,
           "perturbations": [p.spec() for p in perturbations], "scores": scores}
    if human is not None and human.stopped is not None:
        out.update(stopped=human.stopped, duration_s=session.t_s)
    if remote is not None:
        out["decoder_process"] = remote.stats()
    return out


def _decoder_process(args: argparse.Namespace, decoder, sinks, meta, clock):
    """``(RemoteDecoder, its temporary folder)`` for ``--decoder-process``, else Nones."""
    if not getattr(args, "decoder_process", None):
        return None, None
    import tempfile

    from ldns_sim.closed_loop.decoder_process import start_remote_decoder

    workdir = tempfile.TemporaryDirectory(prefix="ldns-sim-decoder-")
    try:
        return start_remote_decoder(args.decoder_process, decoder, sinks, meta, clock,
                                    workdir.name), workdir
    except BaseException:
        workdir.cleanup()
        for sink in sinks:
            sink.close()
        raise


def _offset(clock) -> float:
    return 0.0 if clock is None else clock.monotonic() - clock.now()


def _open_sinks(args: argparse.Namespace, meta):
    """Opened sinks and the pacing clock (``None``: headless, as fast as possible)."""
    from ldns_sim.sinks.nwb_recorder import NwbRecorder

    sinks = []
    clock = None
    process = getattr(args, "decoder_process", None)
    if args.realtime or args.lsl or args.zmq_endpoint or process:
        from ldns_sim.lsl_config import configure_lsl
        from ldns_sim.realtime.clock import LslClock

        configure_lsl()
        clock = LslClock()
    try:
        if args.lsl or process == "lsl":
            from ldns_sim.sinks.lsl_sink import LslSink

            sinks.append(LslSink().open(meta))
        if args.zmq_endpoint or process == "zmq":
            from ldns_sim.sinks.zmq_sink import ZmqSink

            sinks.append(ZmqSink(args.zmq_endpoint or "tcp://127.0.0.1:*").open(meta))
        if args.record:
            sinks.append(NwbRecorder(args.record).open(meta))
    except Exception:
        for sink in sinks:
            sink.close()
        raise
    return sinks, clock
