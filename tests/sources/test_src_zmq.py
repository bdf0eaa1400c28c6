"""ZMQ condition source: real PUB -> SUB over loopback on a random port."""

import json
import math
import threading
import time

import numpy as np
import pytest
import zmq

from ldns_sim.errors import ConfigError
from ldns_sim.realtime.clock import ManualClock
from ldns_sim.sources.link_state import HoldPolicy
from ldns_sim.sources.zmq_source import ZmqConditionSource, dumps_header

pytestmark = pytest.mark.realtime


@pytest.fixture
def publisher():
    context = zmq.Context()
    socket = context.socket(zmq.PUB)
    socket.setsockopt(zmq.LINGER, 0)
    port = socket.bind_to_random_port("tcp://127.0.0.1")
    yield socket, f"tcp://127.0.0.1:{port}"
    socket.close()
    context.term()


def _send_until(send, predicate, timeout_s=3.0):
    """Call ``send()`` every 10 ms until ``predicate()`` is truthy (SUB joins late)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        send()
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError("condition not met before the deadline")


def _binary(socket, seq, values):
    values = np.asarray(values, dtype="<f4")
    socket.send_multipart([b"behaviour", dumps_header(seq, values.shape), values.tobytes()])


def test_both_formats_garbage_and_silence(publisher):
    socket, endpoint = publisher
    clock = ManualClock(start_s=7.0)
    source = ZmqConditionSource(endpoint, clock_now=clock.now, gain=10.0,
                                policy=HoldPolicy(hold_s=0.1, decay_tau_s=0.1,
                                                  lost_after_s=0.5))
    with source:
        # multipart with a (n_samples, n_channels) payload: the newest row counts
        reading = _send_until(lambda: _binary(socket, 0, [[9.0, 9.0], [1.0, -2.0]]),
                              lambda: (r := source.read(clock.now())).ok and r)
        np.testing.assert_allclose(reading.value, [10.0, -20.0])
        assert reading.sample_time_s == reading.arrival_time_s == clock.now()

        # single-part JSON
        _send_until(lambda: socket.send(json.dumps({"vel": [0.5, 0.25]}).encode()),
                    lambda: np.allclose(source.read(clock.now()).value, [5.0, 2.5]))

        # garbage of every kind: rejected, counted, one marker for the burst
        n_before = source.n_samples
        garbage = [
            [b"behaviour", b"not json", b"\x00" * 8],
            [b"behaviour", dumps_header(1, (3,)), np.zeros(2, "<f4").tobytes()],  # size
            [b"behaviour", json.dumps({"schema_version": 1, "seq": 1, "shape": [2],
                                       "dtype": "float64"}).encode(), b"\x00" * 8],
            [b"behaviour", json.dumps({"schema_version": 1, "seq": 1, "shape": [2],
                                       "dtype": "float32", "surprise": 1}).encode(),
             b"\x00" * 8],
            [b'{"vel": "fast"}'],
            [b'{"vel": [1.0]}'],  # too few values for channels (0, 1)
        ]
        for frames in garbage:
            socket.send_multipart(frames)
        _send_until(lambda: socket.send(b'{"vel": [3.0, 3.0]}'),
                    lambda: source.read(clock.now()).value[0] == 30.0)
        assert source.n_rejected == len(garbage)
        assert source.n_samples > n_before
        events = source.drain_events()
        assert events == [f"condition_rejected_bad:zmq:{endpoint}"]

        # NaN values: their own marker; a seq gap is counted as dropped
        _binary(socket, 5, [math.nan, 1.0])
        _binary(socket, 9, [1.0, 1.0])
        _send_until(lambda: None, lambda: source.read(clock.now()).value[0] == 10.0)
        assert source.drain_events() == [f"condition_rejected_nan:zmq:{endpoint}"]
        assert source.n_dropped == 3 + 4  # seq 0 -> 5 and 5 -> 9

        # silence on the engine clock: lost, then the next message restores
        clock.advance(0.6)
        assert not source.read(clock.now()).ok
        assert source.drain_events() == [f"condition_lost:zmq:{endpoint}"]
        _send_until(lambda: socket.send(b'{"vel": [0, 0]}'),
                    lambda: source.read(clock.now()).ok)
        assert source.drain_events() == [f"condition_restored:zmq:{endpoint}"]
        assert "7 dropped" in repr(source) and "ON" in repr(source)
    source.stop()
    assert "OFF" in repr(source)


def test_bad_endpoint_is_a_config_error():
    with pytest.raises(ConfigError, match="not a ZMQ endpoint"):
        ZmqConditionSource("127.0.0.1:5557", clock_now=ManualClock().now)


def test_the_engine_waits_for_the_first_sample_before_its_first_bin(publisher, caplog):
    from ldns_sim.realtime import Engine
    from ldns_sim.sinks.base import MemorySink
    from ldns_sim.testing import TuningCurveGenerator

    socket, endpoint = publisher

    def stream(wait_s):
        clock = ManualClock(start_s=5.0)
        source = ZmqConditionSource(endpoint, clock_now=clock.now)
        sink = MemorySink()
        generator = TuningCurveGenerator(4, 0.02, 1, np.random.default_rng(0))
        return Engine(generator, source, [sink], clock, max_chunks=3,
                      source_wait_s=wait_s), source, sink

    # the rig's behaviour arrives a while after the stream is asked to start: every bin
    # uses it, none a zero condition
    engine, source, sink = stream(10.0)
    sender = threading.Thread(target=_send_until, args=(
        lambda: _binary(socket, 0, [[1.0, 2.0]]), lambda: source.n_samples > 0))
    sender.start()
    engine.run()
    sender.join()
    assert len(sink.chunks) == 3
    for chunk in sink.chunks:
        np.testing.assert_array_equal(chunk.condition, [[1.0, 2.0]])

    # nothing arrives: one warning naming the source, then the stream runs on zeros
    engine, source, sink = stream(0.2)
    with caplog.at_level("WARNING", logger="ldns_sim.realtime.engine"):
        engine.run()
    assert len(sink.chunks) == 3 and not any(c.condition.any() for c in sink.chunks)
    assert f"{source.name!r}: no sample within 0.2 s" in caplog.text


def test_a_stop_or_ctrl_c_during_the_wait_ends_the_stream_and_stops_the_source(publisher):
    from ldns_sim.realtime import Engine
    from ldns_sim.sinks.base import MemorySink
    from ldns_sim.testing import TuningCurveGenerator

    _, endpoint = publisher  # nothing is ever published

    def engine_on(source):
        generator = TuningCurveGenerator(4, 0.02, 1, np.random.default_rng(0))
        sink = MemorySink()
        return Engine(generator, source, [sink], ManualClock(), max_chunks=3,
                      source_wait_s=600.0), sink

    source = ZmqConditionSource(endpoint, clock_now=time.monotonic)
    engine, sink = engine_on(source)
    runner = threading.Thread(target=engine.run)
    runner.start()
    time.sleep(0.2)
    engine.request_stop()  # what SIGINT/SIGTERM do (install_signal_handlers)
    runner.join(timeout=30)
    assert not runner.is_alive() and engine.state == "stopped"
    assert sink.chunks == [] and sink.closed and source._thread is None

    class InterruptedWait(ZmqConditionSource):  # Ctrl-C raised inside the wait itself
        def wait_for_data(self, timeout_s):
            raise KeyboardInterrupt

    source = InterruptedWait(endpoint, clock_now=time.monotonic)
    engine, sink = engine_on(source)
    with pytest.raises(KeyboardInterrupt):
        engine.run()
    assert engine.state == "failed" and sink.closed and source._thread is None


def test_the_engine_runs_the_input_thread_real_time_below_itself(publisher, caplog):
    """With the engine at SCHED_FIFO 5, the source's receive thread is asked for 4 and, where
    the OS allows it (root, CAP_SYS_NICE, rtprio limit), runs at it; refused: a warning."""
    import os

    from ldns_sim.realtime import Engine
    from ldns_sim.sinks.base import MemorySink
    from ldns_sim.testing import TuningCurveGenerator

    socket, endpoint = publisher
    source = ZmqConditionSource(endpoint, clock_now=ManualClock().now)
    seen = {}

    class PolicySink(MemorySink):
        def write_chunk(self, chunk):
            tid = source._thread.native_id
            seen[chunk.seq] = (os.sched_getscheduler(tid), os.sched_getparam(tid).sched_priority)
            super().write_chunk(chunk)

    generator = TuningCurveGenerator(4, 0.02, 1, np.random.default_rng(0))
    engine = Engine(generator, source, [PolicySink()], ManualClock(), max_chunks=2,
                    rt_priority=5)
    with caplog.at_level("INFO", logger="ldns_sim.sources.threaded"):
        engine.run()
    if "refused" in caplog.text:
        assert seen[0][0] != os.SCHED_FIFO
        assert "input thread stays at normal priority: SCHED_FIFO 4 refused" in caplog.text
    else:
        assert seen == {0: (os.SCHED_FIFO, 4), 1: (os.SCHED_FIFO, 4)}
    # without a real-time engine the input thread is left alone
    plain = ZmqConditionSource(endpoint, clock_now=ManualClock().now)
    Engine(TuningCurveGenerator(4, 0.02, 1, np.random.default_rng(0)), plain, [MemorySink()],
           ManualClock(), max_chunks=1).run()
    assert plain._worker_rt_priority is None
