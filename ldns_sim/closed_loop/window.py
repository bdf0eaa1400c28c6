"""The closed loop's task window (pygame): draws the task, hands its events to the input device.

Thin on purpose: what a frame shows comes from ``closed_loop.human.task_view``, the loop is
``closed_loop.human.run_interactive``. Needs the optional extra ``joystick`` (pygame) and a
display; under ``SDL_VIDEODRIVER=dummy`` (set on purpose, as the tests do) it runs headless.
The window lives on the main thread (as SDL wants on every platform).
"""

from __future__ import annotations

import logging

from ldns_sim.closed_loop.human import PumpResult, ScreenMap, TaskView
from ldns_sim.closed_loop.human_input import JoystickInput, MouseMotionInput
from ldns_sim.closed_loop.task import TaskConfig
from ldns_sim.errors import SourceError
from ldns_sim.sources._pygame import import_pygame, require_a_screen

log = logging.getLogger(__name__)

USER_KINDS = ("joystick", "mouse")
_BACKGROUND = (18, 18, 22)
_FAINT = (70, 70, 84)
_TARGET = (214, 132, 44)
_HOLDING = (60, 170, 96)
_HOLD_FILL = (140, 230, 160)
_CURSOR = (238, 238, 246)
_TEXT = (190, 190, 200)


def alternatives(kind: str) -> str:
    """The other ``--user`` choices, for error messages."""
    others = [k for k in USER_KINDS if k != kind]
    return "--user " + "|".join(others + ["script"]) + " (script: headless)"


class TaskWindow:
    """The window: ``pump`` reads its events, ``draw`` shows a ``TaskView``.

    Parameters
    ----------
    pygame
        The imported pygame module, display initialised.
    screen_map
        Task positions to pixels.
    device
        The input device; gets every event ``pump`` reads.
    """

    def __init__(self, pygame, screen_map: ScreenMap, device) -> None:
        self._pygame = pygame
        self.map = screen_map
        self.device = device
        self._screen = pygame.display.get_surface()
        self._font = _font(pygame)

    def pump(self) -> PumpResult:
        pygame = self._pygame
        quit_reason, markers = None, []
        for event in pygame.event.get():
            if event.type == pygame.QUIT:
                quit_reason = "window closed"
            elif event.type == pygame.KEYDOWN and event.key == pygame.K_ESCAPE:
                quit_reason = quit_reason or "escape"
            else:
                marker = self.device.handle(event)
                if marker is not None:
                    markers.append(marker)
        return PumpResult(quit_reason, tuple(markers))

    def draw(self, view: TaskView) -> None:
        pygame, m, screen = self._pygame, self.map, self._screen
        screen.fill(_BACKGROUND)
        centre = m.to_px((0.0, 0.0))
        pygame.draw.circle(screen, _FAINT, centre, m.length_px(view.workspace_radius), width=1)
        radius = m.length_px(view.target_radius)
        for xy in view.targets_xy:
            pygame.draw.circle(screen, _FAINT, m.to_px(xy), radius, width=1)
        target = m.to_px(view.target_xy)
        holding = view.hold_fraction > 0
        pygame.draw.circle(screen, _HOLDING if holding else _TARGET, target, radius)
        if holding:
            pygame.draw.circle(screen, _HOLD_FILL, target,
                               max(1, int(radius * view.hold_fraction)))
        pygame.draw.circle(screen, _CURSOR, m.to_px(view.cursor_xy), max(4, radius // 4))
        self._text(f"{view.phase}   trial {view.trial}   hits {view.n_success}   "
                   f"{view.seconds_left:.0f} s left   (Esc quits)", (10, 8))
        pygame.display.flip()

    def message(self, text: str, fraction: float | None = None) -> None:
        pygame, screen = self._pygame, self._screen
        screen.fill(_BACKGROUND)
        self._text(text, (10, 8))
        if fraction is not None:
            width = self.map.window_px - 40
            pygame.draw.rect(screen, _FAINT, (20, 40, width, 12), width=1)
            pygame.draw.rect(screen, _TARGET, (20, 40, int(width * min(fraction, 1.0)), 12))
        pygame.display.flip()

    def _text(self, text: str, where: tuple[int, int]) -> None:
        if self._font is not None:
            self._screen.blit(self._font.render(text, True, _TEXT), where)

    def close(self) -> None:
        """Release the device and close the window; safe to call twice."""
        if self._screen is None:
            return
        self.device.close()
        self._pygame.event.set_grab(False)
        self._pygame.display.quit()
        self._screen = None


def _font(pygame):
    try:
        pygame.font.init()
        return pygame.font.Font(None, 22)
    except (pygame.error, ImportError, OSError):  # a pygame built without SDL_ttf: no text
        log.warning("task window: no font available, drawing without text")
        return None


def open_task_window(kind: str, task: TaskConfig, bin_s: float, velocity_scale: float,
                     window_px: int = 720) -> TaskWindow:
    """Open the window and the ``kind`` (``joystick`` or ``mouse``) device.

    Raises a one-line ``SourceError`` naming the alternatives without pygame, without a
    display, or (``joystick``) without a gamepad.
    """
    if kind not in USER_KINDS:
        raise SourceError(f"--user {kind}: expected one of {', '.join(USER_KINDS)}")
    try:
        pygame = import_pygame(kind)
    except SourceError:
        raise SourceError(f"--user {kind} needs pygame: pip install 'ldns-sim[joystick]', or "
                          f"use {alternatives(kind)}") from None
    screen_map = ScreenMap(window_px, task.workspace_radius)
    try:
        pygame.display.init()
        require_a_screen(pygame)
        pygame.display.set_mode((window_px, window_px))
        pygame.display.set_caption(f"ldns-sim closed loop: {kind} drives the intended velocity")
    except (pygame.error, SourceError) as error:
        pygame.display.quit()
        raise SourceError(f"--user {kind}: cannot open a window ({error}); no display? use "
                          f"{alternatives(kind)}") from None
    try:
        if kind == "mouse":
            device = MouseMotionInput(pygame, bin_s, screen_map.px_per_unit)
            pygame.mouse.set_visible(False)
            pygame.event.set_grab(True)  # with the pointer hidden: SDL's relative mouse mode
        else:
            from ldns_sim.sources.condition_adapters import load_condition_adapter

            adapter = load_condition_adapter("joystick", "joystick")
            device = JoystickInput(pygame, velocity_scale, adapter, alternatives(kind))
    except BaseException:
        pygame.display.quit()
        raise
    log.info("task window open: %s", device.description)
    return TaskWindow(pygame, screen_map, device)
