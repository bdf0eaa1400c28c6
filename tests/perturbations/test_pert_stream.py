"""Perturbations in ``ldns-sim stream``: only their window changes, markers and NWB record them."""

import threading
import time
import uuid

import numpy as np
import pytest

from ldns_sim.bundle import save_bundle
from ldns_sim.cli import main
from ldns_sim.perturbations import parse_perturbation
from ldns_sim.realtime import ConstantSource, ManualClock
from ldns_sim.sinks.base import MemorySink
from ldns_sim.stream_session import SessionOptions, make_meta, run_session
from ldns_sim.testing import TuningCurveGenerator, make_random_bundle

BIN_S = 0.05
N = 12
PROFILE = """name = "test"
[lsl]
enabled = false
[zmq]
enabled = false
"""


def _run(tmp_path, profile_text, perturb=(), record=None):
    """A 2 s stream of the tuning model on a manual clock; its memory sink."""
    profile = tmp_path / f"p{uuid.uuid4().hex[:6]}.toml"
    profile.write_text(profile_text)
    gen = TuningCurveGenerator(N, BIN_S, 2, np.random.default_rng(5))
    meta = make_meta(gen, "tuning", "", 0, "constant")
    memory = MemorySink()
    opts = SessionOptions(profile=str(profile), record=record, duration_s=2.0, seed=0,
                          perturbations=tuple(parse_perturbation(s) for s in perturb))
    source = ConstantSource(np.array([0.5, -0.2], np.float32), ("vel_x", "vel_y"))
    run_session(gen, source, meta, opts, ManualClock(start_s=100.0),
                extra_sinks=(memory.open(meta),))
    return memory


def _window(p, n_bins):
    t = np.arange(n_bins) * BIN_S  # bin starts, session seconds
    return (t >= p.start_s) & (t < p.end_s)


def test_counts_change_inside_each_window_only_and_markers_bracket_it(tmp_path):
    from pynwb import NWBHDF5IO

    raw = _run(tmp_path, PROFILE)
    record = tmp_path / "s.nwb"
    profile = PROFILE + ('[[perturbation]]\nkind = "noise"\nvalue = 200\nstart_s = 1.05\n'
                         'end_s = 1.5\n')
    pert = _run(tmp_path, profile, ("dropout:0.5@0.55-1.05", "gain:0@1.8-"), str(record))
    counts_raw = np.concatenate([c.counts for c in raw.chunks])
    counts = np.concatenate([c.counts for c in pert.chunks])
    n_bins = len(counts)
    assert counts.shape == (40, N) and counts_raw.shape == counts.shape
    dropout, noise, gain = (_window(parse_perturbation(s), n_bins) for s in
                            ("dropout:0.5@0.55-1.05", "noise:200@1.05-1.5", "gain:0@1.8-"))
    untouched = ~(dropout | noise | gain)
    assert dropout.sum() == 10 and noise.sum() == 9 and gain.sum() == 4
    np.testing.assert_array_equal(counts[untouched], counts_raw[untouched])
    silent = np.all(counts[dropout] == 0, axis=0)
    assert silent.sum() == N // 2  # the same half of the units, every bin of the window
    np.testing.assert_array_equal(counts[dropout][:, ~silent], counts_raw[dropout][:, ~silent])
    extra = counts[noise].astype(int) - counts_raw[noise]
    assert extra.min() >= 0 and extra.mean() == pytest.approx(200 * BIN_S, rel=0.3)
    assert not counts[gain].any() and counts_raw[gain].any()
    # ground truth is the model's own: unperturbed
    np.testing.assert_array_equal(np.concatenate([c.rates_hz for c in pert.chunks]),
                                  np.concatenate([c.rates_hz for c in raw.chunks]))
    t0 = pert.markers[0][1]
    assert pert.markers[0][0] == "start"
    got = [(text, round(t - t0, 6)) for text, t in pert.markers[1:]]
    assert got[-1] == ("stop", 2.0) and sorted(got[:-1]) == [
        ("perturbation_start:dropout:0.5", 0.55), ("perturbation_start:gain:0", 1.8),
        ("perturbation_start:noise:200", 1.05), ("perturbation_stop:dropout:0.5", 1.05),
        ("perturbation_stop:gain:0", 2.0),  # still on at the end: closed there
        ("perturbation_stop:noise:200", 1.5)]
    with NWBHDF5IO(str(record), "r") as io:
        nwb = io.read()
        np.testing.assert_array_equal(
            nwb.processing["ecephys"]["binned_spike_counts"].data[:], counts)
        events = nwb.events["markers"].to_dataframe()
        rows = [(a, round(t, 6)) for a, t in zip(events.annotation, events.timestamp)
                if a.startswith("perturbation")]
        assert sorted(rows) == sorted(got[:-1])
        table = nwb.intervals["perturbations"].to_dataframe()
        assert list(table.spec) == ["dropout:0.5@0.55-1.05", "gain:0@1.8-",
                                    "noise:200@1.05-1.5"]
        np.testing.assert_allclose(table.start_time, [0.55, 1.8, 1.05])
        np.testing.assert_allclose(table.stop_time, [1.05, 2.0, 1.5])  # clipped to the end


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A random-weight tiny model (50 ms bins), as ``ldns-sim stream --model`` loads it."""
    return save_bundle(make_random_bundle(16, preset="tiny"),
                       tmp_path_factory.mktemp("model") / "tiny-random")


def _free_endpoint() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def _collect_zmq(endpoint, out, stop):
    from ldns_sim.client import ZmqSpikeSubscriber

    with ZmqSpikeSubscriber(endpoint, topics=("spikes", "markers")) as sub:
        while not stop.is_set():
            try:
                header, data = sub.recv(timeout_s=0.2)
            except TimeoutError:
                continue
            out.append((header, data))


def _collect_lsl_markers(name, out, stop):
    import pylsl

    found = pylsl.resolve_byprop("name", name, 1, 20.0)
    if not found:
        return
    inlet = pylsl.StreamInlet(found[0])
    inlet.open_stream(timeout=5.0)
    while not stop.is_set():
        samples, stamps = inlet.pull_chunk(timeout=0.2)
        out += [(s[0], t) for s, t in zip(samples, stamps)]


@pytest.mark.realtime
def test_stream_command_perturbs_the_wire_and_records_the_schedule(tmp_path, model_dir):
    """``ldns-sim stream --perturb``: real model, ZMQ and LSL on loopback, an NWB file."""
    from pynwb import NWBHDF5IO

    endpoint, prefix = _free_endpoint(), f"ldns-test-{uuid.uuid4().hex[:8]}"
    record = tmp_path / "session.nwb"
    zmq_msgs, lsl_markers, stop = [], [], threading.Event()
    threads = [threading.Thread(target=_collect_zmq, args=(endpoint, zmq_msgs, stop)),
               threading.Thread(target=_collect_lsl_markers,
                                args=(f"{prefix}-markers", lsl_markers, stop))]
    for t in threads:
        t.start()
    try:
        code = main(["stream", "--model", str(model_dir), "--duration", "4", "--seed", "3",
                     "--zmq", endpoint, "--lsl-prefix", prefix, "--record", str(record),
                     "--perturb", "dropout:1@1.5-2.5"])
        time.sleep(0.5)  # the last messages in flight
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert code == 0
    spikes = [(h, d) for h, d in zmq_msgs if h["kind"] == "spikes"]
    markers = {d: h["t_first"] for h, d in zmq_msgs if h["kind"] == "markers"}
    bin_s = spikes[0][0]["bin_s"]
    t0 = spikes[0][0]["t_first"] - (spikes[0][0]["first_bin"] + 1) * bin_s  # stream start
    start = np.array([h["first_bin"] for h, _ in spikes]) * bin_s  # session s, 1 bin/chunk
    counts = np.concatenate([d for _, d in spikes])
    inside = (start >= 1.5 - 1e-9) & (start < 2.5 - 1e-9)
    assert inside.sum() >= 19 and (~inside).sum() >= 20  # joined late at most by 0.5 s
    assert not counts[inside].any()
    before, after = start < 1.5 - 1e-9, start >= 2.5 - 1e-9
    assert counts[before].any() and counts[after].any()
    assert markers["perturbation_start:dropout:1"] == pytest.approx(t0 + 1.5, abs=1e-6)
    assert markers["perturbation_stop:dropout:1"] == pytest.approx(t0 + 2.5, abs=1e-6)
    lsl = dict(lsl_markers)
    assert lsl["perturbation_start:dropout:1"] == pytest.approx(t0 + 1.5, abs=1e-6)
    assert lsl["perturbation_stop:dropout:1"] == pytest.approx(t0 + 2.5, abs=1e-6)
    with NWBHDF5IO(str(record), "r") as io:
        nwb = io.read()
        events = nwb.events["markers"].to_dataframe()
        when = dict(zip(events.annotation, events.timestamp))
        assert when["perturbation_start:dropout:1"] == pytest.approx(1.5, abs=1e-6)
        assert when["perturbation_stop:dropout:1"] == pytest.approx(2.5, abs=1e-6)
        recorded = nwb.processing["ecephys"]["binned_spike_counts"].data[:]
        assert not recorded[30:50].any() and recorded[:30].any() and recorded[50:].any()
        table = nwb.intervals["perturbations"].to_dataframe()
        assert list(table.spec) == ["dropout:1@1.5-2.5"]
        assert (table.start_time.iloc[0], table.stop_time.iloc[0]) == pytest.approx((1.5, 2.5))


@pytest.mark.parametrize("args, named", [
    (["--perturb", "wobble:1@1-2"], "wobble"),
    (["--perturb", "dropout:0.3@5"], "dropout:0.3@5"),
    (["--perturb-file", "missing.toml"], "missing.toml"),
])
def test_bad_perturbation_is_one_line_exit_2(args, named, capsys):
    assert main(["stream", "--duration", "1", "--no-zmq", "--no-lsl", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and named in err[0], err


def test_bad_profile_perturbation_names_file_and_field(tmp_path, capsys):
    profile = tmp_path / "bad.toml"
    profile.write_text('name = "bad"\n[[perturbation]]\nkind = "gain"\nvalue = -1\n')
    assert main(["stream", "--profile", str(profile), "--duration", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.toml" in err[0] and "perturbation.0" in err[0], err


@pytest.mark.realtime
def test_replay_takes_the_same_perturbations(tmp_path):
    from pynwb import NWBHDF5IO

    from ldns_sim.data.npz_io import save_npz
    from ldns_sim.data.tuning import make_tuning_data

    data = save_npz(make_tuning_data(n_trials=10, n_neurons=12, n_bins=40, seed=0),
                    tmp_path / "rec.npz")
    record = tmp_path / "replay.nwb"
    assert main(["replay", str(data), "--duration", "2", "--no-lsl", "--no-zmq",
                 "--record", str(record), "--perturb", "dropout:1@0.5-1"]) == 0
    with NWBHDF5IO(str(record), "r") as io:
        nwb = io.read()
        counts = nwb.processing["ecephys"]["binned_spike_counts"].data[:]
        bin_s = 1.0 / nwb.processing["ecephys"]["binned_spike_counts"].rate
        table = nwb.intervals["perturbations"].to_dataframe()
    start = np.arange(len(counts)) * bin_s
    inside = (start >= 0.5 - 1e-9) & (start < 1 - 1e-9)
    assert inside.sum() >= 5 and not counts[inside].any() and counts[~inside].any()
    assert list(table.spec) == ["dropout:1@0.5-1"]
