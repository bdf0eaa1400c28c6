"""Clean shutdown on Ctrl-C and SIGTERM, for the command line."""

from __future__ import annotations

import logging
import signal

from ldns_sim.realtime.engine import Engine

logger = logging.getLogger(__name__)


def install_signal_handlers(engine: Engine) -> dict[int, object]:
    """Make SIGINT and SIGTERM stop ``engine`` cleanly; call from the main thread only.

    The handler only asks the engine to stop (markers written, sinks closed by the loop); a
    second signal restores the previous handlers, so a third Ctrl-C interrupts a stuck
    shutdown as usual.

    Returns
    -------
    dict
        The previous handlers by signal number, for ``signal.signal`` to restore.
    """
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum, frame) -> None:
        if engine.stop_requested:
            for sig, old in previous.items():
                signal.signal(sig, old)
        logger.info("signal %d: stopping the stream", signum)
        engine.request_stop()

    for sig in previous:
        signal.signal(sig, handler)
    return previous
