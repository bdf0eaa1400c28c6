"""NWB recorder: record -> file on disk -> read back with pynwb and pynapple, inspect."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pynwb import NWBHDF5IO

from ldns_sim.core import Telemetry
from ldns_sim.errors import SinkError
from ldns_sim.sinks.nwb_journal import JournalWriter, read_journal
from ldns_sim.sinks.nwb_recorder import NwbRecorder, journal_path, recover_session
from ldns_sim.sinks.nwb_writer import SessionInfo
from ldns_sim.sinks.wire import spread_spike_times

SESSION = SessionInfo(experimenter=("Doe, Jane",), institution="Test Institute")


def _record(path, meta, chunks, markers=(("start", 999.99), ("stop", 1000.5))):
    rec = NwbRecorder(path, session=SESSION).open(meta)
    rec.write_marker(*markers[0])
    for c in chunks:
        rec.write_chunk(c)
        rec.write_telemetry(Telemetry(seq=c.seq, generation_latency_s=0.002, queue_depth=0,
                                      n_late_total=0, late=False,
                                      emitted_at_s=float(c.bin_end_s[-1])))
    for m in markers[1:]:
        rec.write_marker(*m)
    rec.close()
    rec.close()  # idempotent
    return rec


def test_record_and_read_back(tmp_path, meta, make_chunks):
    chunks = make_chunks(meta, 6)
    path = tmp_path / "session.nwb"
    _record(path, meta, chunks)
    assert path.exists() and not journal_path(path).exists()
    counts = np.concatenate([c.counts for c in chunks])
    with NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        notes = json.loads(nwb.notes)
        assert notes["model_sha256"] == meta.model_sha256 and notes["seed"] == meta.seed
        assert notes["sampler"] == meta.sampler
        # Session time 0 is the "start" marker, 10 ms before the first bin's start.
        assert notes["lsl_clock_at_session_start_s"] == pytest.approx(999.99)
        ts = nwb.processing["ecephys"]["binned_spike_counts"]
        np.testing.assert_array_equal(ts.data[:], counts)
        assert ts.rate == pytest.approx(1 / meta.bin_s)
        assert ts.starting_time == pytest.approx(0.01)
        np.testing.assert_array_equal(nwb.processing["ldns_sim"]["rates"].data[:],
                                      np.concatenate([c.rates_hz for c in chunks]))
        np.testing.assert_allclose(nwb.processing["ldns_sim"]["bin_end_lsl_clock"].data[:],
                                   np.concatenate([c.bin_end_s for c in chunks]))
        np.testing.assert_array_equal(nwb.processing["behavior"]["condition"].data[:],
                                      np.concatenate([c.condition for c in chunks]))
        assert nwb.processing["ldns_sim"]["latents"].data.shape == (30, meta.n_latents)
        units = nwb.units
        assert len(units) == meta.n_neurons and units.resolution == meta.bin_s
        starts = 0.01 + np.arange(len(counts)) * meta.bin_s
        u_ref, t_ref = spread_spike_times(counts, starts, meta.bin_s)
        for i in range(meta.n_neurons):
            times = units["spike_times"][i]
            np.testing.assert_allclose(times, t_ref[u_ref == i])
            assert np.all(np.diff(times) > 0)
            # Re-binning on the bin edges gives back the counts exactly.
            edges = 0.01 + np.arange(len(counts) + 1) * meta.bin_s
            np.testing.assert_array_equal(np.histogram(times, edges)[0], counts[:, i])
            np.testing.assert_allclose(units["obs_intervals"][i], [[0.01, 0.01 + 30 * 0.02]])
        markers = nwb.events["markers"]
        assert list(markers["annotation"][:]) == ["start", "stop"]
        np.testing.assert_allclose(markers["timestamp"][:], [0.0, 0.51])
        tele = nwb.processing["ldns_sim"]["telemetry"]
        assert list(tele["seq"][:]) == list(range(6))
        assert nwb.subject.sex == "U" and "Simulated" in nwb.subject.description
        assert nwb.session_start_time.tzinfo is not None


def test_nwbinspector_dandi_finds_nothing_critical(tmp_path, meta, make_chunks):
    nwbinspector = pytest.importorskip("nwbinspector")
    path = tmp_path / "session.nwb"
    _record(path, meta, make_chunks(meta, 6))
    messages = list(nwbinspector.inspect_nwbfile(
        nwbfile_path=str(path), config=nwbinspector.load_config("dandi")))
    bad = [f"{m.importance.name} {m.check_function_name}: {m.message}" for m in messages
           if m.importance.name in ("CRITICAL", "PYNWB_VALIDATION", "ERROR")]
    assert not bad, bad


def test_pynapple_reads_units_and_counts(tmp_path, meta, make_chunks):
    nap = pytest.importorskip("pynapple")
    chunks = make_chunks(meta, 6)
    path = tmp_path / "session.nwb"
    _record(path, meta, chunks)
    data = nap.load_file(str(path))
    units = data["units"]
    counts = np.concatenate([c.counts for c in chunks])
    assert [len(units[i]) for i in range(meta.n_neurons)] == counts.sum(axis=0).tolist()
    binned = data["binned_spike_counts"]
    np.testing.assert_array_equal(np.asarray(binned.values), counts)
    np.testing.assert_allclose(binned.times()[:2], [0.01, 0.03])
    np.testing.assert_array_equal(np.asarray(data["condition"].values),
                                  np.concatenate([c.condition for c in chunks]))


def test_gap_from_dropped_chunk_uses_timestamps_and_obs_intervals(tmp_path, meta, make_chunks):
    chunks = make_chunks(meta, 4)
    kept = [chunks[0], chunks[1], chunks[3]]  # chunk 2 never reached the recorder
    path = tmp_path / "gap.nwb"
    _record(path, meta, kept, markers=(("start", 1000.0),))
    with NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        ts = nwb.processing["ecephys"]["binned_spike_counts"]
        assert ts.rate is None
        np.testing.assert_allclose(ts.timestamps[:5], np.arange(5) * 0.02)
        assert ts.timestamps[10] == pytest.approx(15 * 0.02)
        np.testing.assert_allclose(nwb.units["obs_intervals"][0], [[0.0, 0.2], [0.3, 0.4]])


def test_refuses_existing_file_and_leftover_journal(tmp_path, meta):
    path = tmp_path / "s.nwb"
    path.write_bytes(b"")
    with pytest.raises(SinkError, match="s.nwb exists"):
        NwbRecorder(path).open(meta)
    path.unlink()
    journal_path(path).mkdir()
    with pytest.raises(SinkError, match="recover"):
        NwbRecorder(path).open(meta)
    with pytest.raises(SinkError, match="directory .* does not exist"):
        NwbRecorder(tmp_path / "nope" / "s.nwb").open(meta)


def test_torn_journal_is_recovered_as_a_clean_prefix(tmp_path, meta, make_chunks):
    chunks = make_chunks(meta, 5)
    path = tmp_path / "torn.nwb"
    partial = journal_path(path)
    # A journal written and closed but never converted: what a killed process leaves.
    journal = JournalWriter(partial, meta, {"opened_at_utc": "2026-01-01T00:00:00+00:00",
                                            "opened_at_monotonic_s": 0.0})
    for c in chunks:
        journal.append_chunk(c)
    journal.close()
    with open(partial / "counts.bin", "ab") as f:
        f.write(b"\x01\x00" * 7)  # data of a chunk whose index line never made it
    with open(partial / "index.jsonl", "a") as f:
        f.write('{"kind": "chunk", "seq": 5, "fir')  # torn last line
    contents = read_journal(partial)
    assert contents.truncated and contents.n_bins == 25
    del contents
    out = recover_session(partial)
    assert out == path and not partial.exists()
    with NWBHDF5IO(str(out), "r") as io:
        nwb = io.read()
        np.testing.assert_array_equal(nwb.processing["ecephys"]["binned_spike_counts"].data[:],
                                      np.concatenate([c.counts for c in chunks]))
        assert json.loads(nwb.notes)["recovered_after_crash"] is True
