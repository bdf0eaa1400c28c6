"""ZMQ publisher: multipart ``[topic, header JSON, payload]`` per kind, never blocking.

Topics: ``spikes`` (int16), ``rates``, ``latents``, ``condition`` (float32), ``markers``
(UTF-8 text), ``telemetry`` (float64, channels ``wire.TELEMETRY_CHANNELS``) and ``meta``
(the ``StreamMeta`` as JSON, sent at open, every ``meta_interval_s`` and whenever a
consumer subscribes, so late joiners learn the model, seed and channel labels).
Binned payloads are ``(n_bins, n_channels)`` C-order little-endian arrays.

Drops. The socket is an XPUB with ``XPUB_NODROP``: when a subscriber's queue holds
``sndhwm`` messages, the send fails at once (``NOBLOCK``) instead of blocking the engine
or dropping silently, and the message is counted in ``n_dropped`` (reported in every
later header). Each topic's ``seq`` still advances, so every consumer sees the gap.
One stalled subscriber therefore costs every subscriber that message; a rig normally has
one consumer, and a silent per-subscriber drop would leave the publisher blind.

Latency budget: one header serialisation plus one ``send_multipart`` per topic, about
20-50 microseconds per topic on loopback.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from ldns_sim.core import Chunk, StreamMeta, Telemetry
from ldns_sim.errors import SinkError
from ldns_sim.sinks.base import Sink
from ldns_sim.sinks.wire import SCHEMA_VERSION, channel_specs, meta_dict, telemetry_row

log = logging.getLogger(__name__)

TOPICS = ("spikes", "rates", "latents", "condition", "markers", "telemetry", "meta")
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


class ZmqHeader(BaseModel):
    """The JSON header frame of every ZMQ message (schema_version 1).

    ``t_first``/``t_first_monotonic`` are the first bin's *end* on the LSL clock and on
    ``time.monotonic()`` (bin i ends at ``t_first + i * bin_s``); for markers and
    telemetry they are the event's own time. ``shape``/``dtype`` describe the payload.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = SCHEMA_VERSION
    kind: str
    source_id: str
    seq: int
    """Per-topic message counter: 0, 1, 2, ... with no gaps unless a message was lost."""
    chunk_seq: int | None = None
    first_bin: int | None = None
    t_first: float | None = None
    t_first_monotonic: float | None = None
    bin_s: float
    dtype: str
    """``"<i2"``, ``"<f4"``, ``"<f8"``, ``"utf-8"`` (text) or ``"json"``."""
    shape: tuple[int, ...]
    n_dropped: int
    """Messages of any topic this publisher dropped so far (subscriber queue full)."""


def check_endpoint(endpoint: str, bind_any: bool) -> None:
    """Refuse a bind address other than loopback, ``ipc://`` or ``inproc://``.

    Raises
    ------
    SinkError
        For a malformed endpoint, or a non-loopback one unless ``bind_any``.
    """
    scheme, sep, rest = endpoint.partition("://")
    if not sep or scheme not in ("tcp", "ipc", "inproc"):
        raise SinkError(f"ZMQ endpoint {endpoint!r}: expected tcp://HOST:PORT, ipc:// or "
                        "inproc://")
    if scheme != "tcp":
        return
    host, colon, port = rest.rpartition(":")
    if not colon or not (port.isdigit() or port == "*"):
        raise SinkError(f"ZMQ endpoint {endpoint!r}: expected tcp://HOST:PORT (PORT may be "
                        "* for any free port)")
    if host not in _LOOPBACK_HOSTS and not bind_any:
        raise SinkError(f"ZMQ endpoint {endpoint!r} is not loopback; publishing to the network "
                        "needs bind_any=True (--zmq-bind-any)")


class ZmqSink(Sink):
    """Publishes every kind on one XPUB socket; see the module docstring for the contract.

    Parameters
    ----------
    endpoint
        Where to bind, e.g. ``"tcp://127.0.0.1:5556"``; port ``*`` picks a free port, and
        ``self.endpoint`` then holds the one bound.
    bind_any
        Allow a non-loopback address (``tcp://*:5556``, ``tcp://0.0.0.0:5556``).
    sndhwm
        Messages queued per subscriber before sends are dropped.
    meta_interval_s
        Period of the ``meta`` message, on ``time.monotonic()``.
    """

    name = "zmq"

    def __init__(self, endpoint: str = "tcp://127.0.0.1:5556", bind_any: bool = False,
                 sndhwm: int = 1000, meta_interval_s: float = 60.0) -> None:
        check_endpoint(endpoint, bind_any)
        self.endpoint = endpoint
        self.sndhwm = sndhwm
        self.meta_interval_s = meta_interval_s
        self.n_sent = 0
        self.n_dropped = 0
        self._socket = None
        self._context = None
        self._meta: StreamMeta | None = None
        self._meta_bytes = b""
        self._seq = dict.fromkeys(TOPICS, 0)
        self._last_meta_s = -np.inf
        self._lsl_to_monotonic_s: float | None = None
        self.subscribed: set[str] = set()
        """Topics some consumer has subscribed to (seen at the last chunk or wait)."""

    def __repr__(self) -> str:
        state = "OPEN" if self._socket is not None else "CLOSED"
        return (f"<ZmqSink | {state} | {self.endpoint} | sent {self.n_sent}, "
                f"dropped {self.n_dropped}>")

    def open(self, meta: StreamMeta) -> ZmqSink:
        import zmq

        self._meta = meta
        payload = meta_dict(meta)
        payload["channels"] = {k: list(s.labels) for k, s in channel_specs(meta).items()}
        self._meta_bytes = json.dumps(payload).encode()
        self._context = zmq.Context()
        sock = self._context.socket(zmq.XPUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, self.sndhwm)
        sock.setsockopt(zmq.XPUB_NODROP, 1)
        try:
            sock.bind(self.endpoint)
        except zmq.ZMQError as err:
            sock.close(0)
            self._context.term()
            self._context = None
            if err.errno == zmq.EADDRINUSE:
                port = self.endpoint.rpartition(":")[2]
                raise SinkError(f"port {port} in use: {self.endpoint} ({err}); "
                                "choose another with --zmq") from err
            raise SinkError(f"ZMQ endpoint {self.endpoint} cannot bind: {err}") from err
        self._socket = sock
        self._zmq = zmq
        self.endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        log.info("ZMQ publishing on %s", self.endpoint)
        self._send_meta()
        return self

    def _send(self, topic: str, payload: bytes, dtype: str, shape: tuple[int, ...],
              **fields) -> None:
        header = ZmqHeader(kind=topic, source_id=self._meta.source_id, seq=self._seq[topic],
                           bin_s=self._meta.bin_s, dtype=dtype, shape=shape,
                           n_dropped=self.n_dropped, **fields)
        self._seq[topic] += 1
        frames = [topic.encode(), header.model_dump_json().encode(), payload]
        try:
            self._socket.send_multipart(frames, flags=self._zmq.NOBLOCK, copy=False)
            self.n_sent += 1
        except self._zmq.Again:
            self.n_dropped += 1
            if self.n_dropped in (1, 10, 100) or self.n_dropped % 1000 == 0:
                log.warning("ZMQ %s: a subscriber is not keeping up; %d messages dropped",
                            self.endpoint, self.n_dropped)

    def _send_meta(self) -> None:
        self._last_meta_s = time.monotonic()
        self._send("meta", self._meta_bytes, "json", (len(self._meta_bytes),))

    def _poll_subscriptions(self) -> None:
        """Drain XPUB subscription frames; a new subscriber gets ``meta`` at once."""
        new_subscriber = False
        while True:
            try:
                frame = self._socket.recv(self._zmq.NOBLOCK)
            except self._zmq.Again:
                break
            if frame[:1] == b"\x01":
                new_subscriber = True
                self.subscribed.add(bytes(frame[1:]).decode(errors="replace"))
                log.debug("ZMQ %s: subscription to %r", self.endpoint, frame[1:])
        if new_subscriber or time.monotonic() - self._last_meta_s >= self.meta_interval_s:
            self._send_meta()

    def wait_for_subscriber(self, topic: str, timeout_s: float) -> bool:
        """Wait until a consumer subscribes to ``topic`` (or to everything); ``True`` if one did.

        For a supervisor that must not publish before its consumer listens (ZMQ drops what
        is sent before a subscription arrives).
        """
        deadline = time.monotonic() + timeout_s
        while self._socket is not None:
            self._poll_subscriptions()
            if topic in self.subscribed or "" in self.subscribed:
                return True
            if time.monotonic() >= deadline:
                return False
            self._socket.poll(50, self._zmq.POLLIN)
        return False

    def write_chunk(self, chunk: Chunk) -> None:
        if self._socket is None:
            return
        if chunk.bin_end_s is None or chunk.bin_end_monotonic_s is None:
            raise SinkError(f"chunk {chunk.seq} reached the ZMQ sink without timestamps")
        self._poll_subscriptions()
        self._lsl_to_monotonic_s = float(chunk.bin_end_monotonic_s[0] - chunk.bin_end_s[0])
        stamp = dict(chunk_seq=chunk.seq, first_bin=chunk.first_bin,
                     t_first=float(chunk.bin_end_s[0]),
                     t_first_monotonic=float(chunk.bin_end_monotonic_s[0]))
        arrays = {"spikes": chunk.counts, "rates": chunk.rates_hz,
                  "latents": chunk.latents, "condition": chunk.condition}
        for kind, spec in channel_specs(self._meta).items():
            data = np.ascontiguousarray(arrays[kind], dtype=spec.dtype)
            self._send(kind, data.data, spec.dtype, data.shape, **stamp)

    def _monotonic(self, lsl_s: float) -> float | None:
        return None if self._lsl_to_monotonic_s is None else lsl_s + self._lsl_to_monotonic_s

    def write_marker(self, text: str, timestamp_s: float) -> None:
        if self._socket is None:
            return
        payload = text.encode()
        self._send("markers", payload, "utf-8", (len(payload),), t_first=float(timestamp_s),
                   t_first_monotonic=self._monotonic(timestamp_s))

    def write_telemetry(self, telemetry: Telemetry) -> None:
        if self._socket is None:
            return
        row = telemetry_row(telemetry)
        self._send("telemetry", row.data, "<f8", row.shape, chunk_seq=telemetry.seq,
                   t_first=telemetry.emitted_at_s,
                   t_first_monotonic=self._monotonic(telemetry.emitted_at_s))

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close(0)
            self._socket = None
        if self._context is not None:
            self._context.term()
            self._context = None
        if self.n_dropped:
            log.warning("ZMQ %s closed: %d of %d messages dropped", self.endpoint,
                        self.n_dropped, self.n_sent + self.n_dropped)
