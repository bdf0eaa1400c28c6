"""Build the models shipped in pretrained/ (the cards, README.md, are written by hand from the
measured figures in docs/benchmarks.md).

    python scripts/build_pretrained.py tiny-synthetic
    python scripts/build_pretrained.py m1-velocity --from runs/m1-velocity [--guidance W]
        [--context-noise T]
    python scripts/build_pretrained.py m1-direction --from runs/m1-direction

``tiny-synthetic`` trains in about a minute on synthetic cosine-tuned neurons driven by
centre-out reach velocities; ``m1-velocity`` copies a bundle trained with
``ldns-sim train ../shared/data/m1_center_out_trialdata/center_out_data.mat --out runs/m1-velocity``
(weights and config only, not the resumable training states); ``m1-direction`` likewise a
bundle trained with ``--condition direction``. ``--guidance W`` records a
sampling default chosen after training (on the validation trials: ``ldns-sim evaluate MODEL
--split val --guidance W``) in place of the training config's; ``--context-noise T`` does
the same for the streaming sampler's context noise level (``ldns-sim evaluate MODEL --split val
--context-noise T``); the weights are unchanged.
"""

from __future__ import annotations

import argparse
import shutil
from dataclasses import replace
from pathlib import Path

import torch

from ldns_sim.bundle import CONFIG_FILE, WEIGHTS_FILE, load_bundle, save_bundle, sha256_file
from ldns_sim.data.tuning import make_tuning_data
from ldns_sim.pretrained import pretrained_dir
from ldns_sim.train.config import preset
from ldns_sim.train.pipeline import train_model, with_overrides


def build_tiny(out: Path) -> None:
    torch.set_num_threads(1)
    data = make_tuning_data(n_trials=200, n_neurons=32, n_bins=60, bin_s=0.02, seed=0)
    cfg = with_overrides(
        preset("tiny"),
        ae={"epochs": 40, "window_bins": 24, "stride_bins": 4, "batch_size": 32, "lr": 5e-3,
            "smooth_beta": 0.05},
        diffusion={"epochs": 40, "window_bins": 24, "stride_bins": 4, "batch_size": 32,
                   "lr": 3e-3},
    )
    train_model(data, out, cfg, name="tiny-synthetic", show_progress=True)
    shutil.rmtree(out / "checkpoints", ignore_errors=True)


def copy_bundle(src: Path, out: Path, guidance: float | None = None,
                context_noise_t: int | None = None) -> None:
    bundle = load_bundle(src)  # verify before shipping
    out.mkdir(parents=True, exist_ok=True)
    if guidance is None and context_noise_t is None:
        for name in (CONFIG_FILE, WEIGHTS_FILE):
            shutil.copy2(src / name, out / name)
        return
    recorded = bundle.meta.denoiser
    denoiser = replace(recorded,
                       guidance=recorded.guidance if guidance is None else guidance,
                       context_noise_t=(recorded.context_noise_t if context_noise_t is None
                                        else context_noise_t))
    bundle.denoiser.cfg = denoiser
    save_bundle(replace(bundle, meta=bundle.meta.model_copy(update={"denoiser": denoiser})), out)
    if sha256_file(out / WEIGHTS_FILE) != sha256_file(src / WEIGHTS_FILE):
        raise SystemExit("re-saving changed the weights; refusing to ship")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=["tiny-synthetic", "m1-velocity", "m1-direction"])
    parser.add_argument("--from", dest="src", help="trained bundle to ship (m1-*)")
    parser.add_argument("--guidance", type=float,
                        help="default guidance weight to record (chosen on the val split)")
    parser.add_argument("--context-noise", type=int,
                        help="default context noise level to record (chosen on the val split)")
    args = parser.parse_args()
    out = pretrained_dir() / args.name
    if args.name == "tiny-synthetic":
        build_tiny(out)
    elif args.src is None:
        raise SystemExit(f"{args.name}: give --from, the trained bundle to ship")
    else:
        copy_bundle(Path(args.src), out, args.guidance, args.context_noise)
    digest = sha256_file(out / WEIGHTS_FILE)
    (out / "SHA256SUMS").write_text(f"{digest}  {WEIGHTS_FILE}\n")
    load_bundle(out)


if __name__ == "__main__":
    main()
