"""A person in the closed loop: their joystick or mouse is the intended velocity.

The logic of the human mode, without pygame (``closed_loop.window`` is the thin pygame part):

- ``HumanUser`` is the session's user: each bin, ``act()`` reads the input device (joystick
  axes, or the mouse's movement over the last bin) as the intended velocity that conditions
  the model, exactly where the scripted user's intention goes. It sees nothing itself: the
  person watches the decoded cursor on the screen and corrects, which closes the loop.
- ``run_interactive`` steps a ``ClosedLoopSession`` bin by bin (the session paces itself on
  its clock), pumps the window's events between bins (a quit request ends the run early, input
  device events become markers) and redraws the task after each bin.
- ``ScreenMap`` maps task positions to pixels; ``TaskView`` is what one frame shows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ldns_sim.closed_loop.session import ClosedLoopSession, SessionLog
from ldns_sim.closed_loop.task import TaskConfig
from ldns_sim.errors import ConfigError
from ldns_sim.realtime.clock import Clock

#: A person's intended speed is clipped at this multiple of the model's ``velocity_scale``
#: (its typical peak speed): a flick of the mouse must not drive the model far outside the
#: velocities it was trained on.
MAX_SPEED_FACTOR = 1.5


class InputDevice(Protocol):
    """A person's input, read once per bin (``closed_loop.window`` has the pygame ones)."""

    name: str
    description: str

    def velocity(self) -> np.ndarray:
        """``(2,)`` intended velocity now, behaviour units (+y up)."""
        ...

    def reset(self) -> None:
        """Forget input gathered so far (before a block starts)."""
        ...


@dataclass(frozen=True)
class PumpResult:
    """What the window's event queue held since the last pump.

    Attributes
    ----------
    quit_reason
        ``"window closed"`` or ``"escape"`` once the person asked to stop, else ``None``.
    markers
        Events of the input device (``condition_lost:joystick``, ...), to be recorded.
    """

    quit_reason: str | None = None
    markers: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScreenMap:
    """Task positions (behaviour position units, +y up) to window pixels (+y down).

    Attributes
    ----------
    window_px
        Side of the square window.
    workspace_radius
        Task workspace radius; it fills the window less ``margin_px`` on each side.
    margin_px
        Free border around the workspace.
    """

    window_px: int
    workspace_radius: float
    margin_px: int = 24

    def __post_init__(self) -> None:
        if self.window_px < 4 * self.margin_px or self.margin_px < 0:
            raise ConfigError(f"window: window_px {self.window_px} must be at least 4 times "
                              f"the margin {self.margin_px}")
        if not (math.isfinite(self.workspace_radius) and self.workspace_radius > 0):
            raise ConfigError(f"window: the task needs a finite workspace radius to be drawn, "
                              f"got {self.workspace_radius}")

    @property
    def px_per_unit(self) -> float:
        return (self.window_px / 2 - self.margin_px) / self.workspace_radius

    def to_px(self, xy: Sequence[float]) -> tuple[int, int]:
        """Window pixel of task position ``xy``."""
        centre = self.window_px / 2
        return (int(round(centre + xy[0] * self.px_per_unit)),
                int(round(centre - xy[1] * self.px_per_unit)))

    def length_px(self, length: float) -> int:
        return max(1, int(round(length * self.px_per_unit)))


def mouse_motion_to_velocity(rel_px: Sequence[float], bin_s: float, px_per_unit: float,
                             gain: float = 1.0) -> np.ndarray:
    """Mouse movement over one bin -> ``(2,)`` float32 intended velocity.

    ``rel_px`` is the movement in screen pixels (y grows downwards). With ``gain`` 1, moving the
    mouse by as many pixels as a target is away on the screen is an intention to move the
    cursor onto it: velocity = ``gain * rel_px / px_per_unit / bin_s``, +y up.
    """
    v = gain * np.array([rel_px[0], -rel_px[1]], dtype=np.float64) / (px_per_unit * bin_s)
    return v.astype(np.float32)


class HumanUser:
    """The session's user when a person drives: the input device's velocity, speed-clipped.

    Parameters
    ----------
    device
        Read once per bin, at the bin's start.
    max_speed
        Intended speeds above this (behaviour units) are scaled down to it, direction kept.
    """

    def __init__(self, device: InputDevice, max_speed: float) -> None:
        if not (math.isfinite(max_speed) and max_speed > 0):
            raise ConfigError(f"human user: max_speed must be > 0, got {max_speed}")
        self.device = device
        self.max_speed = float(max_speed)

    def act(self) -> np.ndarray:
        v = np.asarray(self.device.velocity(), dtype=np.float64).reshape(2)
        if not np.all(np.isfinite(v)):
            v = np.zeros(2)
        speed = float(np.hypot(*v))
        if speed > self.max_speed:
            v = v * (self.max_speed / speed)
        return v.astype(np.float32)

    def observe(self, cursor_xy: np.ndarray, target_xy: np.ndarray, trial: int) -> None:
        """Nothing to do: the person sees the window."""


@dataclass(frozen=True)
class TaskView:
    """Everything one frame of the task window shows (positions in task units).

    Attributes
    ----------
    phase
        What is running (``"ReFIT block"``, ``"session"``).
    cursor_xy, target_xy
        The decoded cursor and the cued target.
    targets_xy
        Every selectable target (centre first).
    target_radius, workspace_radius
        Acceptance window and workspace radii.
    hold_fraction
        Progress of the current hold on the cued target, 0 (not inside) to 1.
    trial, n_success
        Trial number and successes so far.
    seconds_left
        Until the block ends.
    """

    phase: str
    cursor_xy: tuple[float, float]
    target_xy: tuple[float, float]
    targets_xy: tuple[tuple[float, float], ...]
    target_radius: float
    workspace_radius: float
    hold_fraction: float
    trial: int
    n_success: int
    seconds_left: float


def task_view(session: ClosedLoopSession, phase: str, seconds_left: float) -> TaskView:
    """The frame that shows ``session`` now."""
    task = session.task
    cfg = task.config
    hold = 0.0
    if task.inside:
        held = session.t_s - task.hold_start_s
        hold = 1.0 if cfg.hold_s <= 0 else min(max(held / cfg.hold_s, 0.0), 1.0)
    return TaskView(
        phase=phase, cursor_xy=_pair(session.cursor), target_xy=_pair(task.target_xy),
        targets_xy=tuple(_pair(p) for p in task.targets), target_radius=cfg.target_radius,
        workspace_radius=cfg.workspace_radius, hold_fraction=hold, trial=task.trial,
        n_success=sum(t.outcome == "success" for t in task.trials),
        seconds_left=max(float(seconds_left), 0.0))


def _pair(xy) -> tuple[float, float]:
    return float(xy[0]), float(xy[1])


class Frontend(Protocol):
    """The window: its event queue and its drawing (``closed_loop.window.TaskWindow``)."""

    def pump(self) -> PumpResult:
        ...

    def draw(self, view: TaskView) -> None:
        ...

    def message(self, text: str, fraction: float | None = None) -> None:
        """A text screen (with a progress bar if ``fraction`` is given)."""
        ...


class StoppedByUser(KeyboardInterrupt):
    """The person closed the window (or pressed Esc) before the scored session.

    An interruption like Ctrl-C (the command exits 130, nothing scored), not an error.
    """

    def __init__(self, reason: str, during: str) -> None:
        super().__init__(f"{reason} during the {during}")
        self.reason, self.during = reason, during


def run_interactive(session: ClosedLoopSession, frontend: Frontend, duration_s: float,
                    phase: str, progress: Callable[[int], object] | None = None
                    ) -> tuple[SessionLog, str | None]:
    """Run ``session`` with a person for ``duration_s`` or until they quit.

    Per bin: pump the window's events (device markers go to the session; a quit request ends
    the run), ``session.step()`` (the user reads the device; the session paces the bin on its
    clock), redraw. Input from before the start is dropped. Returns the log (with the finished
    trials) and the quit reason (``None`` when the whole duration ran).
    """
    n_bins = int(round(duration_s / session.bin_s))
    quit_reason = _pump(session, frontend)
    if isinstance(session.user, HumanUser):
        session.user.device.reset()  # input from before the block is not an intention in it
    frontend.draw(task_view(session, phase, duration_s))
    for k in range(n_bins):
        if quit_reason is not None:
            break
        session.step()
        frontend.draw(task_view(session, phase, (n_bins - k - 1) * session.bin_s))
        if progress is not None:
            progress(1)
        if k + 1 < n_bins:
            quit_reason = _pump(session, frontend)
    session.log.trials = list(session.task.trials)
    return session.log, quit_reason


def _pump(session: ClosedLoopSession, frontend: Frontend) -> str | None:
    pumped = frontend.pump()
    for text in pumped.markers:
        session.mark(text)
    return pumped.quit_reason


def message_progress(frontend: Frontend, text: str, total_bins: int, every_bins: int = 20,
                     also: Callable[[int], object] | None = None) -> Callable[[int], None]:
    """A ``progress`` callback for a block run without the person (open-loop calibration).

    Every ``every_bins`` bins it shows ``text`` with a progress bar and pumps the window so it
    stays responsive; a quit request raises ``StoppedByUser``. ``also`` gets every call too.
    """
    done = [0]

    def progress(n: int) -> None:
        if also is not None:
            also(n)
        done[0] += n
        if done[0] % every_bins:
            return
        reason = frontend.pump().quit_reason
        if reason is not None:
            raise StoppedByUser(reason, text)
        frontend.message(text, done[0] / max(total_bins, 1))

    return progress


def interactive_block(frontend: Frontend, user: HumanUser, task: TaskConfig, clock: Clock,
                      phase: str, progress: Callable[[int], object] | None = None):
    """A closed-loop block with the person, for ``calibrated_decoder`` (the ReFIT block).

    Returns ``run(generator, decoder, duration_s, rng) -> SessionLog``: a session paced on
    ``clock``, shown in ``frontend``; quitting raises ``StoppedByUser``.
    """

    def run(generator, decoder, duration_s: float, rng: np.random.Generator) -> SessionLog:
        session = ClosedLoopSession(generator, decoder, task, user, rng, t0_s=clock.now(),
                                    clock=clock)
        log, reason = run_interactive(session, frontend, duration_s, phase, progress)
        if reason is not None:
            raise StoppedByUser(reason, phase)
        return log

    return run
