"""What every live source shares: the newest sample, and what to do when the link goes away.

A live source (gamepad, LSL stream, ZMQ publisher) can vanish mid-session. The simulator must
not crash and must not jump: the last value is held for ``hold_s`` seconds, then decays
exponentially to zero with time constant ``decay_tau_s`` (a hand that stops, not a hand that
teleports), and a marker tells the recording when the condition was lost and restored.

Time origin of hold and decay: the instant the link is known lost. For a device that reports
its removal, that is the removal; for a stream that just goes silent, it is the last arrival
plus ``lost_after_s`` (so the result depends on arrival times only, not on when the engine
happens to read).
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass

import numpy as np

from ldns_sim.errors import ConfigError
from ldns_sim.realtime.condition import ConditionReading

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HoldPolicy:
    """How a source behaves when its link goes away.

    Attributes
    ----------
    hold_s
        Seconds the last value is held after the loss.
    decay_tau_s
        Time constant (seconds) of the exponential decay to zero after the hold.
    lost_after_s
        Seconds without a new sample after which the link counts as lost, or ``None`` for
        sources that report their loss themselves and may legitimately be silent.
    """

    hold_s: float = 0.25
    decay_tau_s: float = 0.2
    lost_after_s: float | None = 0.5

    def __post_init__(self) -> None:
        if not (self.hold_s >= 0 and math.isfinite(self.hold_s)):
            raise ConfigError(f"hold_s must be a finite number >= 0 seconds, got {self.hold_s}")
        if not (self.decay_tau_s > 0 and math.isfinite(self.decay_tau_s)):
            raise ConfigError(f"decay_tau_s must be a positive number of seconds, "
                              f"got {self.decay_tau_s}")
        if self.lost_after_s is not None and not (
                self.lost_after_s > 0 and math.isfinite(self.lost_after_s)):
            raise ConfigError(f"lost_after_s must be a positive number of seconds or None, "
                              f"got {self.lost_after_s}")


def held_value(last_value: np.ndarray, since_lost_s: float, policy: HoldPolicy) -> np.ndarray:
    """The condition ``since_lost_s`` seconds after the link was lost.

    Parameters
    ----------
    last_value
        ``(n_channels,)`` the last good value before the loss.
    since_lost_s
        Seconds since the loss (negative values count as 0).
    policy
        Hold duration and decay time constant.

    Returns
    -------
    np.ndarray
        ``(n_channels,)`` float32: ``last_value`` during the hold, then
        ``last_value * exp(-(since_lost_s - hold_s) / decay_tau_s)``; continuous at the hold's end.
    """
    last_value = np.asarray(last_value, dtype=np.float32)
    decay_s = max(0.0, since_lost_s - policy.hold_s)
    return (last_value * np.float32(math.exp(-decay_s / policy.decay_tau_s))).astype(np.float32)


class LinkState:
    """Thread-safe newest sample of one live source, with the lost/restored state machine.

    The source's own thread calls ``push`` (good sample), ``reject`` (bad sample) and
    ``mark_lost`` (device removed, inlet lost); the engine thread calls ``reading`` and
    ``drain_events``. Markers: ``condition_lost:LABEL``, ``condition_restored:LABEL``,
    ``condition_rejected_REASON:LABEL`` (once per burst of bad samples, not per sample).

    Parameters
    ----------
    label
        Source label used in markers and logs, e.g. ``"joystick"`` or ``"lsl:cursor"``.
    n_channels
        Number of condition channels.
    policy
        Hold, decay and silence timeout.
    """

    def __init__(self, label: str, n_channels: int, policy: HoldPolicy) -> None:
        self.label = label
        self.n_channels = int(n_channels)
        self.policy = policy
        self._lock = threading.Lock()
        self._value = np.zeros(self.n_channels, dtype=np.float32)  # (n_channels,)
        self._sample_time_s = math.nan
        self._arrival_time_s = math.nan
        self._lost_at_s: float | None = None
        self._rejecting: str | None = None  # reason of the current burst of bad samples
        self._events: list[str] = []
        self.n_samples = 0
        self.n_rejected: dict[str, int] = {}
        self.first_sample = threading.Event()
        """Set by the first good sample."""

    @property
    def has_data(self) -> bool:
        return self.n_samples > 0

    def push(self, value: np.ndarray, sample_time_s: float, arrival_time_s: float) -> None:
        """Take a good sample ``(n_channels,)``; restores a lost link."""
        value = np.asarray(value, dtype=np.float32).reshape(self.n_channels)
        with self._lock:
            self._value = value.copy()
            self._sample_time_s = float(sample_time_s)
            self._arrival_time_s = float(arrival_time_s)
            self.n_samples += 1
            self.first_sample.set()
            self._rejecting = None
            if self._lost_at_s is not None:
                self._lost_at_s = None
                self._events.append(f"condition_restored:{self.label}")
                log.info("condition source %s restored", self.label)

    def reject(self, reason: str) -> None:
        """Count one bad sample (``reason`` e.g. ``"nan"``, ``"bad"``); marker once per burst."""
        with self._lock:
            self.n_rejected[reason] = self.n_rejected.get(reason, 0) + 1
            if self._rejecting != reason:
                self._rejecting = reason
                self._events.append(f"condition_rejected_{reason}:{self.label}")
                log.warning("condition source %s: rejecting %s samples", self.label, reason)

    def mark_lost(self, at_s: float, why: str) -> None:
        """Declare the link lost at ``at_s`` (seconds, engine clock); no-op if already lost."""
        with self._lock:
            self._mark_lost_locked(at_s, why)

    def _mark_lost_locked(self, at_s: float, why: str) -> None:
        if self._lost_at_s is not None:
            return
        self._lost_at_s = float(at_s)
        self._events.append(f"condition_lost:{self.label}")
        log.warning("condition source %s lost (%s); holding the last value %.2f s, then "
                    "decaying to zero", self.label, why, self.policy.hold_s)

    def is_lost(self, now_s: float) -> bool:
        """Whether the link is lost at ``now_s`` (applies the silence timeout)."""
        with self._lock:
            self._check_silence_locked(now_s)
            return self._lost_at_s is not None

    def _check_silence_locked(self, now_s: float) -> None:
        timeout_s = self.policy.lost_after_s
        if timeout_s is None or self._lost_at_s is not None or self.n_samples == 0:
            return
        if now_s - self._arrival_time_s > timeout_s:
            self._mark_lost_locked(self._arrival_time_s + timeout_s,
                                   f"no sample for {timeout_s:g} s")

    def reading(self, now_s: float) -> ConditionReading:
        """The condition at ``now_s``: the newest value, or the held/decayed one when lost.

        ``ok`` is True only for a live link that has delivered at least one sample.
        """
        with self._lock:
            self._check_silence_locked(now_s)
            value = self._value
            ok = self.n_samples > 0 and self._lost_at_s is None
            if self._lost_at_s is not None:
                value = held_value(value, now_s - self._lost_at_s, self.policy)
            return ConditionReading(value=value.copy(), sample_time_s=self._sample_time_s,
                                    arrival_time_s=self._arrival_time_s, ok=ok)

    def drain_events(self) -> list[str]:
        """Markers since the last call, oldest first."""
        with self._lock:
            events, self._events = self._events, []
            return events
