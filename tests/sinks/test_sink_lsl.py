"""LSL outlets -> real inlets in the same process, resolved by source_id."""

from __future__ import annotations

import time

import numpy as np
import pylsl
import pytest

from ldns_sim.client import LslSpikeReader
from ldns_sim.core import Telemetry
from ldns_sim.sinks.lsl_sink import LslSink
from ldns_sim.sinks.wire import TELEMETRY_CHANNELS, spread_spike_times

pytestmark = pytest.mark.realtime


def _inlets(source_id: str, kinds: tuple[str, ...]) -> dict[str, pylsl.StreamInlet]:
    """One inlet per kind, all resolved in one query (each query costs ~0.5 s)."""
    found = pylsl.resolve_bypred(f"starts-with(source_id,'{source_id}-')", len(kinds), 5.0)
    by_id = {info.source_id(): info for info in found}
    inlets = {}
    for kind in kinds:
        assert f"{source_id}-{kind}" in by_id, f"stream {source_id}-{kind} not found"
        inlets[kind] = pylsl.StreamInlet(by_id[f"{source_id}-{kind}"], max_buflen=60)
        inlets[kind].open_stream(timeout=5.0)
    return inlets


def _pull_n(inlet, n: int, deadline_s: float = 5.0) -> tuple[np.ndarray, np.ndarray]:
    samples, stamps = [], []
    deadline = time.monotonic() + deadline_s
    while len(stamps) < n and time.monotonic() < deadline:
        s, t = inlet.pull_chunk(timeout=0.1)
        samples += s
        stamps += t
    return np.asarray(samples), np.asarray(stamps)


def test_spikes_truth_markers_telemetry_round_trip(make_meta, make_chunks, unique_name):
    meta = make_meta(source_id=unique_name)
    chunks = make_chunks(meta, 4)
    with LslSink(name_prefix=unique_name, publish_events=True).open(meta) as sink:
        inlets = _inlets(unique_name, ("spikes", "rates", "latents", "condition", "events",
                                       "markers", "telemetry"))
        for chunk in chunks:
            sink.write_chunk(chunk)
        sink.write_marker("start", 1000.01)
        sink.write_telemetry(Telemetry(seq=3, generation_latency_s=0.004, queue_depth=1,
                                       n_late_total=0, late=False, emitted_at_s=1000.5))
        n_bins = sum(c.n_bins for c in chunks)
        counts, t = _pull_n(inlets["spikes"], n_bins)
        np.testing.assert_array_equal(counts, np.concatenate([c.counts for c in chunks]))
        np.testing.assert_allclose(t, np.concatenate([c.bin_end_s for c in chunks]))
        rates, _ = _pull_n(inlets["rates"], n_bins)
        np.testing.assert_array_equal(rates.astype(np.float32),
                                      np.concatenate([c.rates_hz for c in chunks]))
        latents, _ = _pull_n(inlets["latents"], n_bins)
        assert latents.shape == (n_bins, meta.n_latents)
        cond, _ = _pull_n(inlets["condition"], n_bins)
        assert cond.shape == (n_bins, 2)

        all_counts = np.concatenate([c.counts for c in chunks])
        starts = np.concatenate([c.bin_end_s for c in chunks]) - meta.bin_s
        units_ref, times_ref = spread_spike_times(all_counts, starts, meta.bin_s)
        events, t_ev = _pull_n(inlets["events"], len(units_ref))
        assert len(events) == all_counts.sum()
        assert np.all(np.diff(t_ev) >= 0)
        order = np.lexsort((units_ref, times_ref))
        np.testing.assert_allclose(t_ev, times_ref[order])
        np.testing.assert_array_equal(
            np.bincount(events[:, 0], minlength=meta.n_neurons), all_counts.sum(axis=0))

        marker, t_m = _pull_n(inlets["markers"], 1)
        assert marker[0][0] == "start" and t_m[0] == pytest.approx(1000.01)
        tele, t_t = _pull_n(inlets["telemetry"], 1)
        assert tele.shape == (1, len(TELEMETRY_CHANNELS)) and tele[0, 1] == pytest.approx(0.004)
        assert t_t[0] == pytest.approx(1000.5)

        info = inlets["spikes"].info(timeout=5.0)
        assert info.type() == "SpikeCounts" and info.nominal_srate() == pytest.approx(50.0)
        assert info.channel_format() == pylsl.cf_int16
        assert info.get_channel_labels() == list(meta.neuron_ids)
        assert info.get_channel_units() == ["count"] * meta.n_neurons
        desc = info.desc()
        assert float(desc.child_value("bin_width_s")) == meta.bin_s
        assert desc.child_value("model_sha256") == meta.model_sha256
        assert desc.child_value("model_name") == meta.model_name
        assert desc.child_value("seed") == "1234"
        assert desc.child_value("condition_source") == meta.condition_source
        assert desc.child_value("source_id") == meta.source_id
        assert desc.child_value("sampler") == meta.sampler
        assert inlets["rates"].info(timeout=5.0).type() == "SpikeRates"
        for inlet in inlets.values():
            inlet.close_stream()


def test_client_reader_and_no_truth(make_meta, make_chunks, unique_name):
    meta = make_meta(source_id=unique_name)
    chunks = make_chunks(meta, 3)
    with LslSink(name_prefix=unique_name, publish_truth=False).open(meta) as sink:
        assert set(sink.outlets) == {"spikes", "markers", "telemetry"}
        reader = LslSpikeReader(source_id=f"{unique_name}-spikes", timeout_s=5.0)
        reader.inlet.open_stream(timeout=5.0)
        for chunk in chunks:
            sink.write_chunk(chunk)
        got, stamps = [], []
        deadline = time.monotonic() + 5.0
        while sum(map(len, got)) < 15 and time.monotonic() < deadline:
            c, t = reader.pull(timeout_s=0.1)
            got.append(c)
            stamps.append(t)
        counts = np.concatenate(got)
        assert counts.dtype == np.int16
        np.testing.assert_array_equal(counts, np.concatenate([c.counts for c in chunks]))
        np.testing.assert_allclose(np.concatenate(stamps),
                                   np.concatenate([c.bin_end_s for c in chunks]))
        assert reader.bin_s == meta.bin_s and reader.labels == meta.neuron_ids
        assert reader.desc["model_sha256"] == meta.model_sha256
        reader.close()
