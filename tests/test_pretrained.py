"""Every shipped model loads from pretrained/, matches its checksum, has a card, and streams."""

import hashlib
import subprocess
import sys

import numpy as np
import pytest

from ldns_sim.bundle import WEIGHTS_FILE, load_bundle
from ldns_sim.pretrained import DEFAULT_MODEL, list_models, pretrained_dir, resolve_model
from ldns_sim.simulator import SamplerSettings, StreamingGenerator

SHIPPED = list_models()


def test_default_and_synthetic_models_are_shipped():
    assert DEFAULT_MODEL in SHIPPED
    assert "tiny-synthetic" in SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_checksum_card_and_stream(name):
    path = resolve_model(name)
    assert path.parent == pretrained_dir()
    digest = hashlib.sha256((path / WEIGHTS_FILE).read_bytes()).hexdigest()
    bundle = load_bundle(path)  # verifies the sha256 recorded in config.json
    assert bundle.sha256 == digest
    card = (path / "README.md").read_text()
    for section in ("Training data", "License", "Architecture", "Realism", "Streaming"):
        assert section in card, f"{name} card lacks {section}"
    assert (path / "SHA256SUMS").read_text().split()[0] == digest
    gen = StreamingGenerator(bundle, SamplerSettings(n_steps=5), seed=0)
    condition = np.zeros((1, len(gen.condition_names)), np.float32)
    chunks = [gen.next_chunk(condition) for _ in range(20)]
    counts = np.concatenate([c.counts for c in chunks])
    rates = np.concatenate([c.rates_hz for c in chunks])
    assert counts.shape == (20, bundle.n_neurons) and counts.min() >= 0
    assert np.isfinite(rates).all() and rates.mean() > 0.1


def test_models_and_info_commands():
    out = subprocess.run([sys.executable, "-m", "ldns_sim", "models"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and DEFAULT_MODEL in out.stdout.split()
    info = subprocess.run([sys.executable, "-m", "ldns_sim", "info", DEFAULT_MODEL],
                          capture_output=True, text=True, timeout=60)
    assert info.returncode == 0 and "neurons: 84" in info.stdout and "sha256" in info.stdout
    assert "guidance 1.5  context noise t 300" in info.stdout
