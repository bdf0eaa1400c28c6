"""ZMQ publisher -> real subscribers on 127.0.0.1 random ports."""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest
import zmq

from ldns_sim.client import ZmqSpikeSubscriber
from ldns_sim.core import Telemetry
from ldns_sim.errors import SinkError
from ldns_sim.sinks.zmq_sink import ZmqHeader, ZmqSink, check_endpoint

pytestmark = pytest.mark.realtime


def _free_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def _wait_subscribed(sink: ZmqSink, sub: ZmqSpikeSubscriber, deadline_s: float = 5.0) -> None:
    """Slow joiner: publish meta until the subscriber has seen one (no fixed sleep)."""
    deadline = time.monotonic() + deadline_s
    while sub.meta is None:
        assert time.monotonic() < deadline, "subscriber never connected"
        sink._send_meta()
        try:
            sub.recv(timeout_s=0.05)
        except TimeoutError:
            pass


def test_round_trip_headers_seq_arrays(make_meta, make_chunks):
    meta = make_meta()
    chunks = make_chunks(meta, 5)
    endpoint = _free_endpoint()
    topics = ("spikes", "rates", "latents", "condition", "markers", "telemetry")
    with ZmqSink(endpoint).open(meta) as sink, ZmqSpikeSubscriber(endpoint, topics) as sub:
        _wait_subscribed(sink, sub)
        assert sub.meta["model_sha256"] == meta.model_sha256 and sub.meta["seed"] == 1234
        assert sub.meta["channels"]["spikes"] == list(meta.neuron_ids)
        for chunk in chunks:
            sink.write_chunk(chunk)
        sink.write_marker("perturbation on", 1000.123)
        sink.write_telemetry(Telemetry(seq=4, generation_latency_s=0.003, queue_depth=2,
                                       n_late_total=1, late=True, emitted_at_s=1000.2))
        got: dict[str, list] = {t: [] for t in topics}
        for _ in range(4 * len(chunks) + 2):
            header, data = sub.recv(timeout_s=2.0)
            ZmqHeader.model_validate({k: v for k, v in header.items() if k != "missed"})
            got[header["kind"]].append((header, data))
        for kind, field in (("spikes", "counts"), ("rates", "rates_hz"),
                            ("latents", "latents"), ("condition", "condition")):
            assert [h["seq"] for h, _ in got[kind]] == [0, 1, 2, 3, 4]
            for (header, data), chunk in zip(got[kind], chunks):
                np.testing.assert_array_equal(data, getattr(chunk, field))
                assert header["chunk_seq"] == chunk.seq
                assert header["first_bin"] == chunk.first_bin
                assert header["t_first"] == chunk.bin_end_s[0]
                assert header["t_first_monotonic"] == chunk.bin_end_monotonic_s[0]
                assert header["bin_s"] == meta.bin_s and header["missed"] == 0
                assert tuple(header["shape"]) == getattr(chunk, field).shape
        assert got["spikes"][0][1].dtype == np.int16 and got["spikes"][0][0]["dtype"] == "<i2"
        header, text = got["markers"][0]
        assert text == "perturbation on" and header["t_first"] == 1000.123
        offset_s = chunks[-1].bin_end_monotonic_s[0] - chunks[-1].bin_end_s[0]
        assert header["t_first_monotonic"] == pytest.approx(1000.123 + offset_s)
        header, row = got["telemetry"][0]
        assert row.shape == (1, 7) and row[0, 4] == 1.0 and header["chunk_seq"] == 4
        assert sub.n_missed["spikes"] == 0 and sink.n_dropped == 0


def test_second_publisher_on_same_port_is_refused(make_meta):
    endpoint = _free_endpoint()
    port = endpoint.rpartition(":")[2]
    with ZmqSink(endpoint).open(make_meta()):
        with pytest.raises(SinkError, match=f"port {port} in use"):
            ZmqSink(endpoint).open(make_meta())


@pytest.mark.parametrize("endpoint", ["tcp://*:5556", "tcp://0.0.0.0:5556",
                                      "tcp://192.168.1.10:5556"])
def test_non_loopback_refused_unless_asked(endpoint):
    with pytest.raises(SinkError, match="not loopback"):
        ZmqSink(endpoint)
    check_endpoint(endpoint, bind_any=True)  # allowed when asked for


@pytest.mark.parametrize("endpoint", ["127.0.0.1:5556", "tcp://127.0.0.1", "udp://x:1"])
def test_malformed_endpoint_named(endpoint):
    with pytest.raises(SinkError, match="expected tcp://HOST:PORT"):
        ZmqSink(endpoint)


def test_slow_consumer_never_blocks_and_drops_are_counted(make_meta, make_chunks):
    meta = make_meta(n_neurons=200)
    chunks = make_chunks(meta, 1, bins_per_chunk=50)
    endpoint = _free_endpoint()
    with ZmqSink(endpoint, sndhwm=5).open(meta) as sink:
        # A raw SUB that never reads, with tiny buffers: the publisher's queue fills.
        ctx = zmq.Context()
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.RCVHWM, 5)
        sub.setsockopt(zmq.RCVBUF, 4096)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(endpoint)
        deadline = time.monotonic() + 5.0
        while not sub.poll(10):
            assert time.monotonic() < deadline
            sink._send_meta()
        worst_s = 0.0
        for _ in range(500):
            t = time.perf_counter()
            sink.write_chunk(chunks[0])
            worst_s = max(worst_s, time.perf_counter() - t)
        assert sink.n_dropped > 0
        assert worst_s < 0.05, f"a write took {worst_s * 1e3:.1f} ms"
        # The gap is visible to the consumer too: drain and check seq jumps.
        seqs = []
        while sub.poll(50):
            topic, header, _ = sub.recv_multipart()
            if topic == b"spikes":
                seqs.append(ZmqHeader.model_validate_json(header).seq)
        assert seqs and (seqs[-1] - seqs[0] + 1) > len(seqs)
        sub.close(0)
        ctx.term()


def test_subscriber_counts_gaps(make_meta, make_chunks):
    meta = make_meta()
    chunks = make_chunks(meta, 3)
    endpoint = _free_endpoint()
    with ZmqSink(endpoint).open(meta) as sink, ZmqSpikeSubscriber(endpoint) as sub:
        _wait_subscribed(sink, sub)
        sink.write_chunk(chunks[0])
        sink._seq["spikes"] += 2  # two messages lost on the way
        sink.write_chunk(chunks[1])
        assert sub.recv(timeout_s=2.0)[0]["missed"] == 0
        header, counts = sub.recv(timeout_s=2.0)
        assert header["missed"] == 2 and sub.n_missed["spikes"] == 2
        np.testing.assert_array_equal(counts, chunks[1].counts)
        with pytest.raises(TimeoutError):
            sub.recv(timeout_s=0.05)


def test_any_free_port_is_reported(make_meta, make_chunks):
    meta = make_meta()
    with ZmqSink("tcp://127.0.0.1:*").open(meta) as sink:
        assert sink.endpoint.startswith("tcp://127.0.0.1:") and not sink.endpoint.endswith("*")
        with ZmqSpikeSubscriber(sink.endpoint) as sub:
            _wait_subscribed(sink, sub)
            sink.write_chunk(make_chunks(meta, 1)[0])
            assert sub.recv(timeout_s=2.0)[1].shape == (5, meta.n_neurons)
