"""``ldns-sim closed-loop --user joystick|mouse``: the pieces the command wires in.

``human_mode(kind, ...)`` opens the task window (first, so that no display or no gamepad
fails before any work is done) and yields a ``HumanMode``, or ``None`` for the scripted user.
The open-loop calibration still runs as fast as the model generates (the window shows its
progress); the ReFIT block and the scored session are run with the person, paced on the LSL
clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ldns_sim.closed_loop.calibration import default_task
from ldns_sim.closed_loop.human import (
    MAX_SPEED_FACTOR,
    HumanUser,
    interactive_block,
    message_progress,
    run_interactive,
)
from ldns_sim.closed_loop.session import ClosedLoopSession, SessionLog


class HumanMode:
    """A person at the task window: their user, the clock, and how each block runs.

    Parameters
    ----------
    window
        The open ``TaskWindow`` (closed by ``human_mode``).
    velocity_scale
        The model's typical peak speed (behaviour units).
    clock
        The pacing clock (an ``LslClock``).
    """

    def __init__(self, window, velocity_scale: float, clock) -> None:
        self.window = window
        self.task = default_task(velocity_scale)
        self.user = HumanUser(window.device, MAX_SPEED_FACTOR * velocity_scale)
        self.clock = clock
        self.stopped: str | None = None

    def calibration_progress(self, total_bins: int,
                             also: Callable[[int], object]) -> Callable[[int], None]:
        """Progress callback for the open-loop blocks (keeps the window responsive)."""
        return message_progress(self.window, "calibrating the decoder (open loop, scripted "
                                "reaches)", total_bins, also=also)

    def refit_block(self, progress: Callable[[int], object]):
        """``closed_loop_block`` for ``calibrated_decoder``: the ReFIT block with the person."""
        return interactive_block(self.window, self.user, self.task, self.clock, "ReFIT block",
                                 progress)

    def run(self, session: ClosedLoopSession, duration_s: float,
            progress: Callable[[int], object]) -> SessionLog:
        """The scored session with the person; ``stopped`` says if they quit early."""
        log, self.stopped = run_interactive(session, self.window, duration_s, "session",
                                            progress)
        return log

    def facts(self) -> dict:
        """What the NWB file records about the person's session."""
        return {"input": self.window.device.description, "stopped": self.stopped,
                "max_speed": self.user.max_speed}


@contextmanager
def human_mode(kind: str, velocity_scale: float, bin_s: float) -> Iterator[HumanMode | None]:
    """``None`` for ``kind == "script"``; else the open window as a ``HumanMode``."""
    if kind == "script":
        yield None
        return
    from ldns_sim.closed_loop.window import open_task_window
    from ldns_sim.lsl_config import configure_lsl
    from ldns_sim.realtime.clock import LslClock

    window = open_task_window(kind, default_task(velocity_scale), bin_s, velocity_scale)
    try:
        configure_lsl()
        yield HumanMode(window, velocity_scale, LslClock())
    finally:
        window.close()
