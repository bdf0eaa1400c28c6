"""A recorder process killed with SIGKILL mid-session loses at most the last second."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from pynwb import NWBHDF5IO

from ldns_sim.sinks.nwb_recorder import journal_path, recover_session

pytestmark = pytest.mark.realtime

# The child records chunks (one every 20 ms of wall time) and reports each one it handed
# to the recorder, with its time.monotonic(), until it is killed.
CHILD = """
import json, sys, time
sys.path.insert(0, {conftest_dir!r})
from conftest import make_chunks, make_meta
from ldns_sim.sinks.nwb_recorder import NwbRecorder
meta = make_meta(source_id="crash-test")
chunks = make_chunks(meta, 1000)
rec = NwbRecorder({path!r}, sync_interval_s=0.5).open(meta)
rec.write_marker("start", 1000.0)
for c in chunks:
    rec.write_chunk(c)
    print(json.dumps([c.seq, time.monotonic()]), flush=True)
    time.sleep(0.02)
"""


def test_sigkill_mid_session_loses_at_most_one_second(tmp_path, make_meta, make_chunks):
    path = tmp_path / "killed.nwb"
    code = CHILD.format(conftest_dir=str(Path(__file__).parent), path=str(path))
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    emitted = []
    deadline = time.monotonic() + 30.0
    try:
        while len(emitted) < 60:  # ~1.2 s of chunks after start-up
            assert time.monotonic() < deadline, "child never got going"
            line = child.stdout.readline()
            assert line, f"child exited early with {child.poll()}"
            emitted.append(json.loads(line))
        os.kill(child.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        emitted += [json.loads(line) for line in child.stdout]
    finally:
        child.kill()
        child.wait(10)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    assert journal_path(path).is_dir() and not path.exists()

    out = recover_session(journal_path(path))
    expected = make_chunks(make_meta(source_id="crash-test"), 1000)
    with NWBHDF5IO(str(out), "r") as io:
        nwb = io.read()
        counts = nwb.processing["ecephys"]["binned_spike_counts"].data[:]
        n_chunks = len(counts) // 5
        assert len(counts) == 5 * n_chunks and n_chunks > 0
        np.testing.assert_array_equal(
            counts, np.concatenate([c.counts for c in expected[:n_chunks]]))
        assert json.loads(nwb.notes)["recovered_after_crash"] is True
        assert list(nwb.events["markers"]["annotation"][:]) == ["start"]
    lost = [t for seq, t in emitted if seq >= n_chunks]
    assert all(killed_at - t <= 1.0 for t in lost), (
        f"lost {len(lost)} chunks, oldest handed over {killed_at - min(lost):.2f} s before kill")
