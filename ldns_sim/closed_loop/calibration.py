"""Calibration: an open-loop block of scripted reaches, decoders fitted on it, and ReFIT.

As on a rig: before the loop is closed, the user watches (or attempts) scripted centre-out
reaches while the spikes are recorded; the decoder is fitted to map those spikes to the
scripted velocity. Here the scripted velocity is ``ScriptedCenterOut`` (minimum-jerk reaches
out and back) driving the model, bin by bin, with the velocity at each bin's end.
``refit_on_session`` is the ReFIT recalibration on a closed-loop block.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ldns_sim.closed_loop.session import SessionLog
from ldns_sim.closed_loop.task import TaskConfig
from ldns_sim.closed_loop.user import UserConfig
from ldns_sim.core import ChunkGenerator
from ldns_sim.decoders import Decoder, RefitKalmanFilter, make_decoder
from ldns_sim.errors import ConfigError
from ldns_sim.sources.script_source import ScriptedCenterOut

#: Defaults of the scripted reaches (seconds), shared by calibration, user and task.
REACH_S = 0.6
HOLD_S = 0.5


@dataclass(frozen=True)
class CalibrationBlock:
    """Counts and the velocity that drove them, one segment per scripted trial.

    Attributes
    ----------
    counts
        One ``(n_bins_i, n_neurons)`` array per segment.
    velocity
        One ``(n_bins_i, 2)`` array per segment, behaviour units.
    """

    counts: list[np.ndarray]
    velocity: list[np.ndarray]

    @property
    def n_bins(self) -> int:
        return int(sum(len(c) for c in self.counts))


def calibration_block(generator: ChunkGenerator, duration_s: float, peak_speed: float,
                      rng: np.random.Generator, reach_s: float = REACH_S,
                      hold_s: float = HOLD_S, progress=None) -> CalibrationBlock:
    """Drive ``generator`` open loop with scripted centre-out reaches for ``duration_s``.

    Parameters
    ----------
    generator
        One bin per chunk, 2-D velocity condition.
    duration_s
        Length of the block (seconds of stream time).
    peak_speed
        Peak reach speed, behaviour units (the model's ``velocity_scale``).
    rng
        Draws the target order.
    progress
        Optional callable, called with 1 after each bin.
    """
    if generator.bins_per_chunk != 1:
        raise ConfigError("calibration: the generator must emit one bin per chunk")
    script = ScriptedCenterOut(reach_s=reach_s, hold_s=hold_s, return_s=reach_s,
                               peak_speed=peak_speed, rng=rng, start_s=0.0)
    bin_s = generator.bin_s
    n_bins = int(round(duration_s / bin_s))
    per_trial = max(int(round(script.trial_s / bin_s)), 2)
    counts, velocity = [], []
    for k in range(n_bins):
        v = script.velocity_at((k + 1) * bin_s)
        counts.append(generator.next_chunk(v.reshape(1, 2)).counts[0])
        velocity.append(v)
        if progress is not None:
            progress(1)
    counts_arr = np.asarray(counts, dtype=np.float64)
    velocity_arr = np.asarray(velocity, dtype=np.float64)
    edges = list(range(0, n_bins, per_trial))
    return CalibrationBlock([counts_arr[i:i + per_trial] for i in edges],
                            [velocity_arr[i:i + per_trial] for i in edges])


def fit_decoder(kind: str, block: CalibrationBlock, **options) -> Decoder:
    """A ``kind`` decoder fitted on ``block``."""
    return make_decoder(kind, **options).fit(block.counts, block.velocity)


def screen_at_bin_start(cursor_end: np.ndarray, target: np.ndarray,
                        target_radius: float) -> tuple[np.ndarray, np.ndarray]:
    """``(cursor (n, 2), inside (n,))``: the screen when each bin's spikes were made.

    ``cursor_end`` (a ``SessionLog``'s ``cursor``) holds the cursor at each bin's end, after
    that bin's own decoded step; the cursor at bin k's start is the one at bin k-1's end (the
    centre for bin 0: the log must start at the session's start). ``inside``: that cursor
    within ``target_radius`` of the bin's cued ``target``.
    """
    cursor = np.vstack([np.zeros((1, 2)), np.asarray(cursor_end, float)[:-1]])
    return cursor, np.linalg.norm(cursor - target, axis=1) <= target_radius


def refit_on_session(decoder: RefitKalmanFilter, log: SessionLog,
                     task: TaskConfig) -> RefitKalmanFilter:
    """ReFIT: refit ``decoder``'s observation model on the closed-loop block in ``log``.

    Bin k's intended velocity is judged from the screen at the bin's start
    (``screen_at_bin_start``), as Gilja et al. (2012) judge it from the position the decoder
    state held when the spikes arrived: aiming from the cursor at the bin's end would put bin
    k's own decoding noise into its label.
    """
    a = log.arrays()
    cursor, inside = screen_at_bin_start(a["cursor"], a["target"], task.target_radius)
    return decoder.refit([a["counts"]], [a["decoded"]], [cursor], [a["target"]], [inside])


def default_task(velocity_scale: float, n_targets: int = 8, hold_s: float = HOLD_S,
                 timeout_s: float = 4.0, radius_fraction: float = 0.3) -> TaskConfig:
    """The task matched to a model: targets at the distance a scripted reach covers.

    ``target_distance = velocity_scale * REACH_S / 1.875`` (the calibration reach), window
    radius ``radius_fraction`` of it, workspace 1.5 times it.
    """
    if not (math.isfinite(velocity_scale) and velocity_scale > 0):
        raise ConfigError(f"task: the model's velocity_scale must be > 0, got {velocity_scale}")
    distance = UserConfig(peak_speed=velocity_scale, reach_s=REACH_S).reach_distance
    return TaskConfig(target_distance=distance, target_radius=radius_fraction * distance,
                      n_targets=n_targets, hold_s=hold_s, timeout_s=timeout_s,
                      workspace_radius=1.5 * distance)


def default_user(velocity_scale: float, **overrides) -> UserConfig:
    """The scripted user matched to a model: peak speed ``velocity_scale``."""
    return UserConfig(peak_speed=velocity_scale, reach_s=REACH_S, **overrides)
