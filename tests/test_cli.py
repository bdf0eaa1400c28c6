"""The command line as a user runs it: real subprocesses, real files, loopback LSL and ZMQ."""

import os
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest

from ldns_sim.bundle import save_bundle
from ldns_sim.cli import build_parser
from ldns_sim.data.adapters import load_adapter
from ldns_sim.data.load import load_spike_data
from ldns_sim.data.npz_io import save_npz
from ldns_sim.data.tuning import make_tuning_data
from ldns_sim.testing import make_random_bundle

ENV = {**os.environ, "LDNS_SIM_LSL_SCOPE": "machine", "SDL_VIDEODRIVER": "dummy",
       "SDL_AUDIODRIVER": "dummy"}


def run_cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "ldns_sim", *args], capture_output=True,
                          text=True, env=ENV, timeout=timeout)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A random-weight model with the tuning data's neurons and 20 ms bins."""
    bundle = make_random_bundle(24, preset="tiny")
    return save_bundle(bundle, tmp_path_factory.mktemp("model") / "tiny-random")


@pytest.fixture(scope="module")
def data_npz(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "tuning.npz"
    return save_npz(make_tuning_data(n_trials=40, n_neurons=24, n_bins=40, seed=0), path)


def test_every_command_has_help():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert {"stream", "replay", "train", "sample", "evaluate", "bench", "models", "info",
            "recover", "sys-info"} <= set(commands)
    for name, sub in commands.items():
        text = sub.format_help()
        assert len(text) > 80 and "usage" in text, name


def test_bad_input_is_one_line_exit_2(tmp_path):
    result = run_cli("train", str(tmp_path / "missing.mat"), "--out", str(tmp_path / "m"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "missing.mat" in lines[0], result.stderr
    result = run_cli("stream", "--model", str(tmp_path / "nope"), "--duration", "1")
    assert result.returncode == 2 and "nope" in result.stderr.strip().splitlines()[-1]
    result = run_cli("train", str(tmp_path / "missing.mat"), "--out", str(tmp_path / "m"),
                     "--condition", "direction", "--direction-window-bins", "-1")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and "--direction-window-bins -1" in lines[-1], result.stderr


@pytest.mark.parametrize("option,value", [
    ("--guidance", "2"),  # the model was trained without behaviour dropout
    ("--context-noise", "1000"),  # past the schedule's last timestep (999)
])
def test_sampler_setting_the_model_cannot_take_is_one_line_exit_2(model_dir, tmp_path, option,
                                                                    value):
    for args in (("stream", "--model", str(model_dir), "--duration", "1"),
                 ("sample", str(model_dir), "--out", str(tmp_path / "s.npz"), "--trials", "2")):
        result = run_cli(*args, option, value)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and f"{option} {value}" in lines[-1], result.stderr
        assert "Traceback" not in result.stderr


def test_joystick_without_gamepad_names_alternatives(model_dir):
    result = run_cli("stream", "--model", str(model_dir), "--condition", "joystick",
                     "--duration", "1", "--no-zmq", "--no-lsl")
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "mouse" in last and "script:center-out" in last


def test_train_and_sample_from_the_command_line(tmp_path, data_npz):
    out = tmp_path / "bundle"
    result = run_cli("train", str(data_npz), "--out", str(out), "--preset", "tiny",
                     "--epochs-ae", "2", "--epochs-diffusion", "2", "--quiet", timeout=300)
    assert result.returncode == 0, result.stderr
    assert (out / "config.json").is_file() and (out / "weights.safetensors").is_file()
    for suffix in (".npz", ".nwb"):
        samples = tmp_path / f"samples{suffix}"
        result = run_cli("sample", str(out), "--out", str(samples), "--trials", "4",
                         "--bins", "16", "--condition-from", str(data_npz))
        assert result.returncode == 0, result.stderr
        back = load_spike_data(samples)
        assert back.n_trials == 4 and back.n_neurons == 24
        assert all(c.shape == (16, 24) for c in back.counts)
    def sampled_rates(name: str, *options: str) -> np.ndarray:
        """The model's rates for 4 trials sampled with ``options`` (same seed every time)."""
        samples = tmp_path / f"{name}.npz"
        result = run_cli("sample", str(out), "--out", str(samples), "--trials", "4",
                         "--bins", "16", "--condition-from", str(data_npz), *options)
        assert result.returncode == 0, result.stderr
        return np.stack(load_spike_data(samples).true_rates)

    # each sampler option reaches the sampler: same seed, other setting, other rates
    for option, a, b, fixed in (("--guidance", "1", "4", ()),
                                ("--context-noise", "0", "500", ("--guidance", "1")),
                                ("--step-spacing", "trailing", "leading", ("--guidance", "1"))):
        rates_a = sampled_rates(f"{option[2:]}_{a}", *fixed, option, a)
        rates_b = sampled_rates(f"{option[2:]}_{b}", *fixed, option, b)
        assert np.abs(rates_a - rates_b).max() > 1e-4, option


@pytest.mark.realtime
def test_stream_reaches_an_lsl_inlet_and_records_nwb(tmp_path, model_dir):
    import pylsl

    prefix = f"ldns-test-{uuid.uuid4().hex[:8]}"
    record = tmp_path / "session.nwb"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ldns_sim", "stream", "--model", str(model_dir),
         "--condition", "script:center-out", "--duration", "4", "--record", str(record),
         "--no-zmq", "--lsl-prefix", prefix],
        env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        infos = pylsl.resolve_byprop("name", f"{prefix}-spikes", 1, 10.0)
        assert infos, "the spikes outlet was not found within 10 s"
        inlet = pylsl.StreamInlet(infos[0])
        counts, stamps = [], []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and proc.poll() is None:
            chunk, ts = inlet.pull_chunk(timeout=0.2)
            counts += chunk
            stamps += ts
        del inlet
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert len(counts) > 20
    assert np.asarray(counts).shape[1] == 24
    dt = np.diff(stamps)
    assert np.allclose(dt, dt[0], atol=1e-6)  # stamped on the bin grid, no gaps
    adapter = load_adapter("ldns_session")
    adapter = adapter.model_copy(update={"alignment": adapter.alignment.model_copy(
        update={"segment_s": 1.0})})
    session = load_spike_data(record, adapter)  # 1 s segments of the recorded session
    assert session.n_neurons == 24
    assert session.n_bins_total >= len(counts) - 50  # whole seconds only


@pytest.mark.realtime
def test_replay_streams_the_recording_over_zmq(tmp_path, data_npz):
    from ldns_sim.client import ZmqSpikeSubscriber

    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        endpoint = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ldns_sim", "replay", str(data_npz), "--duration", "3",
         "--no-lsl", "--zmq", endpoint], env=ENV, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    sub = ZmqSpikeSubscriber(endpoint, topics=("spikes",))
    received = []
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(received) < 40:
            try:
                header, counts = sub.recv(timeout_s=1.0)
            except TimeoutError:
                continue
            received.append((header["seq"], counts))
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert len(received) >= 40
    seqs = [s for s, _ in received]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # no gap
    real = np.concatenate(load_spike_data(data_npz).counts)  # trials end to end
    start = received[0][0]  # replay emits the recording from its first bin, one per message
    assert np.array_equal(np.concatenate([c for _, c in received]),
                          real[start:start + len(received)])
