"""Add the rate calibration of ``ldns-sim train`` (docs/design.md item 11) to a bundle trained
without it, e.g. a direction model trained before 2026-12-05 (session 9).

    python scripts/calibrate_bundle.py runs/m1-direction-al64 --out runs/m1-direction-al64-cal

The bundle's recorded training config gives the seed (the calibration's settings are this
package's defaults; a bundle calibrated already, or of a condition the calibration is not for,
is refused); the train split is taken from ``--data`` (the file the model was trained
on: its fingerprint must match). Only the observation model's intercept changes.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import asdict, replace

from ldns_sim.bundle import load_bundle, save_bundle
from ldns_sim.data.load import load_spike_data
from ldns_sim.pretrained import resolve_model
from ldns_sim.train.config import TrainConfig
from ldns_sim.train.pipeline import calibrate_bundle, data_fingerprint

DATA = "../shared/data/m1_center_out_trialdata/center_out_data.mat"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="bundle directory or shipped name")
    parser.add_argument("--out", required=True, help="where to write the calibrated bundle")
    parser.add_argument("--data", default=DATA, help="the recording the model was trained on")
    parser.add_argument("--adapter", help="dataset adapter name or TOML file")
    parser.add_argument("--any-condition", action="store_true",
                        help="also calibrate a model of a condition training leaves alone "
                             "(velocity: an experiment, docs/design.md item 11)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    bundle = load_bundle(resolve_model(args.model))
    data = load_spike_data(args.data, args.adapter)
    if data_fingerprint(data) != bundle.meta.data_fingerprint:
        raise SystemExit(f"{args.data} is not the data {args.model} was trained on "
                         f"(fingerprints differ)")
    recorded = bundle.meta.train_config
    conditions = TrainConfig().calibration.conditions
    if bundle.meta.condition not in conditions and not args.any_condition:
        raise SystemExit(f"{args.model} is conditioned on {bundle.meta.condition!r}; the "
                         f"calibration is for {', '.join(conditions)} models")
    if "calibration" in recorded:
        raise SystemExit(f"{args.model} is calibrated already (its training config records it)")
    if "seed" not in recorded:
        raise SystemExit(f"{args.model} does not record the seed it was trained with")
    cfg = replace(TrainConfig(), seed=int(recorded["seed"]))
    report = calibrate_bundle(bundle, data.select("train"), cfg)
    metrics = dict(bundle.meta.metrics) | report
    train_config = dict(recorded) | {"calibration": asdict(cfg.calibration)}
    save_bundle(replace(bundle, meta=bundle.meta.model_copy(
        update={"metrics": metrics, "train_config": train_config})), args.out)


if __name__ == "__main__":
    main()
