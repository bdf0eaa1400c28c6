"""``ldns-sim train``: autoencoder, then diffusion, then spike history (and, for direction
models, the rate calibration of ``calibrate_rates``), into one bundle.

Each stage writes a resumable state under ``OUT/checkpoints/``; an interrupted run started
again with the same arguments continues from the last saved epoch of the stage it was in
(the stages before it are taken from their saved states).
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from ldns_sim.bundle import (
    FORMAT_VERSION,
    BundleMeta,
    ModelBundle,
    load_bundle,
    package_versions,
    save_bundle,
)
from ldns_sim.core import SpikeData
from ldns_sim.data.windows import cut_windows, laid_end_to_end, make_windows, window_index
from ldns_sim.errors import DataError
from ldns_sim.nn.autoencoder import AutoEncoder, encode_stitched
from ldns_sim.nn.denoiser import DenoiserConfig
from ldns_sim.threads import one_thread
from ldns_sim.train.calibrate_rates import calibrate_rates
from ldns_sim.train.config import DiffusionTrain, TrainConfig
from ldns_sim.train.fit_autoencoder import fit_autoencoder
from ldns_sim.train.fit_diffusion import fit_denoiser
from ldns_sim.train.fit_spike_history import fit_spike_history
from ldns_sim.train.loop import init_distributed

log = logging.getLogger(__name__)


def data_fingerprint(data: SpikeData) -> str:
    """sha256 over bin width, neuron ids and every trial's counts and behaviour."""
    digest = hashlib.sha256(f"{data.bin_s:.9g}|{'|'.join(data.neuron_ids)}".encode())
    for i, counts in enumerate(data.counts):
        digest.update(np.ascontiguousarray(counts, dtype=np.int32).tobytes())
        if data.behaviour is not None:
            digest.update(np.ascontiguousarray(data.behaviour[i], dtype=np.float32).tobytes())
    return digest.hexdigest()


def _windows(data: SpikeData, n_bins: int, stride: int):
    counts, behaviour, direction = make_windows(data, n_bins, stride)
    counts_t = torch.as_tensor(counts, dtype=torch.float32).transpose(1, 2)  # (W, N, L)
    beh_t = None if behaviour is None else torch.as_tensor(behaviour, dtype=torch.float32)
    dir_t = None if direction is None else torch.as_tensor(direction, dtype=torch.float32)
    return counts_t, beh_t, dir_t


CALIBRATION_STAGE = 3
"""Stage number of the rate calibration's random stream (0 autoencoder, 1 and 2 the
denoisers)."""

LATENT_ENCODING = "stitched-v1"
"""How training latents are made (part of the diffusion stage's resume tag): each trial encoded
whole by ``encode_stitched``, then cut into windows."""


def encode_trials(ae: AutoEncoder, data: SpikeData, window_bins: int) -> list[np.ndarray]:
    """Every trial's latents, (T, Z) each, encoded by overlapping windows (encode_stitched)."""
    hop = max(1, window_bins // 3)
    return [encode_stitched(ae, torch.as_tensor(np.asarray(c, dtype=np.float32)).T,
                            window_bins, hop).T.numpy() for c in data.counts]


def _latent_windows(trial_latents: list[np.ndarray], n_bins: int, stride: int) -> torch.Tensor:
    """(W, Z, L) windows of the trials' latents, in make_windows's order."""
    trial_of, start_of = window_index([len(z) for z in trial_latents], n_bins, stride)
    return torch.as_tensor(cut_windows(trial_latents, trial_of, start_of, n_bins)
                           ).transpose(1, 2)


def stage_seed(seed: int, stage: int) -> int:
    """The seed of a training stage's random stream, from the run's seed and the stage's
    number (a non-negative int64)."""
    return int(np.random.SeedSequence([seed, stage]).generate_state(1, np.uint64)[0] >> 1)


def stage_generator(seed: int, stage: int) -> torch.Generator:
    """Each training stage draws from its own stream (``stage_seed``): a stage resumed from
    its finished checkpoint leaves the next stage's random numbers as they are in an
    uninterrupted run."""
    return torch.Generator().manual_seed(stage_seed(seed, stage))


def diffusion_recipe(cfg: TrainConfig, train: SpikeData, val: SpikeData) -> DiffusionTrain:
    """The diffusion stage's settings for ``cfg.condition``: direction models trained from
    trial starts (``DiffusionTrain.direction_window_bins``) get one window per trial, its first
    ``direction_window_bins`` bins (in the val split too), and ``direction_epochs``; every
    other model ``cfg.diffusion`` as it is."""
    dcfg = cfg.diffusion
    n_bins = dcfg.direction_window_bins
    if cfg.condition != "direction" or not n_bins:
        return dcfg
    lengths = {name: [len(c) for c in split.counts] for name, split in
               (("train", train), ("val", val))}
    for name, split_lengths in lengths.items():
        if max(split_lengths) < n_bins:
            raise DataError(f"{train.source}: a direction model learns from the first {n_bins} "
                            f"bins of each trial, and the longest {name} trial has "
                            f"{max(split_lengths)}; give --direction-window-bins "
                            f"{max(split_lengths)} or less (0: windows across each trial)")
    n_short = sum(n < n_bins for n in lengths["train"])
    if n_short:
        log.info("direction model: %d of %d train trials are shorter than %d bins and left out "
                 "of the diffusion stage", n_short, len(lengths["train"]), n_bins)
    # a stride longer than any trial: each trial gives the window at its start only
    longest = max(max(v) for v in lengths.values())
    return replace(dcfg, window_bins=n_bins, stride_bins=longest + 1,
                   epochs=dcfg.direction_epochs)


def _recipe_tag_fields(dcfg: DiffusionTrain, condition: str) -> dict:
    """The diffusion settings that take effect, for the resume tag (the direction-only fields
    do not change other models, so they do not invalidate their checkpoints)."""
    fields = asdict(dcfg)
    if condition != "direction":
        fields = {k: v for k, v in fields.items() if not k.startswith("direction_")}
    return fields


def _check_condition(cfg: TrainConfig, data: SpikeData) -> None:
    if cfg.condition not in ("velocity", "direction", "none"):
        raise DataError(f"--condition {cfg.condition!r}: expected velocity, direction or none")
    if cfg.condition == "velocity" and data.behaviour is None:
        raise DataError(f"{data.source}: --condition velocity needs behaviour, the file has none")
    if cfg.condition == "direction" and data.direction_rad is None:
        raise DataError(f"{data.source}: --condition direction needs per-trial directions")


def _condition_tensors(cfg, beh, direction, scale):
    """Behaviour (W, L, B) -> normalised (W, B, L); direction (W,) -> (W, 2)."""
    b = (beh / scale).transpose(1, 2) if cfg.condition == "velocity" else None
    d = None
    if cfg.condition == "direction":
        d = torch.stack([torch.cos(direction), torch.sin(direction)], dim=-1)
    return b, d


def train_model(data: SpikeData, out_dir: str | Path, cfg: TrainConfig, name: str = "model",
                show_progress: bool = True) -> ModelBundle | None:
    """Train every stage on ``data``'s train split (validation on its val split).

    Returns the saved bundle on the main process (None on other ``torchrun`` ranks).
    """
    _check_condition(cfg, data)
    dist = init_distributed()
    out = Path(out_dir)
    ckpt = out / "checkpoints"
    t_start = time.perf_counter()
    train, val = data.select("train"), data.select("val")
    dcfg = diffusion_recipe(cfg, train, val)  # before the autoencoder: a bad setting fails now
    fingerprint = data_fingerprint(data)

    def stage_tag(*parts) -> str:
        """Identifies a stage's inputs: a saved state with another tag is not resumed."""
        return hashlib.sha256(f"{fingerprint}|{cfg.seed}|{parts}".encode()).hexdigest()

    # the condition decides whether the autoencoder trains with the velocity read-out (another
    # set of saved parameters), so it is part of the autoencoder's inputs
    with_readout = cfg.condition == "velocity" and cfg.ae.behaviour_beta > 0
    ae_tag = stage_tag(asdict(cfg.ae), with_readout)
    diffusion_tag = stage_tag(asdict(cfg.ae), _recipe_tag_fields(dcfg, cfg.condition),
                              cfg.condition, LATENT_ENCODING)

    ae_counts, ae_beh, ae_dir = _windows(train, cfg.ae.window_bins, cfg.ae.stride_bins)
    val_counts, val_beh, val_dir = _windows(val, cfg.ae.window_bins, cfg.ae.window_bins)
    # behaviour normalisation (velocity models): per-channel std of the train bins, used by
    # the autoencoder's read-out and by the denoiser's conditioning
    n_beh = train.n_behaviour if cfg.condition == "velocity" else 0
    scale = torch.ones(max(n_beh, 1))
    velocity_scale = 1.0
    if cfg.condition == "velocity":
        flat = np.concatenate(train.behaviour)  # (n_bins_total, B)
        scale = torch.as_tensor(flat.std(axis=0), dtype=torch.float32).clamp_min(1e-6)
        velocity_scale = float(np.percentile(np.linalg.norm(flat, axis=1), 95))
    ae_readout_target = None
    if with_readout:
        ae_readout_target = (ae_beh / scale).transpose(1, 2)  # (W, B, L)
    ae, report = fit_autoencoder(cfg.ae, ae_counts, val_counts, stage_generator(cfg.seed, 0), dist,
                                 ckpt / "autoencoder.pt", show_progress, ae_tag,
                                 ae_readout_target)
    t_ae = time.perf_counter() - t_start

    seq_train, seq_val = train, val  # what the diffusion windows are cut from
    streams_trials = dcfg.concatenate_trials and cfg.condition != "direction"
    if streams_trials:
        seq_train, seq_val = laid_end_to_end(train), laid_end_to_end(val)
    _, d_beh, d_dir = _windows(seq_train, dcfg.window_bins, dcfg.stride_bins)
    val_stride = max(dcfg.window_bins, dcfg.stride_bins)  # trial starts only, if trained so
    _, v_beh, v_dir = _windows(seq_val, dcfg.window_bins, val_stride)
    with torch.no_grad():
        train_latents = encode_trials(ae, seq_train, cfg.ae.window_bins)  # [(T, Z)]
        val_latents = encode_trials(ae, seq_val, cfg.ae.window_bins)
    z_train = _latent_windows(train_latents, dcfg.window_bins, dcfg.stride_bins)  # (W, Z, L)
    latent_mean = z_train.mean(dim=(0, 2))
    latent_std = z_train.std(dim=(0, 2)).clamp_min(1e-4)

    def norm(z):
        return (z - latent_mean[:, None]) / latent_std[:, None]

    train_b, train_d = _condition_tensors(cfg, d_beh, d_dir, scale)
    val_b, val_d = _condition_tensors(cfg, v_beh, v_dir, scale)
    val_set = (norm(_latent_windows(val_latents, dcfg.window_bins, val_stride)), val_b,
               val_d)

    def denoiser_cfg(causal: bool) -> DenoiserConfig:
        null = causal and n_beh > 0 and dcfg.cond_dropout > 0
        return DenoiserConfig(n_latents=cfg.ae.n_latents, n_hidden=dcfg.n_hidden,
                              n_blocks=dcfg.n_blocks, n_state=dcfg.n_state, causal=causal,
                              n_behaviour=n_beh + int(null),
                              use_direction=cfg.condition == "direction",
                              min_decay_per_bin=4.0 / dcfg.window_bins if causal else 0.0,
                              null_condition=null, guidance=dcfg.guidance if null else 1.0,
                              context_noise_t=dcfg.context_noise_t
                              if causal and streams_trials else 0)

    denoiser, rep = fit_denoiser(dcfg, denoiser_cfg(True), norm(z_train), train_b, train_d,
                                 val_set, stage_generator(cfg.seed, 1), dist,
                                 ckpt / "causal_denoiser.pt",
                                 show_progress, diffusion_tag)
    report |= rep
    window = None
    if dcfg.train_window_denoiser:
        window, rep = fit_denoiser(dcfg, denoiser_cfg(False), norm(z_train), train_b, train_d,
                                   val_set, stage_generator(cfg.seed, 2), dist,
                                   ckpt / "window_denoiser.pt",
                                   show_progress, diffusion_tag)
        report |= rep
    t_diffusion = time.perf_counter() - t_start - t_ae

    # non-overlapping windows: the full-batch fit needs every bin once, not window/stride times;
    # rates decoded from the same latents the diffusion model learned
    h_counts = _windows(seq_train, cfg.ae.window_bins, cfg.ae.window_bins)[0]
    with torch.no_grad():
        h_latents = _latent_windows(train_latents, cfg.ae.window_bins, cfg.ae.window_bins)
        ae_rates = ae.decode(h_latents)  # (W, N, L)
    history, rep = fit_spike_history(cfg.history, h_counts, ae_rates,
                                     show_progress and dist.is_main)
    report |= rep
    report |= {"train_seconds_autoencoder": t_ae, "train_seconds_diffusion": t_diffusion,
               "n_train_trials": float(train.n_trials), "n_val_trials": float(val.n_trials)}
    if not dist.is_main:
        return None
    meta = BundleMeta(
        format_version=FORMAT_VERSION, name=name, package_version=package_versions()["ldns_sim"],
        ae=ae.cfg, denoiser=denoiser.cfg, window_denoiser=None if window is None else window.cfg,
        history=history.cfg, condition=cfg.condition,
        behaviour_names=tuple(data.behaviour_names) if n_beh else (),
        velocity_scale=velocity_scale, bin_s=data.bin_s, neuron_ids=tuple(data.neuron_ids),
        window_bins=dcfg.window_bins, data_source=str(data.source),
        data_fingerprint=fingerprint, train_config=asdict(cfg),
        versions=package_versions(), metrics={k: float(v) for k, v in report.items()},
        seed=cfg.seed,
    )
    bundle = ModelBundle(meta=meta, ae=ae, denoiser=denoiser, window_denoiser=window,
                         history=history, latent_mean=latent_mean, latent_std=latent_std,
                         behaviour_scale=scale)
    metrics = dict(meta.metrics)
    if cfg.condition in cfg.calibration.conditions:
        t_calibration = time.perf_counter()
        metrics |= calibrate_bundle(bundle, train, cfg)
        metrics["train_seconds_calibration"] = time.perf_counter() - t_calibration
    metrics["train_seconds_total"] = time.perf_counter() - t_start
    bundle = replace(bundle, meta=meta.model_copy(update={"metrics": metrics}))
    save_bundle(bundle, out)
    log.info("saved model bundle to %s", out)
    return load_bundle(out)


def calibrate_bundle(bundle: ModelBundle, train: SpikeData, cfg: TrainConfig
                     ) -> dict[str, float]:
    """Refit ``bundle``'s observation intercept in place (``calibrate_rates``, its own random
    stream from the run's seed); returns the calibration's report for the bundle's metrics."""
    seed = stage_seed(cfg.seed, CALIBRATION_STAGE)
    with one_thread():  # many small sampling ops (ldns_sim.threads)
        calibration = calibrate_rates(bundle, train, cfg.calibration.samples_per_trial,
                                      cfg.calibration.iterations, seed)
    with torch.no_grad():
        bundle.history.bias.copy_(calibration.bias)
    return calibration.report()


def with_overrides(cfg: TrainConfig, **stage_overrides) -> TrainConfig:
    """``with_overrides(cfg, ae={'epochs': 5})``: a copy with some stage fields replaced."""
    for stage, fields in stage_overrides.items():
        cfg = replace(cfg, **{stage: replace(getattr(cfg, stage), **fields)})
    return cfg

