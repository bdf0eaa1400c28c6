"""The decoder as a separate process: spikes over ZMQ in, decoded velocity over ZMQ out."""

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from ldns_sim.closed_loop.calibration import calibration_block
from ldns_sim.core import Chunk
from ldns_sim.decoders import load_decoder, make_decoder
from ldns_sim.sinks.zmq_sink import ZmqSink
from ldns_sim.sources.zmq_source import decode_message
from ldns_sim.testing import TuningCurveGenerator, make_stream_meta


@pytest.mark.realtime
def test_decoder_process_round_trip(tmp_path):
    import zmq

    gen = TuningCurveGenerator(20, 0.05, 1, np.random.default_rng(0))
    block = calibration_block(gen, 30.0, 1.0, np.random.default_rng(1))
    params = make_decoder("kalman").fit(block.counts, block.velocity).save(tmp_path / "k.npz")
    sink = ZmqSink("tcp://127.0.0.1:*").open(make_stream_meta(gen))
    out_endpoint = f"ipc://{tmp_path}/decoded.sock"
    proc = subprocess.Popen([sys.executable, "-m", "ldns_sim.decoders.run", "--params",
                             str(params), "--zmq-in", sink.endpoint, "--zmq-out", out_endpoint,
                             "--max-bins", "400", "--idle-timeout", "20"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"behaviour")
    sub.connect(out_endpoint)
    sent, received = [], []
    rng = np.random.default_rng(2)
    deadline = time.monotonic() + 20.0
    try:
        while len(received) < 30 and time.monotonic() < deadline:
            counts = rng.poisson(1.0, (1, 20)).astype(np.int16)
            t_end = 1000.0 + 0.05 * (len(sent) + 1)
            chunk = Chunk(seq=len(sent), first_bin=len(sent), counts=counts,
                          rates_hz=np.zeros((1, 20), np.float32),
                          latents=np.zeros((1, 2), np.float32),
                          condition=np.zeros((1, 2), np.float32))
            sink.write_chunk(chunk.stamped(np.array([t_end]), np.array([t_end + 5.0])))
            sent.append((t_end, counts[0]))
            while sub.poll(10):
                frames = sub.recv_multipart()
                value, seq = decode_message(frames, b"behaviour")  # what zmq: sources read
                received.append((json.loads(frames[1])["t_first"], seq, value))
    finally:
        sink.close()
        sub.close(0)
        ctx.term()
        proc.kill()
        proc.wait(timeout=10)
    assert len(received) >= 30, proc.stderr.read().decode()[-2000:]
    # the process decoded every bin in order from the first one it got (its seq 0); our
    # subscription may have missed its first few outputs
    seq0 = received[0][1]
    assert [r[1] for r in received] == list(range(seq0, seq0 + len(received)))
    first = [i for i, (t, _) in enumerate(sent) if abs(t - received[0][0]) < 1e-9][0] - seq0
    local = load_decoder(params)
    local.reset()
    expected = [local.step(counts) for _, counts in sent[first:first + seq0 + len(received)]]
    for (t_end, _), (t_out, _, value), want in zip(sent[first + seq0:], received,
                                                  expected[seq0:]):
        assert t_out == pytest.approx(t_end)
        np.testing.assert_allclose(value, want, rtol=1e-5, atol=1e-6)
