"""``closed-loop --decoder-process``: the decoder runs in another process, over real ZMQ or LSL."""

import json

import numpy as np
import pytest

from ldns_sim.cli import main
from ldns_sim.closed_loop.calibration import default_task
from ldns_sim.decoders import load_decoder


@pytest.mark.realtime
@pytest.mark.parametrize("transport", ["zmq", "lsl"])
def test_the_task_moves_with_the_velocity_the_other_process_sent(transport, tmp_path, capsys):
    from pynwb import NWBHDF5IO

    record, saved = tmp_path / "s.nwb", tmp_path / "kalman.npz"
    code = main(["closed-loop", "--decoder", "kalman", "--model", "tuning", "--duration", "4",
                 "--calibration", "20", "--seed", "1", "--decoder-process", transport,
                 "--record", str(record), "--save-decoder", str(saved)])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    stats = out["decoder_process"]
    assert stats["transport"] == transport and stats["n_bins"] == 80
    assert stats["n_replies"] + stats["n_missing"] == 80 and stats["n_replies"] >= 72
    assert 0 < stats["latency_p50_ms"] <= stats["latency_p99_ms"] <= 25.0
    with NWBHDF5IO(str(record), "r") as io:
        nwb = io.read()
        counts = nwb.processing["ecephys"]["binned_spike_counts"].data[:]
        used = nwb.processing["closed_loop"]["decoded_velocity"].data[:]  # what moved the cursor
        cursor = nwb.processing["closed_loop"]["cursor_position"].data[:]
    assert counts.shape == (80, 84) and used.shape == (80, 2)
    local = load_decoder(saved)
    local.reset()
    expected = np.array([local.step(row) for row in counts])  # float64, in this process
    replied = np.any(used != 0, axis=1)  # a missing reply holds the cursor: exactly zero
    assert replied.sum() == stats["n_replies"]
    # the same filter on the same published counts, but it came as float32 over the wire
    np.testing.assert_allclose(used[replied], expected[replied], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(used, used.astype(np.float32))
    assert not np.array_equal(used[replied], expected[replied])
    steps = np.diff(np.vstack([np.zeros((1, 2)), cursor]), axis=0)
    clamp = default_task(1.0).workspace_radius  # the tuning model's velocity_scale is 1
    inside = np.linalg.norm(cursor, axis=1) < clamp - 1e-9
    assert inside.sum() > 40
    np.testing.assert_allclose(steps[inside], used[inside] * 0.05, atol=1e-9)


def test_ideal_has_no_process_to_run(capsys):
    assert main(["closed-loop", "--decoder", "ideal", "--model", "tuning",
                 "--decoder-process", "zmq"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--decoder-process" in err[0]
