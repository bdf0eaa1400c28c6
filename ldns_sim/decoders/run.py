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
outlet of type ``DecodedVelocity`` stamped with each bin's end.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

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
        Name of an LSL outlet to create, or ``None``.
    """

    def __init__(self, decoder: Decoder, zmq_out: str | None = None,
                 lsl_out: str | None = None) -> None:
        self.decoder = decoder
        self.n_bins = 0
        self._socket = self._context = self._outlet = None
        if zmq_out:
            import zmq

            self._context = zmq.Context()
            self._socket = self._context.socket(zmq.PUB)
            self._socket.setsockopt(zmq.LINGER, 0)
            self._socket.bind(zmq_out)
        if lsl_out:
            from ldns_sim.lsl_config import configure_lsl

            configure_lsl()
            import pylsl

            info = pylsl.StreamInfo(lsl_out, "DecodedVelocity", 2, pylsl.IRREGULAR_RATE,
                                    pylsl.cf_float32, f"{lsl_out}-{decoder.kind}")
            self._outlet = pylsl.StreamOutlet(info)

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


def run(args: argparse.Namespace) -> int:
    decoder = load_decoder(args.params)
    proc = DecoderProcess(decoder, args.zmq_out, args.lsl_out)
    log.info("decoding with %r", decoder)
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
        while not _done(proc, args):
            try:
                header, counts = sub.recv(timeout_s=args.idle_timeout)
            except TimeoutError:
                log.info("no spikes for %.1f s; stopping", args.idle_timeout)
                return
            t_end = header["t_first"] + np.arange(len(counts)) * header["bin_s"]
            proc.process(np.asarray(counts), t_end, header["bin_s"])


def _run_lsl(proc: DecoderProcess, args) -> None:
    from ldns_sim.client import LslSpikeReader

    reader = LslSpikeReader(source_id=args.lsl_in, timeout_s=args.idle_timeout)
    idle = 0.0
    try:
        while not _done(proc, args) and idle < args.idle_timeout:
            counts, stamps = reader.pull(timeout_s=0.1)
            idle = 0.0 if len(counts) else idle + 0.1
            if len(counts):
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
    p.add_argument("--lsl-out", metavar="NAME", help="LSL outlet name for the output")
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
