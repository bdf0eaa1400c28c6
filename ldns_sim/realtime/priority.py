"""Real-time scheduling of the calling thread (Linux ``SCHED_FIFO``), for the engine's loop and
the condition sources' input threads."""

from __future__ import annotations

import logging
import os


def raise_to_fifo(priority: int, who: str, log: logging.Logger) -> tuple | None:
    """Run the calling thread ``SCHED_FIFO`` at ``priority``. Returns its previous
    ``(policy, param)`` to restore later, or None when refused (no permission, not Linux): a
    warning naming ``who`` on ``log``, and the thread keeps its normal priority."""
    try:
        old = (os.sched_getscheduler(0), os.sched_getparam(0))
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (AttributeError, OSError) as error:
        log.warning("%s stays at normal priority: SCHED_FIFO %d refused (%s); allow it with "
                    "CAP_SYS_NICE or an rtprio limit (ulimit -r)", who, priority, error)
        return None
    log.info("%s runs SCHED_FIFO at priority %d", who, priority)
    return old
