"""The centre-out-and-back cursor task: targets, acquisition by hold, timeout.

Trials alternate between a peripheral target (one of ``n_targets`` on a circle of radius
``target_distance``, in seeded blocks that visit every target once) and the centre target, as
in Gilja et al. (2012). A trial starts the moment the previous one ends, with the cursor where
it is. The cursor acquires the cued target by staying inside its window (radius
``target_radius``) for ``hold_s``; leaving early breaks the hold (the trial goes on). Holding
inside any other target's window for ``hold_s`` is a wrong selection (except the target just
acquired, until the cursor has left it), and no acquisition
within ``timeout_s`` of the trial's start is a timeout; both fail the trial.

Positions are in the behaviour's position units (velocity units x seconds, e.g. cm). The task
is a pure state machine driven by ``update(cursor_xy, t_s)`` once per bin: no clock, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ldns_sim.errors import ConfigError

OUTCOMES = ("success", "timeout", "wrong_target")


@dataclass(frozen=True)
class TaskConfig:
    """Geometry and timing of the task.

    Attributes
    ----------
    target_distance
        Radius of the target circle (position units).
    target_radius
        Radius of each target's acceptance window (position units).
    n_targets
        Peripheral targets, evenly spaced, the first at angle 0.
    hold_s
        Time inside the window that acquires the target (seconds).
    timeout_s
        Time from a trial's start after which it fails (seconds).
    workspace_radius
        The cursor is kept inside this distance from the centre (position units).
    """

    target_distance: float
    target_radius: float
    n_targets: int = 8
    hold_s: float = 0.5
    timeout_s: float = 4.0
    workspace_radius: float = math.inf

    def __post_init__(self) -> None:
        if not (self.target_distance > 0 and 0 < self.target_radius < self.target_distance):
            raise ConfigError(f"task: needs 0 < target_radius < target_distance, got "
                              f"{self.target_radius} and {self.target_distance}")
        if self.n_targets < 2:
            raise ConfigError(f"task: n_targets must be >= 2, got {self.n_targets}")
        if not (self.hold_s >= 0 and self.timeout_s > self.hold_s):
            raise ConfigError(f"task: needs 0 <= hold_s < timeout_s, got {self.hold_s}, "
                              f"{self.timeout_s}")
        if not self.workspace_radius > self.target_distance:
            raise ConfigError(f"task: workspace_radius {self.workspace_radius} must exceed "
                              f"target_distance {self.target_distance}")

    @property
    def n_selectable(self) -> int:
        """Targets the cursor can select: the peripheral ones and the centre."""
        return self.n_targets + 1

    def target_positions(self) -> np.ndarray:
        """``(n_targets + 1, 2)``: index 0 is the centre, 1.. the peripheral targets."""
        angles = 2 * np.pi * np.arange(self.n_targets) / self.n_targets
        ring = self.target_distance * np.column_stack([np.cos(angles), np.sin(angles)])
        return np.vstack([np.zeros((1, 2)), ring])


@dataclass(frozen=True)
class TrialRecord:
    """One finished trial.

    Attributes
    ----------
    index
        Trial number, 0, 1, ...
    target_index
        Index into ``TaskConfig.target_positions()`` (0 = centre).
    start_s, end_s
        Trial start (target onset) and end, seconds on the session clock.
    outcome
        One of ``OUTCOMES``.
    straight_distance
        Distance from the cursor at the start to the edge of the target's window (position
        units).
    path_length
        Distance the cursor travelled from the start to the beginning of the final hold (for a
        success) or to the end (otherwise), position units.
    """

    index: int
    target_index: int
    target_xy: tuple[float, float]
    start_s: float
    end_s: float
    outcome: str
    straight_distance: float
    path_length: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


class CenterOutTask:
    """The task's state machine (see the module docstring).

    Parameters
    ----------
    config
        Geometry and timing.
    rng
        Draws the seed of the peripheral target order (one draw, at construction).
    start_s
        Session time of the first trial's start.
    """

    def __init__(self, config: TaskConfig, rng: np.random.Generator,
                 start_s: float = 0.0) -> None:
        self.config = config
        self.targets = config.target_positions()  # (n_targets + 1, 2)
        self._order_seed = int(rng.integers(0, 2**63 - 1))
        self.trials: list[TrialRecord] = []
        self._cursor = np.zeros(2)
        self.targets_entered_last: int | None = 0  # the cursor starts on the centre target
        self._begin_trial(0, float(start_s))

    # ------------------------------------------------------------------ trial bookkeeping
    def _target_for(self, trial: int) -> int:
        if trial % 2 == 1:
            return 0
        block, within = divmod(trial // 2, self.config.n_targets)
        order = np.random.default_rng([self._order_seed, block]).permutation(
            self.config.n_targets)
        return int(order[within]) + 1

    def _begin_trial(self, trial: int, t_s: float) -> None:
        self.trial = trial
        self.target_index = self._target_for(trial)
        self.trial_start_s = t_s
        self.start_cursor = self._cursor.copy()
        self.path_length = 0.0
        self.path_at_hold = 0.0
        self.hold_target: int | None = None  # target whose window the cursor is in
        self.hold_start_s = math.nan
        # the target just acquired cannot be selected again until the cursor has left it
        self._ignore: int | None = self.targets_entered_last

    @property
    def target_xy(self) -> np.ndarray:
        """``(2,)`` position of the cued target."""
        return self.targets[self.target_index]

    @property
    def inside(self) -> bool:
        """The cursor is inside the cued target's window."""
        return self.hold_target == self.target_index

    def clamp(self, cursor_xy: np.ndarray) -> np.ndarray:
        """``cursor_xy`` pulled back inside the workspace circle."""
        r = float(np.linalg.norm(cursor_xy))
        limit = self.config.workspace_radius
        return np.asarray(cursor_xy, float) * (limit / r) if r > limit else np.asarray(
            cursor_xy, float)

    def start_event(self) -> str:
        x, y = self.target_xy
        return f"trial_start:{self.trial}:target={self.target_index}:x={x:.4g}:y={y:.4g}"

    # ------------------------------------------------------------------ the state machine
    def update(self, cursor_xy: np.ndarray, t_s: float) -> list[str]:
        """Advance to time ``t_s`` with the cursor at ``cursor_xy``; return event markers.

        Markers: ``hold_start:TRIAL:TARGET``, ``hold_broken:TRIAL``, ``trial_end:TRIAL:OUTCOME``
        and then ``trial_start:...`` of the next trial.
        """
        cursor = np.asarray(cursor_xy, dtype=float)
        self.path_length += float(np.linalg.norm(cursor - self._cursor))
        self._cursor = cursor.copy()
        events: list[str] = []
        dist = np.linalg.norm(self.targets - cursor, axis=1)
        within = np.flatnonzero(dist <= self.config.target_radius)
        now_in = int(within[0]) if len(within) else None
        if now_in is not None and now_in == self._ignore:
            now_in = None
        elif now_in != self._ignore:
            self._ignore = None
        if now_in != self.hold_target:
            if self.hold_target is not None:
                events.append(f"hold_broken:{self.trial}")
            self.hold_target, self.hold_start_s = now_in, t_s
            self.path_at_hold = self.path_length
            if now_in is not None:
                events.append(f"hold_start:{self.trial}:{now_in}")
        outcome = None
        if self.hold_target is not None and t_s - self.hold_start_s >= self.config.hold_s - 1e-9:
            outcome = "success" if self.hold_target == self.target_index else "wrong_target"
        elif t_s - self.trial_start_s >= self.config.timeout_s - 1e-9:
            outcome = "timeout"
        if outcome is not None:
            events += self._end_trial(outcome, t_s)
        return events

    def _end_trial(self, outcome: str, t_s: float) -> list[str]:
        path = self.path_at_hold if outcome == "success" else self.path_length
        self.trials.append(TrialRecord(
            index=self.trial, target_index=self.target_index,
            target_xy=(float(self.target_xy[0]), float(self.target_xy[1])),
            start_s=self.trial_start_s, end_s=float(t_s), outcome=outcome,
            straight_distance=max(float(np.linalg.norm(self.target_xy - self.start_cursor))
                                  - self.config.target_radius, 0.0),
            path_length=path))
        events = [f"trial_end:{self.trial}:{outcome}"]
        self.targets_entered_last = self.hold_target
        self._begin_trial(self.trial + 1, float(t_s))
        return events + [self.start_event()]
