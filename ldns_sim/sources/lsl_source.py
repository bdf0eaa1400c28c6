"""A behaviour stream from the rig over LSL (a cursor, a hand tracker) as the live condition.

The stream is found by name and/or type, pulled on its own thread, and two channels are taken
as the hand velocity (times ``gain``: the stream's units -> the model's behaviour units).
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from collections.abc import Callable, Sequence

import numpy as np

from ldns_sim.errors import ConfigError, SourceError
from ldns_sim.lsl_config import configure_lsl
from ldns_sim.sources.link_state import HoldPolicy, LinkState
from ldns_sim.sources.threaded import ThreadedSource

log = logging.getLogger(__name__)

_PULL_TIMEOUT_S = 0.05
_RERESOLVE_TIMEOUT_S = 0.3
_RERESOLVE_WAIT_S = 0.2
_RERESOLVE_EVERY_N_PULLS = 10
#: Newest samples whose transport time (LSL stamp to arrival) is kept: 1,000 s at 100 Hz.
TRANSPORT_WINDOW = 100_000
_LIST_HINT = ("list the streams on this machine with: python -c \"import pylsl; "
              "print([(s.name(), s.type()) for s in pylsl.resolve_streams(2)])\"")


def _import_pylsl():
    try:
        configure_lsl()  # liblsl reads its configuration once: before any other pylsl call
    except ValueError:
        pass  # configured already, by the caller, with the scope that stands
    import pylsl

    return pylsl


def _predicate(name: str | None, stream_type: str | None) -> str:
    parts = [f"name='{name}'"] if name else []
    if stream_type:
        parts.append(f"type='{stream_type}'")
    return " and ".join(parts)


class LslConditionSource(ThreadedSource):
    """Hand velocity from an LSL stream, pulled on its own thread.

    Samples with NaN/Inf in the selected channels are rejected and counted, with one
    ``condition_rejected_nan:lsl:NAME`` marker per burst. A stream that vanishes (inlet lost,
    or no sample for ``policy.lost_after_s``) is handled like an unplugged gamepad: hold, then
    decay to zero, ``condition_lost:lsl:NAME``; the thread then looks for the stream again
    about twice a second and, once samples flow, ``condition_restored:lsl:NAME``.

    Latency budget: LSL transport on one machine ~0.1-1 ms, plus up to ``_PULL_TIMEOUT_S``
    (50 ms) only when the stream is idle (a waiting pull returns as soon as a sample arrives).
    The transport of every sample, from its LSL stamp (clock-synchronised) to its arrival here,
    is kept (``transport_s``) and summarised in the log when the source stops: it is the part
    of the rig-to-spikes latency before the simulator sees the sample.

    Parameters
    ----------
    name, stream_type
        LSL stream name and/or type to resolve (at least one).
    channels
        Indices of the x and y velocity channels in the stream.
    gain
        Factor from the stream's units to the model's behaviour units.
    timeout_s
        How long ``start`` looks for the stream.
    clock_now
        The engine clock (LSL ``local_clock`` seconds): stamps arrivals.
    channel_names
        The model's two condition channel names.
    policy
        Hold, decay and silence timeout.
    """

    def __init__(self, name: str | None = None, stream_type: str | None = None,
                 channels: Sequence[int] = (0, 1), timeout_s: float = 5.0, *,
                 clock_now: Callable[[], float], gain: float = 1.0,
                 channel_names: Sequence[str] = ("vel_x", "vel_y"),
                 policy: HoldPolicy | None = None) -> None:
        if not name and not stream_type:
            raise ConfigError("lsl source: give a stream name or a stream type (or both)")
        if len(channels) != len(channel_names) or min(channels, default=0) < 0:
            raise ConfigError(f"lsl source: channels {tuple(channels)} must be one "
                              f"non-negative index per condition channel {tuple(channel_names)}")
        if not (math.isfinite(gain) and gain != 0):
            raise ConfigError(f"lsl source: gain must be a finite non-zero number, got {gain}")
        self.stream_name = name
        self.stream_type = stream_type
        self.channels = tuple(int(c) for c in channels)
        self.gain = float(gain)
        self.timeout_s = float(timeout_s)
        self.channel_names = tuple(channel_names)
        self.name = f"lsl:{name or stream_type}"
        self._clock_now = clock_now
        self._link = LinkState(self.name, len(self.channels), policy or HoldPolicy())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._inlet = None
        self._uid: str | None = None
        self._transport_s: deque[float] = deque(maxlen=TRANSPORT_WINDOW)
        self._transport_lock = threading.Lock()

    def transport_s(self) -> np.ndarray:
        """Arrival - LSL stamp of the newest samples (at most ``TRANSPORT_WINDOW``), seconds."""
        with self._transport_lock:
            return np.array(self._transport_s, dtype=np.float64)

    def start(self) -> LslConditionSource:
        """Resolve the stream and start pulling; ``SourceError`` if it is not found."""
        if self._thread is not None:
            return self
        pylsl = _import_pylsl()
        infos = self._resolve(pylsl, self.timeout_s)
        if not infos:
            wanted = _predicate(self.stream_name, self.stream_type)
            raise SourceError(f"lsl source: no LSL stream with {wanted} found within "
                              f"{self.timeout_s:g} s; {_LIST_HINT}")
        if len(infos) > 1:
            log.warning("lsl source: %d streams match %s; using the first (source_id %r)",
                        len(infos), _predicate(self.stream_name, self.stream_type),
                        infos[0].source_id())
        self._inlet = self._open(pylsl, infos[0])
        with self._transport_lock:
            self._transport_s.clear()  # a restarted source reports its new run only
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(pylsl,), name="ldns-lsl-source",
                                        daemon=True)
        self._thread.start()
        return self

    def _resolve(self, pylsl, timeout_s: float) -> list:
        return list(pylsl.resolve_bypred(_predicate(self.stream_name, self.stream_type),
                                         minimum=1, timeout=timeout_s))

    def _open(self, pylsl, info):
        n_channels = info.channel_count()
        if max(self.channels) >= n_channels:
            raise SourceError(f"lsl source: stream {info.name()!r} has {n_channels} channels, "
                              f"channels {self.channels} were asked for")
        if info.channel_format() == pylsl.cf_string:
            raise SourceError(f"lsl source: stream {info.name()!r} carries strings, "
                              f"expected numbers")
        # recover=False: a vanished outlet shows up at once as LostError; we re-resolve
        # ourselves (liblsl's own recovery waits on a 15 s watchdog).
        inlet = pylsl.StreamInlet(info, max_buflen=1, recover=False,
                                  processing_flags=pylsl.proc_clocksync)
        try:
            inlet.open_stream(timeout=self.timeout_s)
        except Exception as error:
            raise SourceError(f"lsl source: cannot open stream {info.name()!r}: {error}") from None
        self._uid = info.uid()
        log.info("lsl source: pulling %r (type %r, %d channels, source_id %r)", info.name(),
                 info.type(), n_channels, info.source_id())
        return inlet

    def stop(self) -> None:
        """Stop pulling and close the inlet; safe to call twice."""
        if self._join_worker() and len(transport_ms := self.transport_s() * 1e3):
            log.info("lsl source %s: %d samples; transport (LSL stamp to arrival) p50 %.2f, "
                     "p99 %.2f, max %.2f ms", self.name, len(transport_ms),
                     np.percentile(transport_ms, 50), np.percentile(transport_ms, 99),
                     transport_ms.max())
        self._inlet = None

    # -- pull thread -----------------------------------------------------------------------

    def _run(self, pylsl) -> None:
        from pylsl.util import LostError

        self._raise_worker_priority()
        n_idle_lost = 0  # pulls (each waits up to 50 ms when idle) since the last re-resolve
        while not self._stop.is_set():
            try:
                if self._inlet is not None:
                    self._pull(self._inlet)
                if self._inlet is None or self._link.is_lost(self._clock_now()):
                    n_idle_lost += 1
                    if self._inlet is None or n_idle_lost >= _RERESOLVE_EVERY_N_PULLS:
                        n_idle_lost = 0
                        self._reopen(pylsl)
            except LostError:
                self._link.mark_lost(self._clock_now(), "the LSL outlet went away")
                self._inlet = None
            except Exception:  # never take the engine down: count it as a loss
                log.exception("lsl source %s: pulling failed", self.name)
                self._link.mark_lost(self._clock_now(), "pulling failed")
                self._inlet = None
                self._stop.wait(_RERESOLVE_WAIT_S)

    def _pull(self, inlet) -> None:
        # pull_chunk(timeout > 0) waits for max_samples or the whole timeout, which would delay
        # every sample by up to the timeout: wait for one sample, then take what else is there
        sample, stamp = inlet.pull_sample(timeout=_PULL_TIMEOUT_S)
        if stamp is None:
            return
        more, more_stamps = inlet.pull_chunk(timeout=0.0, max_samples=256)
        samples, timestamps = [sample, *more], [stamp, *more_stamps]
        arrival_s = self._clock_now()
        with self._transport_lock:
            self._transport_s.extend(arrival_s - t_s for t_s in timestamps)
        picked = np.asarray(samples, dtype=np.float64)[:, self.channels]  # (n_samples, 2)
        for row, stamp_s in zip(picked, timestamps):
            if np.all(np.isfinite(row)):
                self._link.push(row * self.gain, stamp_s, arrival_s)
            else:
                self._link.reject("nan")

    def _reopen(self, pylsl) -> None:
        """While lost: look for the stream again and switch to a new outlet (new uid)."""
        for info in self._resolve(pylsl, _RERESOLVE_TIMEOUT_S):
            if info.uid() != self._uid or self._inlet is None:
                try:
                    self._inlet = self._open(pylsl, info)
                except SourceError as error:
                    log.warning("%s", error)
                    continue
                return
        if self._inlet is None:
            self._stop.wait(_RERESOLVE_WAIT_S)

    def __repr__(self) -> str:
        state = "ON" if self._thread is not None else "OFF"
        return (f"<LslConditionSource | {state} | {_predicate(self.stream_name, self.stream_type)}"
                f" | channels {self.channels} x {self.gain:g} | {self.n_samples} samples, "
                f"{self.n_rejected} rejected>")
