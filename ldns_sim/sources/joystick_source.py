"""A gamepad (any SDL joystick, through pygame) as the live hand velocity.

Needs the optional extra ``joystick`` (pygame); imported only when a joystick source starts.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable, Sequence

import numpy as np

from ldns_sim.errors import ConfigError, SourceError
from ldns_sim.sources._pygame import ALTERNATIVES, import_pygame
from ldns_sim.sources.link_state import HoldPolicy, LinkState
from ldns_sim.sources.threaded import ThreadedSource

log = logging.getLogger(__name__)

_START_TIMEOUT_S = 5.0


def radial_dead_zone(axes: np.ndarray, dead_zone: float) -> np.ndarray:
    """Apply a radial dead zone to a stick position and rescale what is left.

    Parameters
    ----------
    axes
        ``(2,)`` stick position, each axis in [-1, 1].
    dead_zone
        Radius in [0, 1) under which the output is zero.

    Returns
    -------
    np.ndarray
        ``(2,)`` float32, same direction as ``axes``, magnitude ``(r - dead_zone) /
        (1 - dead_zone)`` clipped to [0, 1]: 0 at the dead-zone edge (continuous), 1 at full
        deflection.
    """
    axes = np.asarray(axes, dtype=np.float64)
    radius = float(np.hypot(*axes))
    if radius <= dead_zone:
        return np.zeros(2, dtype=np.float32)
    magnitude = min(1.0, (radius - dead_zone) / (1.0 - dead_zone))
    return (axes / radius * magnitude).astype(np.float32)


def axes_to_velocity(axes: Sequence[float], *, invert: Sequence[bool], dead_zone: float,
                     velocity_scale: float) -> np.ndarray:
    """Raw SDL axis values -> ``(2,)`` float32 velocity in behaviour units.

    ``invert`` flips an axis (SDL reports stick-up as negative y; velocity +y is up).
    Full deflection gives ``velocity_scale`` (the model's typical peak speed).
    """
    signs = np.where(np.asarray(invert, dtype=bool), -1.0, 1.0)
    stick = np.clip(np.asarray(axes, dtype=np.float64), -1.0, 1.0) * signs
    return (radial_dead_zone(stick, dead_zone) * velocity_scale).astype(np.float32)


class JoystickSource(ThreadedSource):
    """Hand velocity from a gamepad stick, polled on its own thread.

    Unplugged mid-stream (SDL device-removed event or a failed read): the last velocity is
    held, then decays to zero (``HoldPolicy``), with ``condition_lost:joystick`` and, once a
    gamepad is plugged in again, ``condition_restored:joystick`` markers.

    Latency budget: polling at ``poll_hz`` (default 200 Hz) adds at most 5 ms between a
    stick movement and the value ``read`` returns; SDL's own input path adds ~1 ms.

    Parameters
    ----------
    velocity_scale
        Velocity at full stick deflection, in the model's behaviour units (e.g. cm/s).
    clock_now
        The engine clock (seconds); stamps every sample.
    channel_names
        The model's two condition channel names, e.g. ``("vel_x", "vel_y")``.
    device_index
        Which SDL joystick to open (0 = the first).
    axes
        SDL axis indices for x and y (0, 1 = left stick on most gamepads).
    invert
        Per axis, flip the sign (default flips y: SDL reports stick-up as negative).
    dead_zone
        Radial dead zone, a fraction of full deflection in [0, 1).
    poll_hz
        Polling rate of the device thread.
    policy
        Hold and decay after an unplug; ``lost_after_s`` is a watchdog on the poll thread.
    """

    name = "joystick"

    def __init__(self, *, velocity_scale: float, clock_now: Callable[[], float],
                 channel_names: Sequence[str] = ("vel_x", "vel_y"), device_index: int = 0,
                 axes: Sequence[int] = (0, 1), invert: Sequence[bool] = (False, True),
                 dead_zone: float = 0.1, poll_hz: float = 200.0,
                 policy: HoldPolicy | None = None) -> None:
        if len(channel_names) != 2:
            raise ConfigError(f"joystick gives a 2-D velocity, but the model's condition has "
                              f"channels {tuple(channel_names)}")
        if len(axes) != 2 or len(invert) != 2:
            raise ConfigError(f"joystick: axes and invert need 2 entries (x, y), got "
                              f"axes={tuple(axes)}, invert={tuple(invert)}")
        if not 0 <= dead_zone < 1:
            raise ConfigError(f"joystick: dead_zone must be in [0, 1), got {dead_zone}")
        if not (velocity_scale > 0 and math.isfinite(velocity_scale)):
            raise ConfigError(f"joystick: velocity_scale must be positive, got {velocity_scale}")
        if not poll_hz > 0:
            raise ConfigError(f"joystick: poll_hz must be positive, got {poll_hz}")
        self.velocity_scale = float(velocity_scale)
        self.channel_names = tuple(channel_names)
        self.device_index = int(device_index)
        self.axes = tuple(int(a) for a in axes)
        self.invert = tuple(bool(i) for i in invert)
        self.dead_zone = float(dead_zone)
        self.poll_s = 1.0 / poll_hz
        self._clock_now = clock_now
        self._link = LinkState(self.name, 2, policy or HoldPolicy(lost_after_s=0.5))
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_error: BaseException | None = None
        self.device_name: str | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> JoystickSource:
        """Open the gamepad and start polling; ``SourceError`` if none is plugged in."""
        if self._thread is not None:
            return self
        pygame = import_pygame("joystick")
        self._start_worker((pygame,), "ldns-joystick", _START_TIMEOUT_S, SourceError(
            f"joystick: SDL did not start within {_START_TIMEOUT_S:g} s; use {ALTERNATIVES}"))
        return self

    def stop(self) -> None:
        """Stop polling and release the device; safe to call twice."""
        self._join_worker()

    # -- device thread ---------------------------------------------------------------------

    def _run(self, pygame) -> None:
        inited: list[Callable[[], None]] = []
        try:
            joystick = self._open(pygame, inited)
        except BaseException as error:  # handed to start(), raised there
            self._start_error = error
            self._ready.set()
            self._cleanup(inited)
            return
        self._ready.set()
        try:
            while not self._stop.is_set():
                joystick = self._poll_once(pygame, joystick)
                self._stop.wait(self.poll_s)
        except Exception:  # never take the engine down: report, then decay like an unplug
            log.exception("joystick: polling failed")
            self._link.mark_lost(self._clock_now(), "polling failed")
        finally:
            if joystick is not None:
                joystick.quit()
            self._cleanup(inited)

    def _open(self, pygame, inited: list):
        if not pygame.display.get_init():
            _init_event_queue(pygame)
            inited.append(pygame.display.quit)
        if not pygame.joystick.get_init():
            pygame.joystick.init()
            inited.append(pygame.joystick.quit)
        # Only device arrival/removal go into the queue; stick positions are read as state.
        pygame.event.set_blocked(None)
        pygame.event.set_allowed([pygame.JOYDEVICEADDED, pygame.JOYDEVICEREMOVED])
        n_devices = pygame.joystick.get_count()
        if n_devices <= self.device_index:
            raise SourceError(f"joystick: no gamepad found (SDL sees {n_devices} joystick(s), "
                              f"wanted index {self.device_index}); plug one in, or use "
                              f"{ALTERNATIVES}")
        joystick = self._open_device(pygame, self.device_index)
        n_axes = joystick.get_numaxes()
        if max(self.axes) >= n_axes:
            joystick.quit()
            raise SourceError(f"joystick: {self.device_name!r} has {n_axes} axes, the adapter "
                              f"asks for axes {self.axes}")
        return joystick

    def _open_device(self, pygame, device_index: int):
        joystick = pygame.joystick.Joystick(device_index)
        joystick.init()
        self.device_name = joystick.get_name()
        log.info("joystick: opened %r (%d axes)", self.device_name, joystick.get_numaxes())
        return joystick

    def _reopen(self, pygame, device_index: int):
        """A gamepad was plugged in while none was open: use it if it has the axes."""
        try:
            joystick = self._open_device(pygame, device_index)
        except pygame.error as error:
            log.warning("joystick: cannot open the new device %d: %s", device_index, error)
            return None
        if max(self.axes) >= joystick.get_numaxes():
            log.warning("joystick: %r has %d axes, the adapter asks for axes %s; ignored",
                        self.device_name, joystick.get_numaxes(), self.axes)
            joystick.quit()
            return None
        return joystick

    def _poll_once(self, pygame, joystick):
        for event in pygame.event.get():
            if event.type == pygame.JOYDEVICEREMOVED and joystick is not None \
                    and event.instance_id == joystick.get_instance_id():
                joystick.quit()
                joystick = None
                self._link.mark_lost(self._clock_now(), "gamepad unplugged")
            elif event.type == pygame.JOYDEVICEADDED and joystick is None:
                joystick = self._reopen(pygame, event.device_index)
        if joystick is None:
            return None
        try:
            raw = [joystick.get_axis(i) for i in self.axes]
        except pygame.error as error:
            self._link.mark_lost(self._clock_now(), f"read failed: {error}")
            joystick.quit()
            return None
        now_s = self._clock_now()
        velocity = axes_to_velocity(raw, invert=self.invert, dead_zone=self.dead_zone,
                                    velocity_scale=self.velocity_scale)
        self._link.push(velocity, now_s, now_s)
        return joystick

    @staticmethod
    def _cleanup(inited: list) -> None:
        for quit_ in reversed(inited):
            quit_()

    def __repr__(self) -> str:
        state = "ON" if self._thread is not None else "OFF"
        device = self.device_name or f"device {self.device_index}"
        return (f"<JoystickSource | {state} | {device} | axes {self.axes} | "
                f"scale {self.velocity_scale:g} | dead zone {self.dead_zone:g}>")


def _init_event_queue(pygame) -> None:
    """SDL delivers joystick state through its event pump, which needs the video subsystem.

    No window is opened. Without a display (a rig PC over SSH), the ``dummy`` video driver
    gives the event pump without a screen.
    """
    try:
        pygame.display.init()
    except pygame.error:
        if os.environ.get("SDL_VIDEODRIVER"):
            raise
        os.environ["SDL_VIDEODRIVER"] = "dummy"
        pygame.display.init()
