"""The models shipped in ``pretrained/``: find, list and describe them.

A name resolves to ``pretrained/NAME`` of this checkout (``$LDNS_SIM_PRETRAINED`` overrides
the folder); anything else is taken as a path to a bundle directory.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ldns_sim.bundle import CONFIG_FILE
from ldns_sim.errors import BundleError

DEFAULT_MODEL = "m1-velocity"


def pretrained_dir() -> Path:
    env = os.environ.get("LDNS_SIM_PRETRAINED")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "pretrained"


def list_models() -> list[str]:
    root = pretrained_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / CONFIG_FILE).is_file())


def resolve_model(name_or_dir: str | None) -> Path:
    """A shipped model's directory, or the given bundle directory; BundleError if neither."""
    name = name_or_dir or DEFAULT_MODEL
    candidate = pretrained_dir() / name
    if (candidate / CONFIG_FILE).is_file():
        return candidate
    path = Path(name)
    if (path / CONFIG_FILE).is_file():
        return path
    shipped = ", ".join(list_models()) or "none found"
    raise BundleError(f"model {name!r} is neither a shipped model ({shipped}) nor a bundle "
                      f"directory with {CONFIG_FILE}")


def card_summary(path: Path) -> str:
    """The first paragraph of the model card (README.md) plus key config facts."""
    meta = json.loads((path / CONFIG_FILE).read_text())
    card = path / "README.md"
    lines = []
    if card.is_file():
        text = card.read_text().strip().split("\n\n")
        lines += [p for p in text[:2]]
    lines.append(
        f"neurons: {len(meta['neuron_ids'])}  bin: {meta['bin_s'] * 1000:g} ms  "
        f"latents: {meta['ae']['n_latents']}  condition: {meta['condition']} "
        f"{tuple(meta.get('behaviour_names', ()))}  sha256: {meta['weights_sha256'][:16]}..."
    )
    denoiser = meta["denoiser"]
    lines.append(f"sampling defaults: guidance {denoiser.get('guidance', 1.0):g}  context noise "
                 f"t {denoiser.get('context_noise_t', 0)}")
    return "\n\n".join(lines)
