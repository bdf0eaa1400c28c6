"""Model bundles: round trip, and every kind of damage fails with one clear line."""

import json

import pytest
import torch

from ldns_sim.bundle import CONFIG_FILE, WEIGHTS_FILE, load_bundle, save_bundle
from ldns_sim.errors import BundleError
from ldns_sim.testing import make_random_bundle


@pytest.fixture
def bundle_dir(tmp_path):
    return save_bundle(make_random_bundle(6, preset="tiny"), tmp_path / "b")


def test_round_trip_same_outputs(bundle_dir):
    original = make_random_bundle(6, preset="tiny")
    loaded = load_bundle(bundle_dir)
    z = torch.randn(2, loaded.meta.ae.n_latents, 5)
    assert torch.equal(original.ae.decode(z), loaded.ae.decode(z))
    assert loaded.sha256 and len(loaded.sha256) == 64


def test_modified_weights_fail_checksum(bundle_dir):
    weights = bundle_dir / WEIGHTS_FILE
    raw = bytearray(weights.read_bytes())
    raw[-1] ^= 0xFF
    weights.write_bytes(bytes(raw))
    with pytest.raises(BundleError, match="sha256"):
        load_bundle(bundle_dir)


def test_truncated_weights_fail_without_pickle(bundle_dir):
    cfg = json.loads((bundle_dir / CONFIG_FILE).read_text())
    cfg["weights_sha256"] = ""  # skip the checksum to reach the parser
    (bundle_dir / CONFIG_FILE).write_text(json.dumps(cfg))
    weights = bundle_dir / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(BundleError, match="unreadable weights"):
        load_bundle(bundle_dir)


def test_other_format_version_is_refused(bundle_dir):
    cfg = json.loads((bundle_dir / CONFIG_FILE).read_text())
    cfg["format_version"] = 99
    (bundle_dir / CONFIG_FILE).write_text(json.dumps(cfg))
    with pytest.raises(BundleError, match="format version 99"):
        load_bundle(bundle_dir)


def test_corrupt_config_and_missing_files(bundle_dir, tmp_path):
    (bundle_dir / CONFIG_FILE).write_text("{not json")
    with pytest.raises(BundleError, match="corrupt config"):
        load_bundle(bundle_dir)
    with pytest.raises(BundleError, match="not a model bundle"):
        load_bundle(tmp_path / "nowhere")


def test_config_that_does_not_fit_weights(bundle_dir):
    cfg = json.loads((bundle_dir / CONFIG_FILE).read_text())
    cfg["ae"]["n_hidden"] = cfg["ae"]["n_hidden"] * 2
    (bundle_dir / CONFIG_FILE).write_text(json.dumps(cfg))
    with pytest.raises(BundleError, match="do not fit"):
        load_bundle(bundle_dir)


def test_pickle_payload_is_never_loaded(bundle_dir):
    """A torch pickle renamed to the weights file is rejected by safetensors, not executed."""
    cfg = json.loads((bundle_dir / CONFIG_FILE).read_text())
    cfg["weights_sha256"] = ""
    (bundle_dir / CONFIG_FILE).write_text(json.dumps(cfg))
    torch.save({"x": torch.zeros(1)}, bundle_dir / WEIGHTS_FILE)
    with pytest.raises(BundleError):
        load_bundle(bundle_dir)
