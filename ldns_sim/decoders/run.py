"""A decoder as a process of its own: spikes in over ZMQ or LSL, decoded velocity out.

This is how a rig runs a decoder against the simulator (or a real array)::

    python -m ldns_sim.decoders.run --params kalman.npz --zmq-in tcp://127.0.0.1:5556 \\
        --zmq-out tcp://127.0.0.1:5557 [--lsl-out ldns-sim-decoded]

Input: the ``spikes`` topic of an ldns-sim ZMQ publisher (``--zmq-in``), or an LSL
``SpikeCounts`` stream found by ``source_id`` (``--lsl-in``). Every bin is decoded in order;
gaps reported by the ZMQ sequence numbers are logged.

Output, one message per bin: on ZMQ (``--zmq-out``, bound) a multipart
``[b"behaviour", header JSON, payload]`` with header ``{"schema_version": 1, "seq", "shape":
[1, 2], "dtype": "float32", "kind": "decoded_velocity", "t_first": bin end (LSL clock),
"bin_s"}`` and the velocity as little-endian float32: exactly what ``--condition
zmq:ENDPOINT`` (``ZmqConditionSource``) reads; on LSL (``--lsl-out NAME``) a 2-channel float32
outlet of type ``DecodedVelocity`` (``source_id`` = NAME) stamped with each bin's end.
A ZMQ output endpoint must be loopback unless ``--bind-any``; port ``*`` picks a free one.

``--handshake`` (for a supervising process, e.g. ``ldns-sim closed-loop --decoder-process``):
JSON lines on stdout, ``{"event": "listening", "zmq_out": ENDPOINT_BOUND}`` once the output
is open, then ``{"event": "ready"}`` once the input is connected and the output has a
consumer, so no bin is decoded before someone listens. Logging goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

import numpy as np

from ldns_sim.decoders import load_decoder
from ldns_sim.decoders.base import Decoder
from ldns_sim.errors import LdnsSimError

log = logging.getLogger("ldns_sim.decoders.run")

TOPIC = b"behaviour"


def velocity_message(seq: int, velocity: np.ndarray, t_end: float, bin_s: float) -> list[bytes]:
    """The ZMQ multipart message of one decoded bin (see the module docstring)."""
    header = {"schema_version": 1, "seq": int(seq), "shape": [1, 2], "dtype": "float32",
              "kind": "decoded_velocity", "t_first": float(t_end), "bin_s": float(bin_s)}
    payload = np.asarray(velocity, dtype="<f4").reshape(1, 2).tobytes()
    return [TOPIC, json.dumps(header).encode(), payload]


class DecoderProcess:
    """Decode bins and publish each result; the I/O around ``Decoder.step``.

    Parameters
    ----------
    decoder
        A fitted decoder.
    zmq_out
        Endpoint to bind a PUB socket on, or ``None``.
    lsl_out
        Name of an LSL outlet to create (also its ``source_id``), or ``None``.
    bind_any
        Allow a ZMQ output address other than loopback.

    Attributes
    ----------
    zmq_out
        The endpoint actually bound (port ``*`` resolved), or ``None``.
    """

    def __init__(self, decoder: Decoder, zmq_out: str | None = None,
                 lsl_out: str | None = None, bind_any: bool = False) -> None:
        self.decoder = decoder
        self.decoder.reset()
        self.n_bins = 0
        self.zmq_out = None
        self._socket = self._context = self._outlet = None
        if zmq_out:
            import zmq

            from ldns_sim.sinks.zmq_sink import check_endpoint

            check_endpoint(zmq_out, bind_any)
            self._context = zmq.Context()
            # XPUB: a PUB that also sees subscriptions, so --handshake knows a consumer is there
            self._socket = self._context.socket(zmq.XPUB)
            self._socket.setsockopt(zmq.LINGER, 0)
            self._socket.bind(zmq_out)
            self.zmq_out = self._socket.getsockopt_string(zmq.LAST_ENDPOINT)
        if lsl_out:
            from ldns_sim.lsl_config import configure_lsl

            configure_lsl()
            import pylsl

            info = pylsl.StreamInfo(lsl_out, "DecodedVelocity", 2, pylsl.IRREGULAR_RATE,
                                    pylsl.cf_float32, lsl_out)
            self._outlet = pylsl.StreamOutlet(info)

    def wait_for_consumer(self, timeout_s: float) -> bool:
        """Wait until every output has a consumer (ZMQ: a subscription; LSL: an inlet)."""
        deadline = time.monotonic() + timeout_s
        if self._socket is not None:
            import zmq

            while not self._socket.poll(100, zmq.POLLIN):
                if time.monotonic() > deadline:
                    return False
            self._socket.recv()  # the subscription frame
        if self._outlet is not None:
            return bool(self._outlet.wait_for_consumers(max(deadline - time.monotonic(), 0)))
        return True

    def process(self, counts: np.ndarray, t_end: np.ndarray, bin_s: float) -> np.ndarray:
        """Decode ``(n_bins, n_neurons)`` counts ending at ``t_end`` (n_bins,); publish each."""
        out = np.zeros((len(counts), 2))
        for i, row in enumerate(counts):
            out[i] = self.decoder.step(row)
            if self._socket is not None:
                self._socket.send_multipart(velocity_message(self.n_bins, out[i], t_end[i],
                                                             bin_s))
            if self._outlet is not None:
                self._outlet.push_sample(out[i].astype(np.float32).tolist(), float(t_end[i]))
            self.n_bins += 1
        return out

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._context.term()
            self._socket = None
        self._outlet = None


def _status(event: str, **fields) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def run(args: argparse.Namespace) -> int:
    decoder = load_decoder(args.params)
    proc = DecoderProcess(decoder, args.zmq_out, args.lsl_out, args.bind_any)
    log.info("decoding with %r", decoder)
    if args.handshake:
        _status("listening", zmq_out=proc.zmq_out, lsl_out=args.lsl_out)
    try:
        if args.zmq_in:
            _run_zmq(proc, args)
        else:
            _run_lsl(proc, args)
    except KeyboardInterrupt:
        pass
    finally:
        proc.close()
    log.info("decoded %d bins", proc.n_bins)
    return 0


def _done(proc: DecoderProcess, args) -> bool:
    return args.max_bins is not None and proc.n_bins >= args.max_bins


def _run_zmq(proc: DecoderProcess, args) -> None:
    from ldns_sim.client import ZmqSpikeSubscriber

    with ZmqSpikeSubscriber(args.zmq_in, topics=("spikes",)) as sub:
        _ready(proc, args)
        while not _done(proc, args):
            try:
                header, counts = sub.recv(timeout_s=args.idle_timeout)
            except TimeoutError:
                log.info("no spikes for %.1f s; stopping", args.idle_timeout)
                return
            t_end = header["t_first"] + np.arange(len(counts)) * header["bin_s"]
            proc.process(np.asarray(counts), t_end, header["bin_s"])


def _ready(proc: DecoderProcess, args) -> None:
    if not args.handshake:
        return
    if not proc.wait_for_consumer(args.idle_timeout):
        raise LdnsSimError(f"no consumer of the decoded velocity within {args.idle_timeout} s")
    _status("ready")


def _run_lsl(proc: DecoderProcess, args) -> None:
    from ldns_sim.client import LslSpikeReader

    try:
        reader = LslSpikeReader(source_id=args.lsl_in, timeout_s=args.idle_timeout)
    except TimeoutError as error:
        raise LdnsSimError(f"--lsl-in {args.lsl_in}: {error}") from None
    reader.inlet.open_stream(timeout=args.idle_timeout)  # from here on no bin is missed
    _ready(proc, args)
    idle_since = time.monotonic()
    try:
        while not _done(proc, args) and time.monotonic() - idle_since < args.idle_timeout:
            counts, stamps = reader.pull(timeout_s=0.1)
            if len(counts):
                idle_since = time.monotonic()
                proc.process(counts, stamps, reader.bin_s)
    finally:
        reader.close()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ldns_sim.decoders.run",
                                description="Run a fitted decoder on a live spike stream and "
                                            "publish the decoded velocity.")
    p.add_argument("--params", required=True, help="decoder file (.npz from Decoder.save or "
                                                   "ldns-sim closed-loop --save-decoder)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--zmq-in", metavar="ENDPOINT", help="ldns-sim ZMQ publisher")
    src.add_argument("--lsl-in", metavar="SOURCE_ID",
                     help="LSL SpikeCounts stream source_id (StreamMeta.source_id + '-spikes')")
    p.add_argument("--zmq-out", metavar="ENDPOINT", help="bind a PUB socket for the output")
    p.add_argument("--lsl-out", metavar="NAME",
                   help="LSL outlet name (and source_id) for the output")
    p.add_argument("--bind-any", action="store_true",
                   help="allow a --zmq-out address that is not loopback")
    p.add_argument("--handshake", action="store_true",
                   help="JSON status lines on stdout for a supervising process (see above)")
    p.add_argument("--max-bins", type=int, help="stop after this many bins")
    p.add_argument("--idle-timeout", type=float, default=10.0,
                   help="stop after this many seconds without spikes (default 10)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return run(args)
    except LdnsSimError as error:
        sys.stderr.write(f"ldns_sim.decoders.run: error: {error}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
