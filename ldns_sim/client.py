"""Reading ldns-sim streams from a decoder rig: numpy plus pyzmq or pylsl, nothing else.

ZMQ::

    from ldns_sim.client import ZmqSpikeSubscriber
    with ZmqSpikeSubscriber("tcp://127.0.0.1:5556") as sub:
        while True:
            header, counts = sub.recv(timeout_s=1.0)  # counts: (n_bins, n_neurons) int16
            t_end = header["t_first"] + np.arange(len(counts)) * header["bin_s"]  # LSL clock

LSL::

    from ldns_sim.client import LslSpikeReader
    reader = LslSpikeReader(source_id="ldns-sim-spikes")  # StreamMeta.source_id + "-spikes"
    counts, t_end = reader.pull(timeout_s=0.1)             # (n, n_neurons) int16, (n,) s

The wire format is documented in ``docs/wire-format.md``.
"""

from __future__ import annotations

import json
import logging

import numpy as np

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1


def decode_payload(header: dict, payload: bytes):
    """The payload of one ZMQ message as the header describes it.

    Returns
    -------
    numpy.ndarray | str | dict
        A read-only ``header["shape"]`` array for numeric dtypes (``"<i2"``, ``"<f4"``,
        ``"<f8"``), a ``str`` for ``"utf-8"`` (markers), a ``dict`` for ``"json"`` (meta).
    """
    dtype = header["dtype"]
    if dtype == "utf-8":
        return bytes(payload).decode("utf-8")
    if dtype == "json":
        return json.loads(bytes(payload))
    return np.frombuffer(payload, dtype=np.dtype(dtype)).reshape(header["shape"])


class ZmqSpikeSubscriber:
    """SUB socket on an ldns-sim publisher, with per-topic gap detection.

    Parameters
    ----------
    endpoint
        The publisher's endpoint, e.g. ``"tcp://127.0.0.1:5556"``.
    topics
        Topics to return from ``recv``: any of ``spikes rates latents condition markers
        telemetry meta``. ``meta`` is always subscribed to and kept in ``self.meta``.
    rcvhwm
        Messages queued locally before libzmq drops (the gap then shows in ``n_missed``).

    Attributes
    ----------
    meta
        The latest ``meta`` message (model, seed, bin width, channel labels), or ``None``.
    n_missed
        Per topic, messages missed so far (from gaps in ``seq``). The first message of a
        topic sets the baseline: a late joiner is not charged for what it never asked for.
    """

    def __init__(self, endpoint: str = "tcp://127.0.0.1:5556",
                 topics: tuple[str, ...] = ("spikes",), rcvhwm: int = 10_000) -> None:
        import zmq

        self._zmq = zmq
        self.endpoint = endpoint
        self.topics = tuple(topics)
        self.meta: dict | None = None
        self.n_missed: dict[str, int] = dict.fromkeys(self.topics, 0)
        self._next_seq: dict[str, int] = {}
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.SUB)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.RCVHWM, rcvhwm)
        for topic in set(self.topics) | {"meta"}:
            self._socket.setsockopt(zmq.SUBSCRIBE, topic.encode())
        self._socket.connect(endpoint)

    def recv(self, timeout_s: float = 1.0) -> tuple[dict, np.ndarray | str | dict]:
        """The next message of one of ``topics``.

        Returns
        -------
        header
            The JSON header as a dict (``kind``, ``seq``, ``t_first``, ``bin_s``, ...),
            plus ``"missed"``: messages of this topic lost just before this one.
        payload
            See :func:`decode_payload`; for ``spikes`` a ``(n_bins, n_neurons)`` int16 array.

        Raises
        ------
        TimeoutError
            If nothing arrives within ``timeout_s`` seconds.
        """
        while True:
            if not self._socket.poll(int(timeout_s * 1000)):
                raise TimeoutError(f"no message from {self.endpoint} within {timeout_s} s")
            topic_b, header_b, payload = self._socket.recv_multipart(copy=False)
            topic = bytes(topic_b).decode()
            header = json.loads(bytes(header_b))
            if header.get("schema_version") != SCHEMA_VERSION:
                raise ValueError(f"{self.endpoint}: header schema_version "
                                 f"{header.get('schema_version')!r}, expected {SCHEMA_VERSION}")
            header["missed"] = self._check_seq(topic, header["seq"])
            data = decode_payload(header, payload.buffer)
            if topic == "meta":
                self.meta = data
            if topic in self.topics:
                return header, data

    def _check_seq(self, topic: str, seq: int) -> int:
        expected = self._next_seq.get(topic, seq)
        missed = max(seq - expected, 0)
        self._next_seq[topic] = seq + 1
        if missed and topic in self.n_missed:
            self.n_missed[topic] += missed
            log.warning("%s %s: %d message(s) missed before seq %d", self.endpoint, topic,
                        missed, seq)
        return missed

    def close(self) -> None:
        """Close the socket; safe to call twice."""
        if self._socket is not None:
            self._socket.close(0)
            self._context.term()
            self._socket = None

    def __enter__(self) -> ZmqSpikeSubscriber:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class LslSpikeReader:
    """Inlet on an ldns-sim ``SpikeCounts`` stream (or any of its binned streams).

    Parameters
    ----------
    source_id
        Resolve the stream with this ``source_id`` (``StreamMeta.source_id + "-spikes"``).
    name
        Or resolve by stream name (e.g. ``"ldns-sim-spikes"``) when ``source_id`` is None.
    timeout_s
        How long to look for the stream before ``TimeoutError``.
    scope
        liblsl discovery scope, see ``ldns_sim.lsl_config`` (``"site"`` on a lab network);
        ``None`` reads ``$LDNS_SIM_LSL_SCOPE``, default ``"machine"``.

    Attributes
    ----------
    bin_s, labels, desc
        Bin width (s), channel labels, and the stream's other ``desc`` fields (dict).
    """

    def __init__(self, source_id: str | None = None, name: str | None = None,
                 timeout_s: float = 5.0, scope: str | None = None) -> None:
        from ldns_sim.lsl_config import configure_lsl

        configure_lsl(scope)
        import pylsl

        if (source_id is None) == (name is None):
            raise ValueError("give exactly one of source_id or name")
        prop, value = ("source_id", source_id) if source_id is not None else ("name", name)
        found = pylsl.resolve_byprop(prop, value, 1, timeout_s)
        if not found:
            raise TimeoutError(f"no LSL stream with {prop}={value!r} within {timeout_s} s")
        self.inlet = pylsl.StreamInlet(found[0], max_buflen=60, recover=True)
        info = self.inlet.info(timeout=timeout_s)
        self.labels = tuple(info.get_channel_labels() or ())
        desc = info.desc()
        self.desc = {}
        child = desc.first_child()
        while not child.empty():
            if child.first_child().is_text():
                self.desc[child.name()] = child.first_child().value()
            child = child.next_sibling()
        self.bin_s = float(self.desc.get("bin_width_s", "nan"))
        self._dtype = {pylsl.cf_int16: np.int16, pylsl.cf_float32: np.float32,
                       pylsl.cf_int32: np.int32, pylsl.cf_double64: np.float64}.get(
                           info.channel_format(), np.float64)
        self._n_channels = info.channel_count()

    def pull(self, timeout_s: float = 0.0, max_samples: int = 1024
             ) -> tuple[np.ndarray, np.ndarray]:
        """Everything that arrived (up to ``max_samples``), waiting at most ``timeout_s``.

        Returns
        -------
        counts
            ``(n, n_channels)`` samples (int16 counts on a ``SpikeCounts`` stream).
        timestamps
            ``(n,)`` float64 bin-end times on the sender's LSL clock.
        """
        # pull_chunk(timeout > 0) waits for max_samples or the whole timeout, which would
        # delay every sample by up to the timeout: wait for one sample, take what else is there
        sample, stamp = self.inlet.pull_sample(timeout=timeout_s)
        if stamp is None:
            return (np.zeros((0, self._n_channels), dtype=self._dtype),
                    np.zeros(0, dtype=np.float64))
        samples, stamps = (self.inlet.pull_chunk(timeout=0.0, max_samples=max_samples - 1)
                           if max_samples > 1 else ([], []))
        samples, stamps = [sample, *samples], [stamp, *stamps]
        data = np.asarray(samples, dtype=self._dtype).reshape(-1, self._n_channels)
        return data, np.asarray(stamps, dtype=np.float64)

    def close(self) -> None:
        """Close the inlet; safe to call twice."""
        if self.inlet is not None:
            self.inlet.close_stream()
            self.inlet = None
