"""The one clock of the simulator: every timestamp and every wait goes through a ``Clock``.

Nothing else in ``ldns_sim`` reads the wall clock. Times are seconds on the LSL clock
(``pylsl.local_clock()``), the clock every LSL consumer on this machine shares, so a decoder
rig can compare our bin-end stamps with its own ``local_clock()`` directly. ``monotonic()``
is ``time.monotonic()``, carried next to the LSL stamp on the wire (DESIGN.md, wire contract).

``ManualClock`` is a real clock for tests: time moves only when someone sleeps or advances
it, so engine tests are exact and take no wall time.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol, runtime_checkable

from ldns_sim.errors import ConfigError
from ldns_sim.lsl_config import configure_lsl

#: How long before a deadline ``LslClock.sleep_until`` stops sleeping and starts spinning.
DEFAULT_SPIN_S = 0.001


@runtime_checkable
class Clock(Protocol):
    """What the engine needs from time."""

    def now(self) -> float:
        """Current time in seconds on the stream clock (LSL ``local_clock`` for real runs)."""
        ...

    def monotonic(self) -> float:
        """Current ``time.monotonic()``-style time in seconds (carried next to LSL stamps)."""
        ...

    def sleep_until(self, t_s: float) -> None:
        """Return once ``now() >= t_s`` (at once if that time has passed)."""
        ...


class LslClock:
    """The LSL clock, ``pylsl.local_clock()``, with sub-millisecond waits.

    ``sleep_until`` sleeps with ``time.sleep`` until ``spin_s`` before the deadline (the OS
    wakes a sleeper 50-100 µs late, more on a loaded machine), then spins on ``local_clock``
    until the deadline has passed. The spin costs CPU: about ``spin_s`` of one core per wait,
    i.e. 5 % of a core with the default 1 ms spin and 20 ms waits, 2 % with 50 ms waits.
    ``spin_s=0`` turns the spin off (then waits end whenever the OS wakes the thread).

    Parameters
    ----------
    spin_s
        Length of the final busy wait before each deadline, in seconds (``>= 0``).
    """

    def __init__(self, spin_s: float = DEFAULT_SPIN_S) -> None:
        if not spin_s >= 0:
            raise ConfigError(f"LslClock: spin_s must be >= 0 seconds, got {spin_s}")
        try:
            configure_lsl()  # liblsl reads its configuration once: set it before first use
        except ValueError:
            pass  # already configured (with another scope) by the caller: that one stands
        import pylsl

        self._local_clock = pylsl.local_clock
        self.spin_s = float(spin_s)

    def now(self) -> float:
        return self._local_clock()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep_until(self, t_s: float) -> None:
        remaining_s = t_s - self._local_clock()
        if remaining_s > self.spin_s:
            time.sleep(remaining_s - self.spin_s)
        while self._local_clock() < t_s:
            pass

    def __repr__(self) -> str:
        return f"<LslClock | spin {self.spin_s * 1e3:g} ms>"


class ManualClock:
    """A clock that moves only when told to: for tests, instant and exact.

    ``sleep_until(t)`` jumps to ``t`` (never backwards); ``advance(dt)`` moves forward by
    ``dt``, e.g. inside a test generator that pretends to be slow. ``monotonic()`` is
    ``now() + monotonic_offset_s`` so tests can tell the two stamps apart. Thread-safe.

    Parameters
    ----------
    start_s
        Initial ``now()`` in seconds.
    monotonic_offset_s
        ``monotonic() - now()``, in seconds.
    """

    def __init__(self, start_s: float = 0.0, monotonic_offset_s: float = 1000.0) -> None:
        self._now_s = float(start_s)
        self.monotonic_offset_s = float(monotonic_offset_s)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now_s

    def monotonic(self) -> float:
        with self._lock:
            return self._now_s + self.monotonic_offset_s

    def sleep_until(self, t_s: float) -> None:
        with self._lock:
            self._now_s = max(self._now_s, float(t_s))

    def advance(self, dt_s: float) -> None:
        """Move time forward by ``dt_s`` seconds (``>= 0``)."""
        if not dt_s >= 0:
            raise ValueError(f"ManualClock.advance: dt_s must be >= 0, got {dt_s}")
        with self._lock:
            self._now_s += float(dt_s)

    def __repr__(self) -> str:
        return f"<ManualClock | t={self.now():.6f} s>"
