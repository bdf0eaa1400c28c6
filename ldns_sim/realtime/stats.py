"""Emission statistics of the real-time engine, kept in memory while it streams.

Per chunk the engine records the generation latency (clock time the generator took) and the
emission jitter (clock time at which the chunk was handed to the sinks minus the chunk's
target time, its last bin's end) and the interval jitter (how far the time between two
hand-outs is from one chunk: the field's |dt - period|, here of the hand-out times; the
stamps themselves are exact). Percentiles cover the newest ``capacity`` chunks (a fixed
ring buffer: 2**20 chunks is about 6 hours of 20 ms chunks in 16 MB); counts and totals
cover the whole stream.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EngineStats:
    """How well a stream kept time.

    Attributes
    ----------
    n_chunks, n_bins
        Chunks and bins emitted.
    n_late
        Chunks whose generation finished after their target time (immediate emission: more
        than the deadline after their end).
    latency_p50_s, latency_p99_s, latency_max_s
        Generation latency per chunk, seconds (NaN before the first chunk).
    jitter_p50_s, jitter_p99_s, jitter_max_s
        Emission jitter per chunk (push time - last bin's end), seconds; positive is after the
        end (immediate emission: the generation time plus the wake-up, by design).
    real_time_factor
        Bin time generated / time spent generating (> 1 keeps up; ``inf`` if generation
        took no measurable time, as on a ``ManualClock``).
    lookahead_s
        The look-ahead in force at the last chunk, seconds.
    lead_p99_s, lead_max_s
        Lead per chunk, seconds: from its scheduled generation start (or when the engine got
        free, if later) to the end of generation, i.e. the generation latency plus the OS's
        delay in waking the engine. A scheduled chunk is late when its lead exceeds the
        look-ahead (an immediate one, when handed out more than the deadline after its end).
    interval_jitter_p99_s, interval_jitter_max_s
        |time between a chunk's hand-out and the previous one's - one chunk|, seconds (NaN
        before the second chunk): how regularly chunks arrive, whatever their delay.
    """

    n_chunks: int
    n_bins: int
    n_late: int
    latency_p50_s: float
    latency_p99_s: float
    latency_max_s: float
    jitter_p50_s: float
    jitter_p99_s: float
    jitter_max_s: float
    real_time_factor: float
    lookahead_s: float
    lead_p99_s: float = float("nan")
    lead_max_s: float = float("nan")
    interval_jitter_p99_s: float = float("nan")
    interval_jitter_max_s: float = float("nan")

    def as_dict(self) -> dict[str, float | int]:
        """The fields as a plain dict (JSON-ready)."""
        return dict(self.__dict__)


class EmissionLog:
    """Thread-safe ring buffer of per-chunk latency and jitter.

    Parameters
    ----------
    bin_s
        Bin width in seconds (for the real-time factor).
    capacity
        Number of newest chunks the percentiles cover.
    """

    def __init__(self, bin_s: float, capacity: int = 2**20) -> None:
        self.bin_s = float(bin_s)
        self._latency_s = np.full(capacity, np.nan)
        self._jitter_s = np.full(capacity, np.nan)
        self._lead_s = np.full(capacity, np.nan)
        self._interval_jitter_s = np.full(capacity, np.nan)
        self._last_jitter_s = float("nan")
        self._n_chunks = 0
        self._n_bins = 0
        self._n_late = 0
        self._generation_total_s = 0.0
        self._lock = threading.Lock()

    def record(self, latency_s: float, jitter_s: float, late: bool, n_bins: int,
               lead_s: float = float("nan")) -> None:
        """Add one emitted chunk."""
        with self._lock:
            i = self._n_chunks % len(self._latency_s)
            self._latency_s[i] = latency_s
            self._jitter_s[i] = jitter_s
            self._lead_s[i] = lead_s
            # bins are stamped exactly one chunk apart, so the hand-out interval's deviation
            # from one chunk is the change in jitter (NaN for the first chunk)
            self._interval_jitter_s[i] = abs(jitter_s - self._last_jitter_s)
            self._last_jitter_s = jitter_s
            self._n_chunks += 1
            self._n_bins += n_bins
            self._n_late += int(late)
            self._generation_total_s += latency_s

    @property
    def n_late(self) -> int:
        return self._n_late

    def snapshot(self, lookahead_s: float) -> EngineStats:
        """The statistics so far."""
        with self._lock:
            n = min(self._n_chunks, len(self._latency_s))
            lat, jit, lead = self._latency_s[:n], self._jitter_s[:n], self._lead_s[:n]
            lead = lead[np.isfinite(lead)]
            interval = self._interval_jitter_s[:n]
            interval = interval[np.isfinite(interval)]
            gen_total_s, n_bins = self._generation_total_s, self._n_bins
            n_chunks, n_late = self._n_chunks, self._n_late

        def q(x: np.ndarray, p: float) -> float:
            return float(np.quantile(x, p)) if len(x) else float("nan")

        if gen_total_s > 0:
            rtf = n_bins * self.bin_s / gen_total_s
        else:
            rtf = float("inf") if n_bins else float("nan")
        return EngineStats(
            n_chunks=n_chunks, n_bins=n_bins, n_late=n_late,
            latency_p50_s=q(lat, 0.5), latency_p99_s=q(lat, 0.99),
            latency_max_s=float(lat.max()) if n else float("nan"),
            jitter_p50_s=q(jit, 0.5), jitter_p99_s=q(jit, 0.99),
            jitter_max_s=float(jit.max()) if n else float("nan"),
            real_time_factor=rtf, lookahead_s=float(lookahead_s),
            lead_p99_s=q(lead, 0.99),
            lead_max_s=float(lead.max()) if len(lead) else float("nan"),
            interval_jitter_p99_s=q(interval, 0.99),
            interval_jitter_max_s=float(interval.max()) if len(interval) else float("nan"),
        )
