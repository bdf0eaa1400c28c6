"""A scripted user for the closed loop: aims the intended velocity from the cursor at the target.

What the user does, once per bin (all seeded, so a session is reproducible):

- **Sees late.** The user acts on what the screen showed ``reaction_s`` ago (cursor position,
  cued target, trial number): visuomotor delay, about 200 ms in monkeys and people.
- **Predicts** (``predictive=True``, the default): like people, who compensate for their
  feedback delay with an internal forward model (Miall & Wolpert 1996), the user adds to the
  seen cursor the displacement its own intended velocities of the last ``reaction_s`` would
  have produced (an efference copy). With an ideal decoder the prediction is exact; with a
  real one, every mismatch between intended and decoded velocity shows up as error the user
  corrects only once it is seen, which is what closed-loop testing is about.
- **Aims** along the unit vector from that estimated cursor to the seen target.
- **Speed profile.** ``speed = peak_speed * min(rise(tau), distance / brake_distance)``:
  ``rise`` is the accelerating half of a minimum-jerk reach (Flash & Hogan 1985, the
  ``script_source`` helpers) over ``reach_s / 2`` after the user sees a new target
  (``tau = time since seen onset / reach_s``; ``rise = 1`` from ``tau = 0.5`` on), and the
  distance term brakes in proportion to the remaining distance, so the user slows into the
  target and holds still inside it whatever the decoder did on the way.
- **Noise.** Direction noise (radians) and relative speed noise, each an AR(1) process with
  correlation time ``noise_tau_s`` and stationary standard deviation ``direction_noise_rad``
  and ``speed_noise``; the speed factor ``1 + noise`` is clipped at 0.

The intended velocity is in the model's behaviour units: it is the condition the model is
driven by, exactly as a real user's hand (or attempted) velocity would be.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ldns_sim.errors import ConfigError
from ldns_sim.sources.script_source import PEAK_FACTOR, min_jerk_speed


class User(Protocol):
    """What a closed-loop session needs from whoever drives it (scripted or a person)."""

    def act(self) -> np.ndarray:
        """``(2,)`` float32 intended velocity for the next bin, behaviour units."""
        ...

    def observe(self, cursor_xy: np.ndarray, target_xy: np.ndarray, trial: int) -> None:
        """What the screen shows at the end of a bin."""
        ...


@dataclass(frozen=True)
class UserConfig:
    """Parameters of the scripted user (see the module docstring).

    Attributes
    ----------
    peak_speed
        Peak intended speed, behaviour units (pass the model's ``velocity_scale``).
    reach_s
        Duration of the min-jerk reach whose first half shapes the speed's rise (s).
    brake_distance
        Distance from the target under which speed falls in proportion (position units).
    reaction_s
        Visual feedback delay (s), rounded to whole bins.
    direction_noise_rad
        Stationary sd of the aiming-direction noise (radians).
    speed_noise
        Stationary sd of the relative speed noise.
    noise_tau_s
        Correlation time of both noises (s).
    predictive
        Compensate the feedback delay with an efference copy (see the module docstring).
    """

    peak_speed: float
    reach_s: float = 0.6
    brake_distance: float = 0.0
    """0: half the distance a min-jerk reach of ``reach_s`` at ``peak_speed`` covers."""
    reaction_s: float = 0.2
    direction_noise_rad: float = 0.2
    speed_noise: float = 0.15
    noise_tau_s: float = 0.15
    predictive: bool = True
    """Correct the delayed view with the efference copy of the last ``reaction_s``."""

    def __post_init__(self) -> None:
        positive = {"peak_speed": self.peak_speed, "reach_s": self.reach_s,
                    "noise_tau_s": self.noise_tau_s}
        for name, value in positive.items():
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"scripted user: {name} must be > 0, got {value}")
        non_negative = {"brake_distance": self.brake_distance, "reaction_s": self.reaction_s,
                        "direction_noise_rad": self.direction_noise_rad,
                        "speed_noise": self.speed_noise}
        for name, value in non_negative.items():
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"scripted user: {name} must be >= 0, got {value}")

    @property
    def reach_distance(self) -> float:
        """Distance a min-jerk reach of ``reach_s`` with peak ``peak_speed`` covers."""
        return self.peak_speed * self.reach_s / PEAK_FACTOR

    @property
    def effective_brake_distance(self) -> float:
        return self.brake_distance or 0.5 * self.reach_distance


class ScriptedUser:
    """The scripted user, stepped once per bin.

    Parameters
    ----------
    config
        Behaviour parameters.
    bin_s
        Bin width (s).
    rng
        Draws the noise.
    """

    def __init__(self, config: UserConfig, bin_s: float, rng: np.random.Generator) -> None:
        self.config = config
        self.bin_s = float(bin_s)
        self.rng = rng
        self.delay_bins = int(round(config.reaction_s / bin_s))
        self._seen: deque[tuple[np.ndarray, np.ndarray, int]] = deque(
            maxlen=self.delay_bins + 1)
        self._rho = math.exp(-self.bin_s / config.noise_tau_s)
        self._noise = np.zeros(2)  # (direction rad, relative speed)
        self._sent: deque[np.ndarray] = deque(maxlen=max(self.delay_bins, 1))
        self._trial_seen = -1
        self._bins_since_onset = 0

    def observe(self, cursor_xy: np.ndarray, target_xy: np.ndarray, trial: int) -> None:
        """What the screen shows at the end of this bin."""
        self._seen.append((np.asarray(cursor_xy, float).copy(),
                           np.asarray(target_xy, float).copy(), int(trial)))

    def act(self) -> np.ndarray:
        """``(2,)`` float32 intended velocity for the next bin, from the delayed view."""
        velocity = self._aim()
        self._sent.append(velocity.astype(float))
        return velocity

    def _aim(self) -> np.ndarray:
        cfg = self.config
        sd = np.array([cfg.direction_noise_rad, cfg.speed_noise])
        self._noise = (self._rho * self._noise
                       + math.sqrt(1 - self._rho**2) * sd * self.rng.standard_normal(2))
        if len(self._seen) <= self.delay_bins:
            return np.zeros(2, np.float32)  # nothing seen yet, reaction_s after the start
        cursor, target, trial = self._seen[0]
        if self.config.predictive and self.delay_bins > 0:
            cursor = cursor + self.bin_s * np.sum(self._sent, axis=0)
        if trial != self._trial_seen:
            self._trial_seen, self._bins_since_onset = trial, 0
        tau = self._bins_since_onset * self.bin_s / cfg.reach_s
        self._bins_since_onset += 1
        rise = 1.0 if tau >= 0.5 else min_jerk_speed(tau) / PEAK_FACTOR
        offset = target - cursor
        distance = float(np.linalg.norm(offset))
        if distance == 0.0:
            return np.zeros(2, np.float32)
        speed = cfg.peak_speed * min(rise, distance / cfg.effective_brake_distance)
        speed *= max(0.0, 1.0 + self._noise[1])
        angle = math.atan2(offset[1], offset[0]) + self._noise[0]
        return (speed * np.array([math.cos(angle), math.sin(angle)])).astype(np.float32)
