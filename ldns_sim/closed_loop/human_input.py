"""A person's input devices for the closed loop's window: the mouse's movement, a gamepad stick.

Thin pygame wrappers with the ``InputDevice`` interface of ``closed_loop.human``; the window
(``closed_loop.window``) hands them its events. Both read on the main thread, the window's.
"""

from __future__ import annotations

import logging

import numpy as np

from ldns_sim.closed_loop.human import mouse_motion_to_velocity
from ldns_sim.errors import SourceError
from ldns_sim.sources.joystick_source import axes_to_velocity

log = logging.getLogger(__name__)


class MouseMotionInput:
    """The mouse's movement over the last bin is the intended velocity.

    The window grabs the mouse and hides its pointer, so the movement is unbounded (SDL's
    relative mouse mode): the person moves the mouse as if moving the cursor, and sees where
    the decoder put it.

    Parameters
    ----------
    pygame
        The imported pygame module.
    bin_s
        The loop reads once per bin: the movement is divided by this.
    px_per_unit
        Screen pixels per task position unit (``ScreenMap.px_per_unit``).
    gain
        Cursor movement intended per mouse movement (1: the same distance on screen).
    """

    name = "mouse"

    def __init__(self, pygame, bin_s: float, px_per_unit: float, gain: float = 1.0) -> None:
        self._pygame = pygame
        self.bin_s, self.px_per_unit, self.gain = float(bin_s), float(px_per_unit), float(gain)
        self._rel_px = np.zeros(2)
        self.description = f"mouse movement (gain {self.gain:g}, {self.px_per_unit:.4g} px/unit)"

    def handle(self, event) -> str | None:
        if event.type == self._pygame.MOUSEMOTION:
            self._rel_px += np.asarray(event.rel, dtype=np.float64)
        return None

    def velocity(self) -> np.ndarray:
        v = mouse_motion_to_velocity(self._rel_px, self.bin_s, self.px_per_unit, self.gain)
        self._rel_px[:] = 0.0
        return v

    def reset(self) -> None:
        self._rel_px[:] = 0.0

    def close(self) -> None:
        """Nothing held beyond the window."""


class JoystickInput:
    """A gamepad stick's position is the intended velocity (full deflection = peak speed).

    Unplugged: the velocity is zero (the person sees the cursor stop) and a
    ``condition_lost:joystick`` marker is recorded; plugged in again: reopened,
    ``condition_restored:joystick``.

    Parameters
    ----------
    pygame
        The imported pygame module, display initialised (SDL's event pump).
    velocity_scale
        Velocity at full deflection, behaviour units.
    adapter
        A ``joystick`` condition adapter (device index, axes, invert, dead zone).
    alternatives
        Named in the error when no gamepad is found.
    """

    name = "joystick"

    def __init__(self, pygame, velocity_scale: float, adapter, alternatives: str) -> None:
        self._pygame = pygame
        self.velocity_scale = float(velocity_scale)
        self.axes, self.invert = tuple(adapter.axes), tuple(adapter.invert)
        self.dead_zone = float(adapter.dead_zone)
        pygame.joystick.init()
        n = pygame.joystick.get_count()
        if n <= adapter.device_index:
            pygame.joystick.quit()
            raise SourceError(f"joystick: no gamepad found (SDL sees {n} joystick(s), wanted "
                              f"index {adapter.device_index}); plug one in, or use "
                              f"{alternatives}")
        self._stick = self._open(adapter.device_index)
        if self._stick is None:
            pygame.joystick.quit()
            raise SourceError(f"joystick: gamepad {adapter.device_index} has fewer axes than "
                              f"{self.axes}; use {alternatives}")
        self.description = (f"joystick {self._stick.get_name()!r} axes {self.axes} invert "
                            f"{self.invert} dead zone {self.dead_zone:g}")

    def _open(self, device_index: int):
        stick = self._pygame.joystick.Joystick(device_index)
        stick.init()
        if max(self.axes) >= stick.get_numaxes():
            stick.quit()
            return None
        log.info("joystick: opened %r", stick.get_name())
        return stick

    def handle(self, event) -> str | None:
        pygame = self._pygame
        if event.type == pygame.JOYDEVICEREMOVED and self._stick is not None \
                and event.instance_id == self._stick.get_instance_id():
            self._stick.quit()
            self._stick = None
            return "condition_lost:joystick"
        if event.type == pygame.JOYDEVICEADDED and self._stick is None:
            try:
                self._stick = self._open(event.device_index)
            except pygame.error as error:
                log.warning("joystick: cannot open the new device: %s", error)
            if self._stick is not None:
                return "condition_restored:joystick"
        return None

    def velocity(self) -> np.ndarray:
        if self._stick is None:
            return np.zeros(2, np.float32)
        raw = [self._stick.get_axis(i) for i in self.axes]
        return axes_to_velocity(raw, invert=self.invert, dead_zone=self.dead_zone,
                                velocity_scale=self.velocity_scale)

    def reset(self) -> None:
        """A stick has no memory."""

    def close(self) -> None:
        if self._stick is not None:
            self._stick.quit()
            self._stick = None
        self._pygame.joystick.quit()
