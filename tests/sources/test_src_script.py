"""Scripted centre-out user: deterministic, bell-shaped reaches, every target visited."""

import numpy as np
import pytest

from ldns_sim.errors import ConfigError
from ldns_sim.realtime.clock import ManualClock
from ldns_sim.sources.script_source import ScriptedCenterOut


def _script(seed=3, **kwargs):
    return ScriptedCenterOut(rng=np.random.default_rng(seed), start_s=100.0, **kwargs)


def test_same_seed_same_script_other_seed_other_order():
    times = 100.0 + np.arange(0.0, 40.0, 0.013)
    a = np.stack([_script(seed=3).read(t).value for t in times])
    b_script = _script(seed=3)
    b = np.stack([b_script.read(t).value for t in times[::-1]])[::-1]  # order of queries
    np.testing.assert_array_equal(a, b)
    other = _script(seed=4)
    orders = [[s.target_index(k) for k in range(16)] for s in (_script(seed=3), other)]
    assert orders[0] != orders[1]


def test_speed_profile_peaks_at_peak_speed_and_rests_at_holds():
    script = _script(peak_speed=30.0, reach_s=0.6, hold_s=0.5, return_s=0.6)
    trial_s = script.trial_s
    assert trial_s == pytest.approx(2.2)
    t = 100.0 + np.linspace(0.0, trial_s, 2201)  # 1 ms steps through trial 0
    speed = np.array([np.hypot(*script.velocity_at(x)) for x in t])
    assert speed.max() == pytest.approx(30.0, rel=1e-3)
    assert t[np.argmax(speed)] - 100.0 == pytest.approx(0.3, abs=1e-3)  # mid-reach
    elapsed = t - 100.0
    at_rest = ((elapsed >= 0.6) & (elapsed < 1.1)) | (elapsed >= 1.7)
    assert np.all(speed[at_rest] < 1e-6)
    assert speed[0] == 0 and speed[599] < 0.01  # starts and ends each reach at rest
    # integrating the velocity reaches the target and comes back
    velocity = np.stack([script.velocity_at(x) for x in t])
    reached = velocity[:600].sum(axis=0) * 1e-3
    state = script.target_at(100.0 + 0.8)
    assert state.phase == "hold"
    np.testing.assert_allclose(reached, state.target_xy, atol=0.05)
    np.testing.assert_allclose(velocity.sum(axis=0) * 1e-3, [0, 0], atol=0.05)
    np.testing.assert_allclose(script.position_at(100.0 + 0.8), state.target_xy)


def test_all_targets_visited_each_block():
    script = _script(n_targets=8)
    for block in range(3):
        visited = {script.target_at(100.0 + (block * 8 + k) * script.trial_s + 0.1).target_index
                   for k in range(8)}
        assert visited == set(range(8))
    returning = script.target_at(100.0 + 1.2)
    assert returning.phase == "return"
    np.testing.assert_array_equal(returning.goal_xy, [0.0, 0.0])
    before = script.target_at(99.0)
    assert before.trial == -1 and before.phase == "centre"


def test_time_zero_from_the_engine_clock():
    clock = ManualClock(start_s=10.0)
    script = ScriptedCenterOut(rng=np.random.default_rng(0), clock_now=clock.now).start()
    assert script.start_s == 10.0
    assert np.hypot(*script.read(10.3).value) == pytest.approx(script.peak_speed, rel=1e-6)
    assert script.read(10.3).ok and script.drain_events() == []


def test_bad_parameters_are_config_errors():
    with pytest.raises(ConfigError, match="reach_s"):
        _script(reach_s=0.0)
    with pytest.raises(ConfigError, match="rng"):
        ScriptedCenterOut()
