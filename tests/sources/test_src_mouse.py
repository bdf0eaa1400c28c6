"""Mouse source: the real pygame window under SDL's dummy video driver (no screen needed)."""

import time

import numpy as np
import pytest

pygame = pytest.importorskip("pygame")

from ldns_sim.errors import SourceError  # noqa: E402
from ldns_sim.realtime.clock import ManualClock  # noqa: E402
from ldns_sim.sources.mouse_source import MouseSource, offset_to_velocity  # noqa: E402


def _wait_for(predicate, timeout_s=3.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.005)
    raise AssertionError("condition not met before the deadline")


def test_offset_maps_to_velocity_with_y_up():
    v = offset_to_velocity((0.0, -160.0), full_scale_px=160.0, dead_zone=0.05,
                           velocity_scale=30.0)
    np.testing.assert_allclose(v, [0.0, 30.0], atol=1e-4)
    assert np.all(offset_to_velocity((3.0, 3.0), full_scale_px=160.0, dead_zone=0.05,
                                     velocity_scale=30.0) == 0)
    far = offset_to_velocity((1000.0, 0.0), full_scale_px=160.0, dead_zone=0.05,
                             velocity_scale=30.0)
    assert far[0] == pytest.approx(30.0)


def test_no_display_is_one_line_naming_alternatives(monkeypatch):
    for name in ("SDL_VIDEODRIVER", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    source = MouseSource(velocity_scale=30.0, clock_now=ManualClock().now)
    with pytest.raises(SourceError) as info:
        source.start()
    assert "\n" not in str(info.value)
    assert "joystick" in str(info.value) and "script:center-out" in str(info.value)


@pytest.mark.realtime
def test_window_runs_headless_and_closing_it_is_a_loss(monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    clock = ManualClock(start_s=5.0)
    with MouseSource(velocity_scale=30.0, clock_now=clock.now) as source:
        assert "ON" in repr(source)
        reading = _wait_for(lambda: (r := source.read(clock.now())).ok and r)
        np.testing.assert_array_equal(reading.value, [0.0, 0.0])  # no focus: at rest
        assert reading.value.dtype == np.float32
        pygame.event.post(pygame.event.Event(pygame.QUIT))
        _wait_for(lambda: "condition_lost:mouse" in source.drain_events())
        assert not source.read(clock.now()).ok
    source.stop()
    assert "OFF" in repr(source)
