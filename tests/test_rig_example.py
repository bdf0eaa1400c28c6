"""``scripts/rig_example.py`` (docs/rig-example.md) runs as documented against a real stream."""

import os
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import numpy as np
import pytest

from ldns_sim.bundle import save_bundle
from ldns_sim.cli import main
from ldns_sim.testing import make_random_bundle

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "rig_example.py"
ENV = {**os.environ, "LDNS_SIM_LSL_SCOPE": "machine"}


def _endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def _rig(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(SCRIPT), *args], env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_bundle(make_random_bundle(16, preset="tiny"),
                       tmp_path_factory.mktemp("model") / "tiny-random")


@pytest.fixture(scope="module")
def weights(model_dir, tmp_path_factory):
    """Step 1 of the example: record open loop, fit the rig's linear decoder on it."""
    folder = tmp_path_factory.mktemp("rig")
    calib = folder / "calib.nwb"
    assert main(["stream", "--model", str(model_dir), "--duration", "3", "--no-lsl",
                 "--no-zmq", "--record", str(calib)]) == 0
    out = subprocess.run([sys.executable, str(SCRIPT), "--fit", str(calib), "--weights",
                          str(folder / "rig.npz")], env=ENV, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "fitted 16 neurons" in out.stdout
    return folder / "rig.npz"


def _collect(endpoint, out, stop):
    from ldns_sim.client import ZmqSpikeSubscriber

    with ZmqSpikeSubscriber(endpoint, topics=("spikes", "condition")) as sub:
        while not stop.is_set():
            try:
                out.append(sub.recv(timeout_s=0.2))
            except TimeoutError:
                continue


@pytest.mark.realtime
@pytest.mark.parametrize("transport", ["zmq", "lsl"])
def test_rig_decoder_drives_the_stream(transport, model_dir, weights):
    """Step 2: the model's condition is what the rig decoded from the model's own spikes."""
    spikes_ep, velocity_ep = _endpoint(), _endpoint()
    prefix = f"ldns-test-{uuid.uuid4().hex[:8]}"
    rig = _rig("--weights", str(weights), "--spikes", spikes_ep, "--velocity-out", velocity_ep,
               "--timeout", "20", *(["--lsl", f"{prefix}-spikes"] if transport == "lsl" else []))
    msgs, stop = [], threading.Event()
    collector = threading.Thread(target=_collect, args=(spikes_ep, msgs, stop))
    collector.start()
    try:
        code = main(["stream", "--model", str(model_dir), "--duration", "5", "--seed", "2",
                     "--condition", f"zmq:{velocity_ep}", "--zmq", spikes_ep,
                     "--lsl-prefix", prefix, *(["--no-lsl"] if transport == "zmq" else [])])
        rig_out, rig_err = rig.communicate(timeout=60)
    finally:
        stop.set()
        collector.join(timeout=30)
        if rig.poll() is None:
            rig.kill()
    assert code == 0 and rig.returncode == 0, rig_err
    n_rig = int(rig_out.split()[1])  # "decoded N bins"
    assert n_rig >= 60
    p = np.load(weights)
    counts = {h["first_bin"]: d[0] for h, d in msgs if h["kind"] == "spikes"}
    used = {h["first_bin"]: d[0] for h, d in msgs if h["kind"] == "condition"}
    decoded = {b: (c @ p["W"] + p["b"]).astype(np.float32) for b, c in counts.items()}
    assert len(counts) >= 60
    matched = 0
    for b, value in used.items():
        if not value.any():
            continue  # before the rig's first message arrived
        earlier = [b2 for b2, v in decoded.items() if b2 < b and np.array_equal(v, value)]
        assert earlier, f"bin {b}: condition {value} is no velocity the rig decoded before it"
        assert b - max(earlier) <= 3  # the newest one, a bin or two old
        matched += 1
    assert matched >= 40


def test_the_page_shows_the_shipped_code():
    """docs/rig-example.md quotes the script; the quote must stay the code that is tested."""
    page = (SCRIPT.parents[1] / "docs" / "rig-example.md").read_text()
    quoted = page.split("```python\n", 1)[1].split("```", 1)[0]
    script = SCRIPT.read_text()
    body = quoted[quoted.index("def zmq_bins"):]
    assert body.strip() in script
