"""A small pygame window turning the mouse into a hand velocity, for a desk without a gamepad.

The cursor's displacement from the window centre is the velocity (a rate-control joystick made
of a mouse): at the centre the hand rests, at ``full_scale_frac`` of the half-window it moves
at ``velocity_scale``. Needs the optional extra ``joystick`` (pygame).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Sequence

import numpy as np

from ldns_sim.errors import ConfigError, SourceError
from ldns_sim.sources._pygame import import_pygame, require_a_screen
from ldns_sim.sources.joystick_source import radial_dead_zone
from ldns_sim.sources.link_state import HoldPolicy, LinkState
from ldns_sim.sources.threaded import ThreadedSource

log = logging.getLogger(__name__)

_ALTERNATIVES = "--condition joystick|script:center-out|lsl:NAME|replay:FILE"
_START_TIMEOUT_S = 5.0


def offset_to_velocity(offset_px: Sequence[float], *, full_scale_px: float, dead_zone: float,
                       velocity_scale: float) -> np.ndarray:
    """Cursor displacement from the window centre -> ``(2,)`` float32 velocity.

    Parameters
    ----------
    offset_px
        ``(2,)`` cursor minus centre, in pixels, screen convention (y grows downwards).
    full_scale_px
        Displacement (pixels) that gives ``velocity_scale``; farther is clipped to it.
    dead_zone
        Radial dead zone as a fraction of ``full_scale_px``, in [0, 1).
    velocity_scale
        Speed at full scale, in behaviour units.

    Returns
    -------
    np.ndarray
        ``(2,)`` float32 velocity, +y up.
    """
    stick = np.array([offset_px[0], -offset_px[1]], dtype=np.float64) / full_scale_px
    return (radial_dead_zone(stick, dead_zone) * velocity_scale).astype(np.float32)


class MouseSource(ThreadedSource):
    """Hand velocity from the mouse in a small window, on its own thread.

    The cursor outside the window (or the window without focus) reads as rest (zero). Closing
    the window counts as losing the source (hold, decay, ``condition_lost:mouse`` marker).
    Latency budget: the window is polled at ``poll_hz`` (default 120 Hz): at most ~8 ms.
    On macOS SDL windows must live on the main thread, so this source is for Linux/Windows.

    Parameters
    ----------
    velocity_scale
        Speed at full-scale displacement, in the model's behaviour units.
    clock_now
        The engine clock (seconds).
    channel_names
        The model's two condition channel names.
    window_px
        Window side length in pixels.
    full_scale_frac
        Displacement giving full speed, as a fraction of half the window side.
    dead_zone
        Radial dead zone, a fraction of full scale.
    poll_hz
        Polling (and redraw) rate.
    policy
        Hold and decay after the window is closed.
    """

    name = "mouse"

    def __init__(self, *, velocity_scale: float, clock_now: Callable[[], float],
                 channel_names: Sequence[str] = ("vel_x", "vel_y"), window_px: int = 400,
                 full_scale_frac: float = 0.8, dead_zone: float = 0.05, poll_hz: float = 120.0,
                 policy: HoldPolicy | None = None) -> None:
        if len(channel_names) != 2:
            raise ConfigError(f"mouse gives a 2-D velocity, but the model's condition has "
                              f"channels {tuple(channel_names)}")
        if not (velocity_scale > 0 and math.isfinite(velocity_scale)):
            raise ConfigError(f"mouse: velocity_scale must be positive, got {velocity_scale}")
        if not 0 <= dead_zone < 1 or not 0 < full_scale_frac <= 1 or window_px < 50:
            raise ConfigError(f"mouse: need dead_zone in [0, 1), full_scale_frac in (0, 1], "
                              f"window_px >= 50; got {dead_zone}, {full_scale_frac}, {window_px}")
        self.velocity_scale = float(velocity_scale)
        self.channel_names = tuple(channel_names)
        self.window_px = int(window_px)
        self.full_scale_px = full_scale_frac * self.window_px / 2
        self.dead_zone = float(dead_zone)
        self.poll_s = 1.0 / poll_hz
        self._clock_now = clock_now
        self._link = LinkState(self.name, 2, policy or HoldPolicy(lost_after_s=None))
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_error: BaseException | None = None

    def start(self) -> MouseSource:
        """Open the window; ``SourceError`` if there is no display."""
        if self._thread is not None:
            return self
        pygame = import_pygame("mouse")
        self._start_worker((pygame,), "ldns-mouse", _START_TIMEOUT_S, SourceError(
            f"mouse: no window within {_START_TIMEOUT_S:g} s; use {_ALTERNATIVES}"))
        return self

    def stop(self) -> None:
        """Close the window; safe to call twice."""
        self._join_worker()

    def _run(self, pygame) -> None:
        try:
            pygame.display.init()
            require_a_screen(pygame)
            screen = pygame.display.set_mode((self.window_px, self.window_px))
            pygame.display.set_caption("ldns-sim: mouse = hand velocity (centre = rest)")
        except (pygame.error, SourceError) as error:
            self._start_error = SourceError(f"mouse: cannot open a window ({error}); no "
                                            f"display? use {_ALTERNATIVES}")
            self._ready.set()
            pygame.display.quit()
            return
        self._ready.set()
        try:
            while not self._stop.is_set() and self._poll_once(pygame, screen):
                self._stop.wait(self.poll_s)
        except Exception:  # never take the engine down
            log.exception("mouse: polling failed")
            self._link.mark_lost(self._clock_now(), "polling failed")
        finally:
            pygame.display.quit()

    def _poll_once(self, pygame, screen) -> bool:
        """Read and draw once; False once the user closed the window."""
        if any(event.type == pygame.QUIT for event in pygame.event.get()):
            self._link.mark_lost(self._clock_now(), "window closed")
            return False
        centre = self.window_px / 2
        x_px, y_px = pygame.mouse.get_pos()
        offset = (x_px - centre, y_px - centre) if pygame.mouse.get_focused() else (0.0, 0.0)
        velocity = offset_to_velocity(offset, full_scale_px=self.full_scale_px,
                                      dead_zone=self.dead_zone,
                                      velocity_scale=self.velocity_scale)
        now_s = self._clock_now()
        self._link.push(velocity, now_s, now_s)
        self._draw(pygame, screen, offset)
        return True

    def _draw(self, pygame, screen, offset) -> None:
        centre = (self.window_px // 2, self.window_px // 2)
        screen.fill((20, 20, 24))
        pygame.draw.circle(screen, (70, 70, 80), centre, int(self.full_scale_px), width=1)
        pygame.draw.circle(screen, (70, 70, 80), centre,
                           max(2, int(self.dead_zone * self.full_scale_px)), width=1)
        tip = (centre[0] + int(offset[0]), centre[1] + int(offset[1]))
        pygame.draw.line(screen, (90, 200, 120), centre, tip, width=3)
        pygame.display.flip()

    def __repr__(self) -> str:
        state = "ON" if self._thread is not None else "OFF"
        return (f"<MouseSource | {state} | {self.window_px} px window | "
                f"scale {self.velocity_scale:g}>")
