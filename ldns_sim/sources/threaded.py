"""What every device-backed condition source shares: a worker thread that feeds a LinkState.

The worker (gamepad poll, window loop, LSL pull, ZMQ receive) pushes samples into
``self._link``; the engine reads the newest value and the lost/restored markers from it.
Subclasses set ``self._link``, ``self._stop`` (a ``threading.Event``) and ``self._thread``.
"""

from __future__ import annotations

import logging
import threading

from ldns_sim.realtime.condition import ConditionReading, ConditionSource
from ldns_sim.realtime.priority import raise_to_fifo
from ldns_sim.sources.link_state import LinkState

log = logging.getLogger(__name__)


class ThreadedSource(ConditionSource):
    """Base of the sources whose samples arrive on a worker thread."""

    _link: LinkState
    _stop: threading.Event
    _thread: threading.Thread | None
    _worker_rt_priority: int | None = None

    def set_worker_priority(self, rt_priority: int | None) -> None:
        self._worker_rt_priority = rt_priority

    def _raise_worker_priority(self) -> None:
        """First thing in a worker that blocks on its input (LSL, ZMQ): ``SCHED_FIFO`` at the
        priority asked for (``set_worker_priority``), if any. Refused: a warning, and the worker
        runs at normal priority. A polling worker (gamepad, window) must not call it."""
        if self._worker_rt_priority is not None:
            raise_to_fifo(self._worker_rt_priority,
                          f"{getattr(self, 'name', type(self).__name__)}: input thread", log)

    def read(self, now_s: float) -> ConditionReading:
        return self._link.reading(now_s)

    def drain_events(self) -> list[str]:
        return self._link.drain_events()

    def wait_for_data(self, timeout_s: float) -> bool:
        return self._link.first_sample.wait(timeout_s)

    @property
    def n_rejected(self) -> int:
        """Samples rejected so far (NaN/Inf or malformed)."""
        return sum(self._link.n_rejected.values())

    @property
    def n_samples(self) -> int:
        return self._link.n_samples

    def _start_worker(self, args: tuple, thread_name: str, timeout_s: float,
                      timeout_error: Exception) -> None:
        """Start ``self._run(*args)`` and wait until it sets ``self._ready``.

        The worker reports a failure to open its device through ``self._start_error``; that
        error (or ``timeout_error`` if the worker does not get ready within ``timeout_s``) is
        raised here after the worker is stopped.
        """
        self._stop.clear()
        self._ready.clear()
        self._start_error = None
        self._thread = threading.Thread(target=self._run, args=args, name=thread_name,
                                        daemon=True)
        self._thread.start()
        ready = self._ready.wait(timeout_s)
        if not ready or self._start_error is not None:
            error = self._start_error if self._start_error is not None else timeout_error
            self.stop()
            raise error

    def _join_worker(self) -> bool:
        """Stop and join the worker thread; True if one had been started (even if it had died
        or does not end within 2 s), False otherwise (stop is idempotent)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return False
        self._stop.set()
        thread.join(timeout=2.0)
        return True
