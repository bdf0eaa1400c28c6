"""Why ReFIT loses to the plain Kalman filter here: the same closed-loop block, relabelled in ways.

Per seed: calibrate a Kalman filter open loop (as the benchmark does), run one closed-loop block
with it and the scripted user, then refit its observation model on that block against
different labels, and score every variant in the same scored session (same spikes seed, same
user seed). Labels:

- ``gilja end-of-bin cursor``: ReFIT as it was: decoded velocity rotated to the target from the
  cursor at the bin's end, speed = decoded speed, 0 inside;
- ``gilja bin-start cursor``: ReFIT now (``closed_loop.calibration.refit_on_session``);
- ``speed of previous bin``: the same, with the speed of the bin before (not the bin's own);
- ``true speed``: the same directions with the scripted user's true intended speed;
- ``true intention``: the velocity that really drove the model (an oracle, not ReFIT).

Usage::

    python scripts/refit_diagnosis.py --model m1-velocity --seeds 0,1,2 --json refit.json
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from closed_loop_benchmark import _generator_factory  # noqa: E402

from ldns_sim.closed_loop import (  # noqa: E402
    ClosedLoopSession,
    calibration_block,
    default_task,
    default_user,
    fit_decoder,
)
from ldns_sim.closed_loop.calibration import screen_at_bin_start  # noqa: E402
from ldns_sim.decoders.kalman import intended_velocity  # noqa: E402


def _speed(v: np.ndarray) -> np.ndarray:
    return np.linalg.norm(v, axis=1)


def labels(a: dict, task) -> dict[str, np.ndarray]:
    """Every label variant for the block's arrays ``a`` (``SessionLog.arrays()``)."""
    cursor, inside = screen_at_bin_start(a["cursor"], a["target"], task.target_radius)
    previous = np.vstack([np.zeros((1, 2)), a["decoded"][:-1]])
    return {
        "gilja end-of-bin cursor": intended_velocity(a["decoded"], a["cursor"], a["target"],
                                                     a["inside"]),
        "gilja bin-start cursor": intended_velocity(a["decoded"], cursor, a["target"], inside),
        "speed of previous bin": intended_velocity(previous, cursor, a["target"], inside),
        "true speed": intended_velocity(a["intended"], cursor, a["target"], inside),
        "true intention": a["intended"],
    }


def one_seed(make_gen, vs: float, seed: int, args) -> dict:
    task = default_task(vs)
    gen = make_gen(seed)
    rng = np.random.default_rng(seed)
    kalman = fit_decoder("refit", calibration_block(gen, args.calibration, vs, rng))
    a = ClosedLoopSession(gen, copy.deepcopy(kalman), task, default_user(vs), rng).run(
        args.refit_block).arrays()
    out = {"block": {
        "decoded_speed_inside_target": float(_speed(a["decoded"][a["inside"]]).mean()),
        "intended_speed_mean": float(_speed(a["intended"]).mean()),
        "corr_decoded_intended_speed": float(np.corrcoef(_speed(a["decoded"]),
                                                         _speed(a["intended"]))[0, 1])}}
    variants = {"kalman (no refit)": kalman}
    for name, label in labels(a, task).items():
        d = copy.deepcopy(kalman)
        d._fit_observation(a["counts"].astype(float), label)
        variants[name] = d
    for name, d in variants.items():
        session = ClosedLoopSession(make_gen(seed), d, task, default_user(vs),
                                    np.random.default_rng(seed + 7))
        out[name] = session.run(args.duration).scores().as_dict()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="model name or bundle dir (default m1-velocity); 'tuning'")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--calibration", type=float, default=120.0)
    ap.add_argument("--refit-block", type=float, default=60.0)
    ap.add_argument("--duration", type=float, default=120.0)
    ap.add_argument("--json")
    args = ap.parse_args()
    make_gen, vs, name = _generator_factory(args.model, 5)
    seeds = [int(s) for s in args.seeds.split(",")]
    results = {str(s): one_seed(make_gen, vs, s, args) for s in seeds}
    first = results[str(seeds[0])]
    print(f"\n### ReFIT labels, model {name}, seeds {args.seeds}: success rate per seed "
          f"(mean), bitrate mean\n")
    print("| variant | success per seed | success mean | bitrate mean (bits/s) |")
    print("|---|---|---|---|")
    for variant in (k for k in first if k != "block"):
        success = [results[str(s)][variant]["success_rate"] for s in seeds]
        bitrate = [results[str(s)][variant]["bitrate_bps"] for s in seeds]
        print(f"| {variant} | {' / '.join(f'{x:.2f}' for x in success)} | "
              f"{np.mean(success):.2f} | {np.mean(bitrate):.2f} |")
    print("\nblock:", {s: results[str(s)]["block"] for s in seeds})
    if args.json:
        Path(args.json).write_text(json.dumps({"model": name, "results": results}, indent=2))


if __name__ == "__main__":
    main()
