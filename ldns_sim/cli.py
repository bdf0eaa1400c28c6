"""The ``ldns-sim`` command line: parse arguments, call the library, return an exit code.

Errors a user can act on (``LdnsSimError``) print one line and exit 2; nothing else here has
logic of its own.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from ldns_sim.core import DEFAULT_STEP_SPACING, DEFAULT_STEPS, STEP_SPACINGS
from ldns_sim.errors import ConfigError, LdnsSimError

log = logging.getLogger("ldns_sim")

CONDITION_HELP = (
    "what drives the model: joystick (gamepad, needs the 'joystick' extra), mouse (a small "
    "window), lsl[:NAME] (a behaviour stream from the rig), zmq[:ENDPOINT], replay:FILE "
    "(behaviour of a recording), script:center-out (scripted reaches), none")


def _add_sink_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="default",
                   help="stream profile: a name in streams/ or a TOML file (default: default)")
    p.add_argument("--lsl", dest="lsl", action="store_true", default=None,
                   help="publish over LSL (default: as the profile says, on)")
    p.add_argument("--no-lsl", dest="lsl", action="store_false", help="do not publish over LSL")
    p.add_argument("--lsl-scope", choices=["machine", "link", "site", "organization", "global"],
                   help="liblsl discovery scope; default 'machine' (this computer only). Use "
                        "'site' so decoder rigs on other lab computers find the streams")
    p.add_argument("--lsl-prefix", help="LSL stream name prefix (default ldns-sim)")
    p.add_argument("--zmq", dest="zmq_endpoint", metavar="ENDPOINT",
                   help="ZMQ PUB endpoint (default tcp://127.0.0.1:5556)")
    p.add_argument("--no-zmq", action="store_true", help="do not publish over ZMQ")
    p.add_argument("--bind-any", action="store_true",
                   help="allow a ZMQ endpoint that is not loopback (e.g. tcp://*:5556)")
    p.add_argument("--record", metavar="FILE.nwb",
                   help="record the session to NWB (crash-safe journal FILE.nwb.partial/)")
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--perturb", action="append", default=[], metavar="KIND:VALUE@START-END",
                   help="scheduled perturbation of the streamed counts, seconds since the "
                        "stream started, repeatable: dropout:FRACTION, drift:PER_MIN, "
                        "gain:FACTOR, noise:HZ, shuffle:FRACTION, e.g. dropout:0.3@60-120; "
                        "onsets/offsets are markers (see docs/wire-format.md)")
    p.add_argument("--perturb-file", metavar="FILE.toml",
                   help="perturbations as [[perturbation]] tables (kind, value, start_s, "
                        "end_s); a profile may hold the same tables")


GUIDANCE_HELP = ("classifier-free guidance weight (default: the model's; 1 = plain conditional, "
                 "larger = the behaviour followed more strongly)")
CONTEXT_NOISE_HELP = ("diffusion timestep (0-999) at which each emitted latent is re-noised "
                      "before the streaming sampler conditions on it (default: the model's; 0 = "
                      "clean context; higher = less pull from its own past)")
STEP_SPACING_HELP = ("where the denoising steps sit among the 1000 training timesteps: trailing "
                     "(default; 999, 749, 499, 249 for 4 steps) or leading (750, 500, 250, 0; "
                     "what ldns-sim did before 2026-12-05)")


def _add_sampler_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--guidance", type=float, metavar="W", help=GUIDANCE_HELP)
    p.add_argument("--context-noise", type=int, metavar="T", help=CONTEXT_NOISE_HELP)
    p.add_argument("--step-spacing", choices=STEP_SPACINGS, default=DEFAULT_STEP_SPACING,
                   help=STEP_SPACING_HELP)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ldns-sim",
        description="Latent-diffusion spiking simulator: train on recordings, stream synthetic "
                    "spikes in real time over LSL/ZMQ, record to NWB, evaluate realism.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("stream", help="stream synthetic spikes in real time (the main job)",
                       description="Generate spikes bin by bin from a model, driven by live "
                                   "behaviour, publish them over LSL and ZMQ, optionally "
                                   "record to NWB. Ctrl-C stops cleanly.")
    p.add_argument("--model", help="shipped model name or bundle directory "
                                   "(default m1-velocity; see `ldns-sim models`)")
    p.add_argument("--condition", default="script:center-out", help=CONDITION_HELP +
                   " (default script:center-out)")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                   help=f"denoising steps per bin (default {DEFAULT_STEPS}; see "
                        f"docs/benchmarks.md)")
    _add_sampler_options(p)
    p.add_argument("--direction", type=float, metavar="DEG",
                   help="reach angle for a direction-conditioned model")
    _add_sink_options(p)

    p = sub.add_parser("replay", help="stream a real recording with the same wire contract",
                       description="Publish a recording's spikes bin by bin on the same LSL "
                                   "streams and ZMQ topics as `stream`, so a rig can compare "
                                   "real and synthetic through the same decoder.")
    p.add_argument("data", help="recording (.nwb, .mat TrialData, .npz)")
    p.add_argument("--adapter", help="dataset adapter name or TOML file")
    p.add_argument("--once", action="store_true", help="stop at the end instead of looping")
    _add_sink_options(p)

    p = sub.add_parser("train", help="train a model bundle on a recording",
                       description="Train the autoencoder, then the diffusion model, then the "
                                   "spike-history model; resumable (run again to continue).")
    p.add_argument("data", help="recording (.nwb in NLB layout, .mat TrialData, .npz)")
    p.add_argument("--out", required=True, help="output bundle directory")
    p.add_argument("--adapter", help="dataset adapter name or TOML file")
    p.add_argument("--condition", choices=["velocity", "direction", "none"], default="velocity",
                   help="what the model is conditioned on (default velocity)")
    p.add_argument("--preset", choices=["default", "lorenz", "tiny"], default="default",
                   help="model and training sizes (default: minutes on a laptop CPU)")
    p.add_argument("--epochs-ae", type=int, help="override autoencoder epochs")
    p.add_argument("--epochs-diffusion", type=int,
                   help="override diffusion epochs (those of a direction model trained from "
                        "trial starts too)")
    p.add_argument("--direction-window-bins", type=int, metavar="N",
                   help="direction models: learn from the first N bins of each trial (default "
                        "64; trials shorter are left out); 0: windows across each trial")
    p.add_argument("--window-denoiser", action="store_true",
                   help="also train the published bidirectional whole-window denoiser")
    p.add_argument("--name", help="model name recorded in the bundle (default: folder name)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")

    p = sub.add_parser("sample", help="sample trials offline to .npz or .nwb",
                       description="Generate trials from a model bundle, conditioned on the "
                                   "behaviour of a recording, scripted reaches or a direction.")
    p.add_argument("model", help="shipped model name or bundle directory")
    p.add_argument("--out", required=True, help="output file, .npz or .nwb")
    p.add_argument("--trials", type=int, default=100, help="number of trials (default 100)")
    p.add_argument("--bins", type=int, help="bins per trial (default: the model's window)")
    p.add_argument("--condition-from", metavar="DATA",
                   help="take behaviour/directions from this recording's test trials "
                        "(default: scripted centre-out reaches)")
    p.add_argument("--adapter", help="dataset adapter for --condition-from")
    p.add_argument("--direction", type=float, metavar="DEG",
                   help="one reach angle for all trials (direction models)")
    p.add_argument("--sampler", choices=["stream", "window"], default="stream",
                   help="stream: causal bin-by-bin (as streamed); window: published "
                        "whole-window denoiser")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                   help=f"denoising steps (default {DEFAULT_STEPS})")
    _add_sampler_options(p)
    p.add_argument("--no-history", action="store_true",
                   help="Poisson observations instead of the spike-history model")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")

    p = sub.add_parser("evaluate", help="realism metrics, baselines, report",
                       description="Compare a model (sampled on the real data's conditions), "
                                   "a samples file or a recorded session with a recording.")
    p.add_argument("candidate", help="model bundle/name, samples .npz/.nwb, or session .nwb")
    p.add_argument("--data", required=True, help="the real recording")
    p.add_argument("--adapter", help="dataset adapter for --data")
    p.add_argument("--split", default="test", choices=["train", "val", "test"],
                   help="real trials to compare against (default test)")
    p.add_argument("--report", metavar="DIR", help="write metrics.json, PNGs and index.html")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                   help=f"denoising steps when sampling (default {DEFAULT_STEPS})")
    _add_sampler_options(p)
    p.add_argument("--samples-per-trial", type=int, default=1, metavar="K",
                   help="generated trials per real trial, for the model and the baselines "
                        "(default 1; the reference drew 5 per trajectory): more of them "
                        "average out the sampling noise of the generated side")
    p.add_argument("--n-boot", type=int, default=50, help="bootstrap resamples (default 50)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")

    p = sub.add_parser("bench", help="real-time factor, latency, jitter, memory",
                       description="Measure the streaming generator on this machine.")
    p.add_argument("--model", help="shipped model name or bundle directory")
    p.add_argument("--duration", type=float, default=20.0, help="seconds per run (default 20)")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                   help=f"denoising steps per bin (default {DEFAULT_STEPS})")
    p.add_argument("--scaling", action="store_true",
                   help="also the table for 96/192/384/1024 neurons and 1/4/16 streams")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = sub.add_parser("closed-loop", help="a decoder under test in closed loop, scored",
                       description="Calibrate a decoder, drive the model with a (scripted) user "
                                   "through the decoded cursor, score it; see "
                                   "docs/closed-loop.md.")
    from ldns_sim.closed_loop_command import add_arguments

    add_arguments(p)

    sub.add_parser("models", help="list the shipped models")
    p = sub.add_parser("info", help="a model's card summary")
    p.add_argument("model", help="shipped model name or bundle directory")
    p = sub.add_parser("recover", help="turn a crashed session's journal into an NWB file")
    p.add_argument("partial", help="the FILE.nwb.partial directory left by a killed session")
    p.add_argument("--out", help="output .nwb (default: FILE.nwb)")
    sub.add_parser("sys-info", help="versions of everything, for bug reports")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    from ldns_sim import commands

    handler = getattr(commands, "cmd_" + args.command.replace("-", "_"))
    try:
        result = handler(args)
    except LdnsSimError as e:
        print(f"ldns-sim {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ldns-sim {args.command}: interrupted", file=sys.stderr)
        return 130
    if isinstance(result, dict):
        print(json.dumps(result, indent=2))
        return 0
    return int(result or 0)


__all__ = ["ConfigError", "build_parser", "main"]
