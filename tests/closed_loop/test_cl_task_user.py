"""The task's state machine on scripted cursors, scoring by hand, and the scripted user."""

import math

import numpy as np
import pytest

from ldns_sim.closed_loop import (
    CenterOutTask,
    ClosedLoopSession,
    TaskConfig,
    UserConfig,
    achieved_bitrate,
    default_task,
    default_user,
    score_trials,
)
from ldns_sim.errors import ConfigError
from ldns_sim.testing import TuningCurveGenerator

BIN_S = 0.05
CFG = TaskConfig(target_distance=1.0, target_radius=0.2, n_targets=4, hold_s=0.2, timeout_s=1.0,
                 workspace_radius=1.5)


def _drive(task, positions, t0=0.0):
    events = []
    for k, p in enumerate(positions):
        events += task.update(np.asarray(p, float), t0 + (k + 1) * BIN_S)
    return events


def test_straight_reach_and_hold_acquires_with_efficiency_one():
    task = CenterOutTask(CFG, np.random.default_rng(0))
    target = task.target_xy.copy()
    path = [target * f for f in np.linspace(0.2, 1.0, 5)] + [target] * 4
    events = _drive(task, path)
    assert task.trials[0].outcome == "success"
    assert "trial_end:0:success" in events and events[-1].startswith("trial_start:1:target=0")
    # inside from bin 5 (t = 0.2 s, distance 0 <= 0.2), acquired after hold_s at t = 0.4 s
    assert task.trials[0].end_s == pytest.approx(0.4)
    assert score_trials(task.trials, CFG.n_selectable).path_efficiency == pytest.approx(1.0)
    assert task.trial == 1 and np.allclose(task.target_xy, 0.0)  # back to the centre


def test_leaving_early_breaks_the_hold_and_timeout_fails():
    task = CenterOutTask(CFG, np.random.default_rng(0))
    target = task.target_xy.copy()
    events = _drive(task, [target, target, np.zeros(2) + 0.5 * target] + [0.5 * target] * 20)
    assert "hold_broken:0" in events
    assert task.trials[0].outcome == "timeout"
    assert task.trials[0].end_s == pytest.approx(CFG.timeout_s)


def test_holding_on_another_target_is_a_wrong_selection():
    task = CenterOutTask(CFG, np.random.default_rng(0))
    other = [p for p in task.targets[1:] if not np.allclose(p, task.target_xy)][0]
    _drive(task, [other] * 6)
    assert task.trials[0].outcome == "wrong_target"
    # the centre target the cursor starts on does not count as a selection of trial 0
    task2 = CenterOutTask(CFG, np.random.default_rng(0))
    _drive(task2, [np.zeros(2)] * 30)
    assert task2.trials[0].outcome == "timeout"


def test_targets_alternate_and_cover_every_peripheral_target():
    task = CenterOutTask(CFG, np.random.default_rng(3))
    seen = [task._target_for(i) for i in range(16)]
    assert seen[1::2] == [0] * 8
    assert sorted(seen[0:8:2]) == [1, 2, 3, 4]


def test_workspace_clamp_and_config_errors():
    task = CenterOutTask(CFG, np.random.default_rng(0))
    np.testing.assert_allclose(task.clamp(np.array([3.0, 0.0])), [1.5, 0.0])
    with pytest.raises(ConfigError, match="target_radius"):
        TaskConfig(target_distance=1.0, target_radius=2.0)
    with pytest.raises(ConfigError, match="peak_speed"):
        UserConfig(peak_speed=0.0)


def test_bitrate_matches_the_published_formula():
    # N = 9 selectable: log2(8) = 3 bits per net correct selection
    assert achieved_bitrate(9, 10, 2, 16.0) == pytest.approx(3 * 8 / 16.0)
    assert achieved_bitrate(9, 1, 3, 10.0) == 0.0


def test_scripted_user_with_ideal_decoder_reaches_targets():
    gen = TuningCurveGenerator(8, BIN_S, 1, np.random.default_rng(0))
    session = ClosedLoopSession(gen, None, default_task(1.0), default_user(1.0),
                                np.random.default_rng(1))
    scores = session.run(40.0).scores()
    assert scores.n_trials >= 25
    assert scores.success_rate >= 0.95
    assert scores.path_efficiency > 0.8
    assert scores.bitrate_bps > 1.5


def test_user_reacts_after_its_delay_and_is_reproducible():
    def intended(seed):
        gen = TuningCurveGenerator(8, BIN_S, 1, np.random.default_rng(0))
        s = ClosedLoopSession(gen, None, default_task(1.0),
                              default_user(1.0, reaction_s=0.2), np.random.default_rng(seed))
        return np.array([s.step()["intended"] for _ in range(40)])

    a = intended(7)
    assert np.all(a[:4] == 0) and np.linalg.norm(a[5]) > 0  # 4 bins of 50 ms delay
    np.testing.assert_array_equal(a, intended(7))
    assert not np.array_equal(a, intended(8))
    peak = np.max(np.linalg.norm(a, axis=1))
    assert 0.7 < peak < 1.6 and math.isfinite(peak)


def test_refit_judges_the_intention_from_the_screen_at_each_bins_start():
    from ldns_sim.closed_loop.calibration import screen_at_bin_start

    task = default_task(1.0)
    target = np.array([task.target_distance, 0.0])
    # bin 0 starts at the centre and ends on the target; bin 1 starts (and ends) there
    cursor, inside = screen_at_bin_start(np.array([target, target]),
                                         np.array([target, target]), task.target_radius)
    np.testing.assert_allclose(cursor, [[0.0, 0.0], target])
    np.testing.assert_array_equal(inside, [False, True])
