"""The decoder under test in a process of its own, as on a rig: spikes out, velocity back in.

``ldns-sim closed-loop --decoder-process zmq|lsl``::

    session --spikes (ZMQ topic | LSL SpikeCounts)--> python -m ldns_sim.decoders.run
    session <--decoded velocity (ZMQ behaviour | LSL DecodedVelocity)--'
    RemoteDecoder.step() -> the task's cursor

The fitted decoder is saved to a file and loaded by ``ldns_sim.decoders.run`` in a new
Python process, which subscribes to the session's published spikes exactly as a rig's own
decoder would (``docs/closed-loop.md``). Start-up is a handshake (``run --handshake``): the
process reports its output endpoint, then ``ready`` once it listens and we listen to it; we
then wait until its subscription reached our publisher (ZMQ) or its inlet is connected (LSL),
so the first bin is never lost.

Per bin (the session is paced on the clock): at the bin's end the session publishes the
counts, then ``step`` waits for the reply to that bin, recognised by its stamp (the process
copies each bin's end time into its reply). The loop latency of a bin is the clock at the
reply's arrival minus the bin's end: transport both ways, the other process's wake-up and
its decoding. A reply that has not come ``reply_timeout_s`` after the bin's end is missing:
the cursor holds still for that bin (zero velocity) and a late reply is discarded.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np

from ldns_sim.decoders.base import Decoder
from ldns_sim.errors import LdnsSimError
from ldns_sim.realtime.clock import Clock

log = logging.getLogger(__name__)

TRANSPORTS = ("zmq", "lsl")


class _ZmqReplies:
    """SUB on the decoder process's ``behaviour`` topic."""

    def __init__(self, endpoint: str) -> None:
        import zmq

        self._zmq = zmq
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.SUB)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.SUBSCRIBE, b"behaviour")
        self._socket.connect(endpoint)

    def get(self, timeout_s: float) -> tuple[float, np.ndarray] | None:
        """``(bin end stamp, (2,) velocity)`` of the next reply, or ``None`` on timeout."""
        if not self._socket.poll(max(int(timeout_s * 1000), 0)):
            return None
        _, header, payload = self._socket.recv_multipart()
        stamp = float(json.loads(header)["t_first"])
        return stamp, np.frombuffer(payload, dtype="<f4").astype(float).reshape(2)

    def close(self) -> None:
        self._socket.close(0)
        self._context.term()


class _LslReplies:
    """Inlet on the decoder process's ``DecodedVelocity`` outlet."""

    def __init__(self, source_id: str, timeout_s: float) -> None:
        import pylsl

        found = pylsl.resolve_byprop("source_id", source_id, 1, timeout_s)
        if not found:
            raise LdnsSimError(f"decoder process: no LSL outlet {source_id!r} within "
                               f"{timeout_s} s")
        self._inlet = pylsl.StreamInlet(found[0], max_buflen=10)
        self._inlet.open_stream(timeout=timeout_s)

    def get(self, timeout_s: float) -> tuple[float, np.ndarray] | None:
        sample, stamp = self._inlet.pull_sample(timeout=max(timeout_s, 0.0))
        return None if stamp is None else (float(stamp), np.asarray(sample, float))

    def close(self) -> None:
        self._inlet.close_stream()


class RemoteDecoder:
    """A fitted decoder run by ``python -m ldns_sim.decoders.run``; stepped like a ``Decoder``.

    Parameters
    ----------
    decoder
        The fitted decoder (saved to ``workdir`` for the process).
    transport
        ``"zmq"`` or ``"lsl"``.
    sink
        The session's opened ``ZmqSink`` (zmq) or ``LslSink`` (lsl) the spikes go out on.
    source_id
        The session's ``StreamMeta.source_id`` (LSL stream names derive from it).
    clock
        The session's clock (``LslClock``): arrival times and deadlines.
    bin_s
        Bin width (s).
    workdir
        A folder for the decoder file and the process's stderr (``decoder_process.log``).
    reply_timeout_s
        How long after a bin's end its reply may come; default half a bin.
    start_timeout_s
        Longest wait for each start-up step of the process.
    """

    def __init__(self, decoder: Decoder, transport: str, sink, source_id: str, clock: Clock,
                 bin_s: float, workdir: str | Path, reply_timeout_s: float | None = None,
                 start_timeout_s: float = 30.0) -> None:
        if transport not in TRANSPORTS:
            raise LdnsSimError(f"--decoder-process {transport!r}: expected one of "
                               f"{', '.join(TRANSPORTS)}")
        self.kind, self.n_neurons = decoder.kind, decoder.n_neurons
        self.transport, self.sink, self.source_id = transport, sink, source_id
        self.clock, self.bin_s = clock, float(bin_s)
        self.reply_timeout_s = 0.5 * self.bin_s if reply_timeout_s is None else reply_timeout_s
        self.start_timeout_s = float(start_timeout_s)
        self.workdir = Path(workdir)
        self.params = decoder.save(self.workdir / f"decoder-{decoder.kind}.npz")
        self.t0_s = float("nan")
        self.n_steps = 0
        self.n_missing = 0
        self.n_discarded = 0
        self.latencies_s: list[float] = []
        self.received: list[np.ndarray | None] = []
        self._proc: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None
        self._replies: _ZmqReplies | _LslReplies | None = None
        self._lines: queue.Queue[str] = queue.Queue()
        self._log_path = self.workdir / "decoder_process.log"

    # ------------------------------------------------------------------ start-up
    def start(self) -> RemoteDecoder:
        """Start the process and complete the handshake (module docstring)."""
        cmd = [sys.executable, "-m", "ldns_sim.decoders.run", "--params", str(self.params),
               "--handshake", "--idle-timeout", f"{max(self.start_timeout_s, 10.0):g}"]
        if self.transport == "zmq":
            cmd += ["--zmq-in", self.sink.endpoint, "--zmq-out", "tcp://127.0.0.1:*"]
        else:
            cmd += ["--lsl-in", f"{self.source_id}-spikes",
                    "--lsl-out", f"{self.source_id}-decoded"]
        from ldns_sim.lsl_config import ENV_VAR

        env = {**os.environ, ENV_VAR: os.environ.get(ENV_VAR) or "machine"}
        with open(self._log_path, "wb") as err:
            self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=env,
                                          text=True)
        self._reader = threading.Thread(target=self._read_lines, daemon=True,
                                        name="decoder-process-stdout")
        self._reader.start()
        try:
            listening = self._wait_for("listening")
            if self.transport == "zmq":
                self._replies = _ZmqReplies(listening["zmq_out"])
            else:
                self._replies = _LslReplies(listening["lsl_out"], self.start_timeout_s)
            self._wait_for("ready")
            self._wait_for_input()
        except BaseException:
            self.close()
            raise
        log.info("decoder process %d (%s over %s) is ready", self._proc.pid, self.kind,
                 self.transport)
        return self

    def _read_lines(self) -> None:
        for line in self._proc.stdout:
            self._lines.put(line)

    def _wait_for(self, event: str) -> dict:
        deadline = self.clock.now() + self.start_timeout_s
        while True:
            try:
                line = self._lines.get(timeout=0.1)
            except queue.Empty:
                self._check_alive()
                if self.clock.now() > deadline:
                    raise LdnsSimError(f"decoder process: no {event!r} within "
                                       f"{self.start_timeout_s:g} s ({self._last_log()})"
                                       ) from None
                continue
            try:
                status = json.loads(line)
            except json.JSONDecodeError:
                continue
            if status.get("event") == event:
                return status

    def _wait_for_input(self) -> None:
        if self.transport == "zmq":
            ok = self.sink.wait_for_subscriber("spikes", self.start_timeout_s)
        else:
            ok = self.sink.outlets["spikes"].wait_for_consumers(self.start_timeout_s)
        if not ok:
            raise LdnsSimError(f"decoder process: it did not subscribe to the spikes within "
                               f"{self.start_timeout_s:g} s ({self._last_log()})")

    def _last_log(self) -> str:
        lines = self._log_path.read_text(errors="replace").strip().splitlines()
        return f"its last log line: {lines[-1]}" if lines else "it logged nothing"

    def _check_alive(self) -> None:
        if self._proc is not None and self._proc.poll() is not None:
            raise LdnsSimError(f"decoder process exited with code {self._proc.returncode}; "
                               f"{self._last_log()}")

    # ------------------------------------------------------------------ the loop
    def begin(self, t0_s: float) -> None:
        """The session's start on the clock: bin ``k`` ends at ``t0_s + (k + 1) bin_s``."""
        self.t0_s = float(t0_s)

    def reset(self) -> None:
        """Nothing to do here: the process resets its decoder when it starts."""

    def step(self, counts: np.ndarray) -> np.ndarray:
        """``(2,)`` decoded velocity of the bin just published (``counts`` went by the wire)."""
        bin_end_s = self.t0_s + (self.n_steps + 1) * self.bin_s
        self.n_steps += 1
        deadline = bin_end_s + self.reply_timeout_s
        while True:
            reply = self._replies.get(deadline - self.clock.now())
            if reply is None:
                self._check_alive()
                self.n_missing += 1
                self.received.append(None)
                if self.n_missing in (1, 10, 100) or self.n_missing % 1000 == 0:
                    log.warning("decoder process: %d bin(s) without a reply within %.0f ms",
                                self.n_missing, self.reply_timeout_s * 1e3)
                return np.zeros(2)
            stamp_s, velocity = reply
            if stamp_s < bin_end_s - 0.5 * self.bin_s:
                self.n_discarded += 1  # a late reply to an earlier bin
                continue
            self.latencies_s.append(self.clock.now() - bin_end_s)
            self.received.append(velocity)
            return velocity

    def stats(self) -> dict:
        """Loop latency (bin end to the reply in hand) and reply counts, for the JSON output."""
        lat_ms = np.asarray(self.latencies_s) * 1e3
        q = (lambda p: float(np.percentile(lat_ms, p))) if len(lat_ms) else (lambda p: None)
        return {"transport": self.transport, "n_bins": self.n_steps,
                "n_replies": len(self.latencies_s), "n_missing": self.n_missing,
                "n_discarded_late": self.n_discarded, "reply_timeout_ms":
                self.reply_timeout_s * 1e3, "latency_p50_ms": q(50), "latency_p99_ms": q(99),
                "latency_max_ms": float(lat_ms.max()) if len(lat_ms) else None}

    def close(self) -> None:
        """Stop the process (SIGINT, then kill after 5 s) and close the reply channel."""
        if self._replies is not None:
            self._replies.close()
            self._replies = None
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)
            try:
                self._proc.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5.0)
        if self._reader is not None:
            self._reader.join(timeout=5.0)  # it ends at the process's end of output

    def __repr__(self) -> str:
        pid = self._proc.pid if self._proc is not None else None
        return (f"<RemoteDecoder | {self.kind} over {self.transport} | pid {pid} | "
                f"{self.n_steps} bins, {self.n_missing} missing>")


def start_remote_decoder(transport: str, decoder: Decoder, sinks, meta, clock: Clock,
                         workdir: str | Path) -> RemoteDecoder:
    """A started ``RemoteDecoder`` reading the spikes of the matching sink in ``sinks``."""
    from ldns_sim.sinks.lsl_sink import LslSink
    from ldns_sim.sinks.zmq_sink import ZmqSink

    kind = ZmqSink if transport == "zmq" else LslSink
    sink = next((s for s in sinks if isinstance(s, kind)), None)
    if sink is None:
        raise LdnsSimError(f"--decoder-process {transport}: the session publishes no "
                           f"{transport.upper()} stream")
    return RemoteDecoder(decoder, transport, sink, meta.source_id, clock, meta.bin_s,
                         workdir).start()
