"""Joystick source: a real SDL virtual gamepad (SDL_JoystickAttachVirtual through ctypes).

SDL 2.0.14+ can attach virtual joysticks; pygame 2 bundles SDL2, so the same library the source
uses is driven here: axes set, device detached (unplug) and attached again (replug). No
physical device is involved; a real USB unplug goes through the same SDL removal event.
"""

import math
import subprocess
import sys
import time

import numpy as np
import pytest

pygame = pytest.importorskip("pygame")

from ldns_sim.errors import SourceError  # noqa: E402
from ldns_sim.realtime.clock import ManualClock  # noqa: E402
from ldns_sim.sources.joystick_source import (  # noqa: E402
    JoystickSource,
    axes_to_velocity,
    radial_dead_zone,
)
from ldns_sim.sources.link_state import HoldPolicy  # noqa: E402

SDL_INIT_JOYSTICK = 0x200
SDL_JOYSTICK_TYPE_GAMECONTROLLER = 1


class VirtualPad:
    """One virtual SDL gamepad with 4 axes; the test holds its own joystick-subsystem ref."""

    def __init__(self, sdl):
        self.sdl = sdl
        self.index = sdl.SDL_JoystickAttachVirtual(SDL_JOYSTICK_TYPE_GAMECONTROLLER, 4, 4, 0)
        assert self.index >= 0
        self.handle = None

    def set_axes(self, x: float, y: float) -> None:
        if not self.handle:  # SDL accepts axis values only for an opened device
            n = self.sdl.SDL_NumJoysticks()
            ids = [self.sdl.SDL_JoystickGetDeviceInstanceID(i) for i in range(n)]
            self.handle = self.sdl.SDL_JoystickFromInstanceID(ids[self.index])
        for axis, v in enumerate((x, y)):
            self.sdl.SDL_JoystickSetVirtualAxis(self.handle, axis, int(v * 32767))

    def detach(self) -> None:
        self.sdl.SDL_JoystickDetachVirtual(self.index)
        self.handle = None


@pytest.fixture
def sdl(monkeypatch, bundled_sdl2):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")  # the event pump without a screen
    lib = bundled_sdl2
    lib.SDL_InitSubSystem(SDL_INIT_JOYSTICK)
    yield lib
    while lib.SDL_NumJoysticks() > 0 and lib.SDL_JoystickIsVirtual(0):
        lib.SDL_JoystickDetachVirtual(0)
    lib.SDL_QuitSubSystem(SDL_INIT_JOYSTICK)


def _wait_for(predicate, timeout_s=3.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.005)
    raise AssertionError("condition not met before the deadline")


def test_dead_zone_is_radial_and_continuous():
    assert np.all(radial_dead_zone(np.array([0.05, 0.05]), 0.1) == 0)
    just_out = radial_dead_zone(np.array([0.1001, 0.0]), 0.1)
    assert 0 < just_out[0] < 1e-3
    np.testing.assert_allclose(radial_dead_zone(np.array([0.0, 1.0]), 0.1), [0.0, 1.0])
    diagonal = radial_dead_zone(np.array([0.5, 0.5]), 0.2)
    assert diagonal[0] == pytest.approx(diagonal[1])
    assert np.hypot(*diagonal) == pytest.approx((math.hypot(0.5, 0.5) - 0.2) / 0.8, rel=1e-5)


def test_axes_to_velocity_inverts_and_scales():
    v = axes_to_velocity([1.0, -1.0], invert=(False, True), dead_zone=0.0, velocity_scale=30.0)
    # full deflection right and up (SDL: up is -1) -> radius clipped to the scale
    np.testing.assert_allclose(np.hypot(*v), 30.0, rtol=1e-5)
    assert v[0] > 0 and v[1] > 0


def test_no_gamepad_is_one_line_naming_alternatives(sdl):
    assert sdl.SDL_NumJoysticks() == 0
    source = JoystickSource(velocity_scale=30.0, clock_now=ManualClock().now)
    with pytest.raises(SourceError) as info:
        source.start()
    message = str(info.value)
    assert "\n" not in message
    assert "no gamepad" in message
    for alternative in ("mouse", "script:center-out", "lsl:NAME", "replay:FILE"):
        assert alternative in message
    source.stop()


@pytest.mark.realtime
def test_virtual_gamepad_moves_unplugs_and_replugs(sdl):
    clock = ManualClock(start_s=100.0)
    pad = VirtualPad(sdl)
    policy = HoldPolicy(hold_s=0.25, decay_tau_s=0.1, lost_after_s=None)
    source = JoystickSource(velocity_scale=30.0, clock_now=clock.now, dead_zone=0.1,
                            policy=policy)
    with source:
        assert "Virtual" in repr(source)
        pad.set_axes(0.0, -1.0)  # stick fully up
        up = _wait_for(lambda: (r := source.read(clock.now())).ok and r.value[1] > 29 and r)
        assert abs(up.value[0]) < 1e-3
        assert up.value[1] == pytest.approx(30.0, rel=1e-3)

        pad.detach()
        clock.advance(0.01)  # the removal is stamped at this time
        _wait_for(lambda: "condition_lost:joystick" in source.drain_events())
        lost_at = clock.now()
        held = source.read(lost_at + 0.2)
        assert not held.ok
        assert held.value[1] == pytest.approx(up.value[1])
        decayed = source.read(lost_at + 0.25 + 0.1)  # one time constant into the decay
        assert decayed.value[1] == pytest.approx(up.value[1] * math.exp(-1), rel=1e-4)
        assert source.read(lost_at + 5.0).value[1] < 1e-6

        pad2 = VirtualPad(sdl)
        _wait_for(lambda: "condition_restored:joystick" in source.drain_events())
        pad2.set_axes(1.0, 0.0)  # SDL takes virtual axis values once the source opened it
        right = _wait_for(lambda: (r := source.read(clock.now())).ok and r.value[0] > 29 and r)
        assert right.ok
    source.stop()  # idempotent
    assert "OFF" in repr(source)


def test_without_pygame_the_error_names_the_extra_and_alternatives():
    code = ("import sys; sys.modules['pygame'] = None\n"  # as if the extra were not installed
            "from ldns_sim.errors import SourceError\n"
            "from ldns_sim.sources.joystick_source import JoystickSource\n"
            "try:\n"
            "    JoystickSource(velocity_scale=1.0, clock_now=lambda: 0.0).start()\n"
            "except SourceError as error:\n"
            "    print(error)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout == ("joystick needs pygame: pip install 'ldns-sim[joystick]', or use "
                             "--condition mouse|script:center-out|lsl:NAME|replay:FILE\n")
