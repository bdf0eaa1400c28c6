"""The engine's side of a condition source: a failing source never stops the stream."""

from __future__ import annotations

import logging

import numpy as np

from ldns_sim.realtime.condition import ConditionReading, ConditionSource

logger = logging.getLogger(__name__)


class GuardedSource:
    """Reads a ``ConditionSource``, holding its last good value if it raises or misbehaves.

    A read that raises, or returns a value of the wrong shape, is logged (once per stream)
    and answered with the last good value (zeros before the first), ``ok=False`` and the last
    good sample time, so the condition's age keeps growing while the source is broken.

    Parameters
    ----------
    source
        The source to read.
    """

    def __init__(self, source: ConditionSource) -> None:
        self.source = source
        self.last: ConditionReading | None = None
        self._failed = False

    def read(self, now_s: float) -> ConditionReading:
        """The source's reading at ``now_s`` (seconds), or the held stand-in."""
        n_channels = self.source.n_channels
        try:
            reading = self.source.read(now_s)
            if np.shape(reading.value) != (n_channels,):
                raise ValueError(f"value of shape {np.shape(reading.value)}, expected "
                                 f"({n_channels},)")
        except Exception:
            if not self._failed:
                logger.exception("condition source %r failed to read; holding its last value",
                                 self.source.name)
                self._failed = True
            last = self.last
            value = last.value if last else np.zeros(n_channels, dtype=np.float32)
            return ConditionReading(value, last.sample_time_s if last else now_s, now_s, False)
        self.last = reading
        return reading

    def drain_events(self) -> list[str]:
        """The source's markers since the last call (empty if draining raises, logged)."""
        try:
            return list(self.source.drain_events())
        except Exception:
            logger.exception("condition source %r failed to drain events", self.source.name)
            return []
