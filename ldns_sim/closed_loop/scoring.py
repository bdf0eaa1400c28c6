"""Closed-loop performance: success rate, time to target, path efficiency, achieved bitrate.

Computed over finished trials (a trial still running when the session stops is left out):

- **success rate**: successes / finished trials;
- **time to target**: start of the trial (target onset) to acquisition, i.e. the end of the
  successful hold, so it includes ``hold_s`` (seconds; successful trials; mean and median);
- **path efficiency**: straight distance from the cursor at target onset to the edge of the
  target's window, over the length of the path the cursor took from onset to the start of
  the final hold (1 is a straight line; successful trials; mean);
- **achieved bitrate** (Nuyujukian et al. 2015, IEEE TBME, the definition they call "achieved
  bitrate"): ``B = log2(N - 1) * max(S_c - S_i, 0) / t`` bits/s, with ``N`` the number of
  selectable targets (the peripheral ones and the centre), ``S_c`` correct selections
  (successes), ``S_i`` incorrect ones (holds on a wrong target) and ``t`` the time spent on the
  finished trials. A timeout selects nothing but its time counts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from ldns_sim.closed_loop.task import TrialRecord


@dataclass(frozen=True)
class Scores:
    """Closed-loop scores of a set of trials (module docstring for definitions)."""

    n_trials: int
    n_success: int
    n_timeout: int
    n_wrong_target: int
    success_rate: float
    time_to_target_s: float
    time_to_target_median_s: float
    path_efficiency: float
    bitrate_bps: float
    time_s: float

    def as_dict(self) -> dict:
        return asdict(self)


def achieved_bitrate(n_selectable: int, n_correct: int, n_incorrect: int, time_s: float) -> float:
    """Nuyujukian et al. (2015) achieved bitrate in bits/s (0 when no time has passed)."""
    if time_s <= 0 or n_selectable < 2:
        return 0.0
    return math.log2(n_selectable - 1) * max(n_correct - n_incorrect, 0) / time_s


def score_trials(trials: Sequence[TrialRecord], n_selectable: int) -> Scores:
    """Scores of finished ``trials`` in a task with ``n_selectable`` targets."""
    outcomes = [t.outcome for t in trials]
    success = [t for t in trials if t.outcome == "success"]
    times = np.array([t.duration_s for t in success])
    efficiency = np.array([min(t.straight_distance / t.path_length, 1.0) if t.path_length > 0
                           else 1.0 for t in success])
    time_s = float(sum(t.duration_s for t in trials))
    n_wrong = outcomes.count("wrong_target")
    nan = float("nan")
    return Scores(
        n_trials=len(trials), n_success=len(success), n_timeout=outcomes.count("timeout"),
        n_wrong_target=n_wrong,
        success_rate=len(success) / len(trials) if trials else nan,
        time_to_target_s=float(times.mean()) if len(times) else nan,
        time_to_target_median_s=float(np.median(times)) if len(times) else nan,
        path_efficiency=float(efficiency.mean()) if len(efficiency) else nan,
        bitrate_bps=achieved_bitrate(n_selectable, len(success), n_wrong, time_s),
        time_s=time_s)
