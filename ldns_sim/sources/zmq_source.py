"""Behaviour from a ZMQ publisher (a rig, a game, a script) as the live condition.

Two message formats are accepted on a SUB socket:

- multipart ``[topic, header JSON, payload]``, the project's wire style: the header has
  ``schema_version`` (1), ``seq``, ``shape`` (``[n_channels]`` or ``[n_samples, n_channels]``)
  and ``dtype`` (``"float32"``); the payload is the raw little-endian array; the newest row
  is used;
- a single-part JSON object ``{"vel": [x, y]}`` (also accepted as ``[topic, json]``), for quick
  scripts in any language.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Callable, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ldns_sim.errors import ConfigError, SourceError
from ldns_sim.sources.link_state import HoldPolicy, LinkState
from ldns_sim.sources.threaded import ThreadedSource

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_POLL_MS = 50
_FLOAT32 = ("float32", "<f4", "f4")


class BehaviourHeader(BaseModel):
    """Header of a multipart behaviour message (the project's ZMQ wire style)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = Field(ge=SCHEMA_VERSION, le=SCHEMA_VERSION)
    seq: int = Field(ge=0)
    shape: tuple[int, ...] = Field(min_length=1, max_length=2)
    dtype: str
    kind: str | None = None
    t_first: float | None = None
    bin_s: float | None = None


class VelocityMessage(BaseModel):
    """A single-part JSON message: ``{"vel": [x, y]}`` in the stream's units."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    vel: tuple[float, ...]


class BadMessage(ValueError):
    """A message that does not follow either format (rejected and counted)."""


def decode_message(frames: Sequence[bytes], topic: bytes) -> tuple[np.ndarray, int | None]:
    """One received message -> ``(newest sample (n_channels,) float64, seq or None)``.

    Raises ``BadMessage`` for anything else (wrong topic, bad JSON, header/payload mismatch).
    """
    if len(frames) == 3:
        if frames[0] != topic:
            raise BadMessage(f"topic {frames[0][:40]!r}")
        return _decode_binary(frames[1], frames[2])
    if len(frames) == 2 and frames[0] == topic:
        frames = frames[1:]
    if len(frames) != 1:
        raise BadMessage(f"{len(frames)} frames")
    try:
        message = VelocityMessage.model_validate_json(frames[0])
    except ValidationError as error:
        raise BadMessage(f"JSON: {error.errors()[0]['msg']}") from None
    return np.asarray(message.vel, dtype=np.float64), None


def _decode_binary(header_bytes: bytes, payload: bytes) -> tuple[np.ndarray, int]:
    try:
        header = BehaviourHeader.model_validate_json(header_bytes)
    except ValidationError as error:
        raise BadMessage(f"header: {error.errors()[0]['msg']}") from None
    if header.dtype not in _FLOAT32:
        raise BadMessage(f"dtype {header.dtype!r}, expected float32")
    n_values = int(np.prod(header.shape))
    if n_values == 0 or len(payload) != 4 * n_values:
        raise BadMessage(f"payload of {len(payload)} bytes for shape {header.shape}")
    values = np.frombuffer(payload, dtype="<f4").reshape(header.shape)
    return values.reshape(-1, header.shape[-1])[-1].astype(np.float64), header.seq


class ZmqConditionSource(ThreadedSource):
    """Hand velocity from a ZMQ PUB socket, received on its own thread.

    The SUB socket connects to ``endpoint`` (the rig binds). Bad messages are rejected and
    counted (``condition_rejected_bad:zmq:ENDPOINT`` once per burst; NaN/Inf values give
    ``condition_rejected_nan``); gaps in ``seq`` are counted as ``n_dropped``. ZMQ cannot see
    a publisher go away, so silence for ``policy.lost_after_s`` counts as lost (hold, decay,
    markers), and the next good message restores.

    Latency budget: ZMQ over loopback ~50-100 µs; the thread wakes on arrival.

    Parameters
    ----------
    endpoint
        Where the publisher is bound, e.g. ``"tcp://127.0.0.1:5557"``.
    topic
        Topic of multipart messages (single-part JSON needs no topic).
    clock_now
        The engine clock (seconds): stamps arrivals.
    channels
        Indices of the x and y values in each sample.
    gain
        Factor from the publisher's units to the model's behaviour units.
    channel_names
        The model's two condition channel names.
    policy
        Hold, decay and silence timeout.
    """

    def __init__(self, endpoint: str = "tcp://127.0.0.1:5557", topic: str = "behaviour", *,
                 clock_now: Callable[[], float], channels: Sequence[int] = (0, 1),
                 gain: float = 1.0, channel_names: Sequence[str] = ("vel_x", "vel_y"),
                 policy: HoldPolicy | None = None) -> None:
        if "://" not in endpoint:
            raise ConfigError(f"zmq source: endpoint {endpoint!r} is not a ZMQ endpoint, "
                              f"expected e.g. tcp://127.0.0.1:5557")
        if len(channels) != len(channel_names) or min(channels, default=0) < 0:
            raise ConfigError(f"zmq source: channels {tuple(channels)} must be one "
                              f"non-negative index per condition channel {tuple(channel_names)}")
        if not (math.isfinite(gain) and gain != 0):
            raise ConfigError(f"zmq source: gain must be a finite non-zero number, got {gain}")
        self.endpoint = endpoint
        self.topic = topic.encode()
        self.channels = tuple(int(c) for c in channels)
        self.gain = float(gain)
        self.channel_names = tuple(channel_names)
        self.name = f"zmq:{endpoint}"
        self.n_dropped = 0
        self._last_seq: int | None = None
        self._clock_now = clock_now
        self._link = LinkState(self.name, len(self.channels), policy or HoldPolicy())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._context = None
        self._socket = None

    def start(self) -> ZmqConditionSource:
        """Connect and start receiving; ``SourceError`` for an endpoint ZMQ refuses."""
        if self._thread is not None:
            return self
        import zmq

        self._context = zmq.Context()
        socket = self._context.socket(zmq.SUB)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.SUBSCRIBE, self.topic)
        socket.setsockopt(zmq.SUBSCRIBE, b"{")  # single-part JSON objects
        try:
            socket.connect(self.endpoint)
        except zmq.ZMQError as error:
            socket.close()
            self._context.term()
            self._context = None
            raise SourceError(f"zmq source: cannot connect to {self.endpoint!r}: {error}; "
                              f"expected e.g. --condition zmq:tcp://127.0.0.1:5557") from None
        self._socket = socket
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="ldns-zmq-source", daemon=True)
        self._thread.start()
        log.info("zmq source: subscribed to %r on %s", self.topic.decode(), self.endpoint)
        return self

    def stop(self) -> None:
        """Stop receiving and close the socket; safe to call twice."""
        self._join_worker()
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if self._context is not None:
            self._context.term()
            self._context = None

    def _run(self) -> None:
        import zmq

        self._raise_worker_priority()
        poller = zmq.Poller()
        poller.register(self._socket, zmq.POLLIN)
        while not self._stop.is_set():
            try:
                if not poller.poll(_POLL_MS):
                    self._link.is_lost(self._clock_now())  # logs the loss while silent
                    continue
                while True:
                    try:
                        frames = self._socket.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self._take(frames)
            except Exception:  # never take the engine down
                log.exception("zmq source %s: receiving failed", self.name)
                self._link.mark_lost(self._clock_now(), "receiving failed")
                self._stop.wait(0.5)

    def _take(self, frames: list[bytes]) -> None:
        arrival_s = self._clock_now()
        try:
            sample, seq = decode_message(frames, self.topic)
            if max(self.channels) >= len(sample):
                raise BadMessage(f"{len(sample)} values, channels {self.channels} asked for")
        except BadMessage as error:
            log.debug("zmq source %s: rejected message (%s)", self.name, error)
            self._link.reject("bad")
            return
        self._count_gap(seq)
        picked = sample[list(self.channels)]
        if not np.all(np.isfinite(picked)):
            self._link.reject("nan")
            return
        self._link.push(picked * self.gain, arrival_s, arrival_s)

    def _count_gap(self, seq: int | None) -> None:
        if seq is None:
            return
        if self._last_seq is not None and seq > self._last_seq + 1:
            self.n_dropped += seq - self._last_seq - 1
        self._last_seq = seq

    def __repr__(self) -> str:
        state = "ON" if self._thread is not None else "OFF"
        return (f"<ZmqConditionSource | {state} | {self.endpoint} topic {self.topic.decode()!r}"
                f" | {self.n_samples} samples, {self.n_rejected} rejected, "
                f"{self.n_dropped} dropped>")


def dumps_header(seq: int, shape: Sequence[int]) -> bytes:
    """A valid multipart header for a float32 behaviour sample (for publishers and tests)."""
    return json.dumps({"schema_version": SCHEMA_VERSION, "seq": int(seq),
                       "shape": [int(n) for n in shape], "dtype": "float32"}).encode()
