"""A scripted user: centre-out reaches to targets on a circle, as a function of time.

Each trial: reach from the centre to a target with a minimum-jerk profile (Flash & Hogan 1985:
position ``D (10 tau^3 - 15 tau^4 + 6 tau^5)``, bell-shaped speed peaking at
``1.875 D / reach_s`` at mid-reach), hold at the target, return the same way, hold at the
centre. Targets come in blocks of ``n_targets``, each block a seeded permutation, so every
target is visited once per block. Everything is a pure function of (seed, time): no thread,
no state that depends on when ``read`` is called.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ldns_sim.errors import ConfigError
from ldns_sim.realtime.condition import ConditionReading, ConditionSource

PEAK_FACTOR = 1.875
"""Peak speed of a minimum-jerk movement, in units of distance / duration (at tau = 0.5)."""

PHASES = ("reach", "hold", "return", "centre")


def min_jerk_position(tau: float) -> float:
    """Fraction of the distance covered at normalised time ``tau`` in [0, 1]."""
    tau = min(1.0, max(0.0, tau))
    return tau**3 * (10.0 - 15.0 * tau + 6.0 * tau**2)


def min_jerk_speed(tau: float) -> float:
    """d(position)/d(tau) at ``tau``: 0 at both ends, ``PEAK_FACTOR`` at 0.5."""
    if not 0.0 <= tau <= 1.0:
        return 0.0
    return 30.0 * tau**2 * (1.0 - tau) ** 2


@dataclass(frozen=True)
class CenterOutState:
    """Where the scripted user is in the task at one moment.

    Attributes
    ----------
    trial
        Trial number since the start (0, 1, ...; -1 before the start).
    target_index
        Index of this trial's target (0 .. n_targets-1; angle ``2 pi index / n_targets``).
    phase
        One of ``PHASES``: ``"reach"``, ``"hold"`` (at the target), ``"return"``, ``"centre"``.
    target_xy
        ``(2,)`` this trial's target position, in behaviour position units (velocity * s).
    goal_xy
        ``(2,)`` where the hand is heading now: the target while reaching and holding, the
        centre (0, 0) while returning and resting.
    """

    trial: int
    target_index: int
    phase: str
    target_xy: np.ndarray
    goal_xy: np.ndarray


class ScriptedCenterOut(ConditionSource):
    """A deterministic centre-out reaching user, driven by the engine clock.

    Parameters
    ----------
    n_targets
        Targets evenly spaced on a circle.
    reach_s, hold_s, return_s
        Durations (seconds) of the reach, the hold at the target and the return.
    peak_speed
        Peak hand speed of a reach, in the model's behaviour units (pass the model's
        ``velocity_scale``); the target distance follows as ``peak_speed * reach_s / 1.875``.
    rng
        Draws the seed of the target order (one draw, at construction).
    centre_hold_s
        Rest at the centre between trials (default: ``hold_s``).
    channel_names
        The model's two condition channel names.
    clock_now
        The engine clock; ``start()`` takes the task's time zero from it. Without it the
        first ``read`` sets time zero.
    start_s
        Explicit time zero on the engine clock (overrides ``clock_now``).
    """

    name = "script:center-out"

    def __init__(self, n_targets: int = 8, reach_s: float = 0.6, hold_s: float = 0.5,
                 return_s: float = 0.6, peak_speed: float = 30.0,
                 rng: np.random.Generator | None = None, *, centre_hold_s: float | None = None,
                 channel_names: Sequence[str] = ("vel_x", "vel_y"),
                 clock_now: Callable[[], float] | None = None,
                 start_s: float | None = None) -> None:
        centre_hold_s = hold_s if centre_hold_s is None else centre_hold_s
        durations = {"reach_s": reach_s, "hold_s": hold_s, "return_s": return_s,
                     "centre_hold_s": centre_hold_s}
        for field, value in durations.items():
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"script:center-out: {field} must be >= 0 seconds, got {value}")
        if reach_s <= 0 or return_s <= 0:
            raise ConfigError(f"script:center-out: reach_s and return_s must be > 0, got "
                              f"{reach_s}, {return_s}")
        if n_targets < 1:
            raise ConfigError(f"script:center-out: n_targets must be >= 1, got {n_targets}")
        if not (peak_speed > 0 and math.isfinite(peak_speed)):
            raise ConfigError(f"script:center-out: peak_speed must be positive, got {peak_speed}")
        if len(channel_names) != 2:
            raise ConfigError(f"script:center-out gives a 2-D velocity, but the model's "
                              f"condition has channels {tuple(channel_names)}")
        if rng is None:
            raise ConfigError("script:center-out needs an explicit np.random.Generator (rng)")
        self.n_targets = int(n_targets)
        self.reach_s, self.hold_s, self.return_s = float(reach_s), float(hold_s), float(return_s)
        self.centre_hold_s = float(centre_hold_s)
        self.peak_speed = float(peak_speed)
        self.distance = self.peak_speed * self.reach_s / PEAK_FACTOR
        self.trial_s = self.reach_s + self.hold_s + self.return_s + self.centre_hold_s
        self.channel_names = tuple(channel_names)
        self._order_seed = int(rng.integers(0, 2**63 - 1))
        self._block: tuple[int, np.ndarray] = (-1, np.arange(0))  # the last permutation
        self._clock_now = clock_now
        self.start_s = start_s

    # -- lifecycle and engine side ---------------------------------------------------------

    def start(self) -> ScriptedCenterOut:
        if self.start_s is None and self._clock_now is not None:
            self.start_s = float(self._clock_now())
        return self

    def read(self, now_s: float) -> ConditionReading:
        if self.start_s is None:
            self.start_s = float(now_s)
        return ConditionReading(self.velocity_at(now_s), now_s, now_s, True)

    # -- the script, a pure function of time -----------------------------------------------

    def target_index(self, trial: int) -> int:
        """Target of trial ``trial``: block ``trial // n_targets`` is a seeded permutation."""
        block, within = divmod(trial, self.n_targets)
        if self._block[0] != block:
            block_rng = np.random.default_rng([self._order_seed, block])
            self._block = (block, block_rng.permutation(self.n_targets))
        return int(self._block[1][within])

    def direction(self, target_index: int) -> np.ndarray:
        """``(2,)`` unit vector from the centre to target ``target_index``."""
        angle = 2.0 * math.pi * target_index / self.n_targets
        return np.array([math.cos(angle), math.sin(angle)])

    def _locate(self, now_s: float) -> tuple[int, str, float]:
        """(trial, phase, normalised time within a movement phase) at ``now_s``."""
        elapsed_s = now_s - (self.start_s if self.start_s is not None else now_s)
        if elapsed_s < 0:
            return -1, "centre", 0.0
        trial = int(elapsed_s // self.trial_s)
        t_s = elapsed_s - trial * self.trial_s
        if t_s < self.reach_s:
            return trial, "reach", t_s / self.reach_s
        t_s -= self.reach_s
        if t_s < self.hold_s:
            return trial, "hold", 1.0
        t_s -= self.hold_s
        if t_s < self.return_s:
            return trial, "return", t_s / self.return_s
        return trial, "centre", 1.0

    def velocity_at(self, now_s: float) -> np.ndarray:
        """``(2,)`` float32 hand velocity at ``now_s`` (engine clock), in behaviour units."""
        trial, phase, tau = self._locate(now_s)
        if phase == "reach":
            speed = self.distance / self.reach_s * min_jerk_speed(tau)
        elif phase == "return":
            speed = -self.distance / self.return_s * min_jerk_speed(tau)
        else:
            return np.zeros(2, dtype=np.float32)
        return (self.direction(self.target_index(trial)) * speed).astype(np.float32)

    def position_at(self, now_s: float) -> np.ndarray:
        """``(2,)`` hand position at ``now_s`` relative to the centre (velocity units * s)."""
        trial, phase, tau = self._locate(now_s)
        fraction = {"reach": min_jerk_position(tau), "hold": 1.0,
                    "return": 1.0 - min_jerk_position(tau)}.get(phase, 0.0)
        if trial < 0 or fraction == 0.0:
            return np.zeros(2)
        return self.direction(self.target_index(trial)) * self.distance * fraction

    def target_at(self, now_s: float) -> CenterOutState:
        """The task state at ``now_s``: trial, target, phase and the current goal."""
        trial, phase, _ = self._locate(now_s)
        index = self.target_index(max(trial, 0))
        target_xy = self.direction(index) * self.distance
        goal_xy = target_xy if phase in ("reach", "hold") and trial >= 0 else np.zeros(2)
        return CenterOutState(trial, index, phase, target_xy, goal_xy)

    def __repr__(self) -> str:
        return (f"<ScriptedCenterOut | {self.n_targets} targets | peak {self.peak_speed:g} | "
                f"reach {self.reach_s:g} s, hold {self.hold_s:g} s, return {self.return_s:g} s>")
