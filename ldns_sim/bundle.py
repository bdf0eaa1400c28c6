"""The model bundle: one directory that holds everything needed to sample or stream.

    weights.safetensors   every tensor (autoencoder, denoisers, spike history, latent and
                          behaviour statistics): safetensors never executes code on load
    config.json           BundleMeta: format version, architecture configs, data description,
                          training-data fingerprint, package versions, training metrics,
                          and the sha256 of weights.safetensors

A bundle that is missing a file, fails its checksum, or comes from another format version
fails with one BundleError line; nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import dataclass
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict, ValidationError
from safetensors.torch import load_file, save_file

from ldns_sim.errors import BundleError
from ldns_sim.nn.autoencoder import AutoEncoder, AutoEncoderConfig
from ldns_sim.nn.denoiser import Denoiser, DenoiserConfig
from ldns_sim.nn.spike_history import SpikeHistoryConfig, SpikeHistoryModel

FORMAT_VERSION = 1
WEIGHTS_FILE = "weights.safetensors"
CONFIG_FILE = "config.json"


class BundleMeta(BaseModel):
    """config.json, validated on load."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format_version: int
    name: str
    package_version: str
    ae: AutoEncoderConfig
    denoiser: DenoiserConfig
    window_denoiser: DenoiserConfig | None = None
    history: SpikeHistoryConfig | None = None
    condition: str
    """velocity | direction | none."""
    behaviour_names: tuple[str, ...] = ()
    velocity_scale: float = 1.0
    """Typical peak speed (95th percentile) of the training behaviour, in its units."""
    bin_s: float
    neuron_ids: tuple[str, ...]
    window_bins: int
    data_source: str
    data_fingerprint: str
    train_config: dict
    versions: dict[str, str]
    metrics: dict[str, float] = {}
    weights_sha256: str = ""
    seed: int = 0


@dataclass(frozen=True)
class ModelBundle:
    """Trained modules plus their statistics; ``meta`` describes them."""

    meta: BundleMeta
    ae: AutoEncoder
    denoiser: Denoiser
    latent_mean: torch.Tensor  # (Z,)
    latent_std: torch.Tensor  # (Z,)
    behaviour_scale: torch.Tensor  # (n_behaviour,) divide behaviour by this before the model
    window_denoiser: Denoiser | None = None
    history: SpikeHistoryModel | None = None

    @property
    def n_neurons(self) -> int:
        return self.meta.ae.n_neurons

    @property
    def sha256(self) -> str:
        return self.meta.weights_sha256

    def normalise_latents(self, z: torch.Tensor) -> torch.Tensor:
        """(B, Z, L) raw latents -> zero-mean unit-variance per channel."""
        return (z - self.latent_mean[:, None]) / self.latent_std[:, None]

    def denormalise_latents(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.latent_std[:, None] + self.latent_mean[:, None]


def package_versions() -> dict[str, str]:
    import numpy

    from ldns_sim import __version__

    return {"ldns_sim": __version__, "torch": torch.__version__, "numpy": numpy.__version__,
            "python": platform.python_version()}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _tensors(bundle: ModelBundle) -> dict[str, torch.Tensor]:
    out = {f"ae.{k}": v for k, v in bundle.ae.state_dict().items()}
    out |= {f"denoiser.{k}": v for k, v in bundle.denoiser.state_dict().items()}
    if bundle.window_denoiser is not None:
        out |= {f"window_denoiser.{k}": v for k, v in bundle.window_denoiser.state_dict().items()}
    if bundle.history is not None:
        out |= {f"history.{k}": v for k, v in bundle.history.state_dict().items()}
    out |= {"stats.latent_mean": bundle.latent_mean, "stats.latent_std": bundle.latent_std,
            "stats.behaviour_scale": bundle.behaviour_scale}
    return {k: v.detach().contiguous().clone() for k, v in out.items()}


def save_bundle(bundle: ModelBundle, out_dir: str | Path) -> Path:
    """Write weights and config; returns the directory. The config records the weights' sha256."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    weights = out / WEIGHTS_FILE
    save_file(_tensors(bundle), str(weights))
    meta = bundle.meta.model_copy(update={"weights_sha256": sha256_file(weights)})
    (out / CONFIG_FILE).write_text(json.dumps(meta.model_dump(mode="json"), indent=2))
    return out


def _sub(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def _read_meta(path: Path) -> BundleMeta:
    cfg_path = path / CONFIG_FILE
    if not cfg_path.is_file():
        raise BundleError(f"{path}: not a model bundle (no {CONFIG_FILE})")
    try:
        raw = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BundleError(f"{cfg_path}: corrupt config ({e})") from None
    version = raw.get("format_version") if isinstance(raw, dict) else None
    if version != FORMAT_VERSION:
        raise BundleError(f"{cfg_path}: bundle format version {version!r}, this ldns-sim reads "
                          f"version {FORMAT_VERSION}; retrain or use a matching ldns-sim")
    try:
        return BundleMeta.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise BundleError(f"{cfg_path}: invalid field {loc!r}: {first['msg']}") from None


def load_bundle(path: str | Path) -> ModelBundle:
    """Load and verify a bundle directory (checksum, format version, tensor names and shapes)."""
    path = Path(path)
    meta = _read_meta(path)
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        raise BundleError(f"{path}: missing {WEIGHTS_FILE}")
    actual = sha256_file(weights)
    if meta.weights_sha256 and actual != meta.weights_sha256:
        raise BundleError(f"{weights}: sha256 {actual[:12]}... does not match the config's "
                          f"{meta.weights_sha256[:12]}... (corrupt or modified file)")
    try:
        tensors = load_file(str(weights))
    except Exception as e:  # safetensors raises its own error types for damaged headers
        raise BundleError(f"{weights}: unreadable weights ({e})") from None
    try:
        ae = AutoEncoder(meta.ae)
        ae.load_state_dict(_sub(tensors, "ae"))
        denoiser = Denoiser(meta.denoiser)
        denoiser.load_state_dict(_sub(tensors, "denoiser"))
        window = None
        if meta.window_denoiser is not None:
            window = Denoiser(meta.window_denoiser)
            window.load_state_dict(_sub(tensors, "window_denoiser"))
        history = None
        if meta.history is not None:
            history = SpikeHistoryModel(meta.history)
            history.load_state_dict(_sub(tensors, "history"))
    except (RuntimeError, KeyError) as e:
        raise BundleError(f"{weights}: weights do not fit the config "
                          f"({str(e).splitlines()[0]})") from None
    for module in (ae, denoiser, window, history):
        if module is not None:
            module.eval()
    return ModelBundle(meta=meta, ae=ae, denoiser=denoiser, window_denoiser=window,
                       history=history, latent_mean=tensors["stats.latent_mean"],
                       latent_std=tensors["stats.latent_std"],
                       behaviour_scale=tensors["stats.behaviour_scale"])

