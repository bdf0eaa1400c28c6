"""Lazy access to pygame (SDL), the optional extra behind the joystick and mouse sources
and the closed loop's task window."""

from __future__ import annotations

import os
from types import ModuleType

from ldns_sim.errors import SourceError

ALTERNATIVES = "--condition mouse|script:center-out|lsl:NAME|replay:FILE"


def import_pygame(what: str) -> ModuleType:
    """Import pygame, or raise a one-line ``SourceError`` naming the extra and alternatives.

    Parameters
    ----------
    what
        The source that needs it (``"joystick"`` or ``"mouse"``), for the message.
    """
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    # A gamepad must keep working while the decoder's window, not ours, has the focus.
    os.environ.setdefault("SDL_JOYSTICK_ALLOW_BACKGROUND_EVENTS", "1")
    try:
        import pygame
    except ImportError:
        alternatives = ALTERNATIVES.replace("mouse|", "") if what == "mouse" else ALTERNATIVES
        raise SourceError(f"{what} needs pygame: pip install 'ldns-sim[joystick]', "
                          f"or use {alternatives}") from None
    return pygame


_HEADLESS_DRIVERS = ("offscreen", "dummy")


def require_a_screen(pygame) -> None:
    """SDL falls back to an invisible window without a display: refuse that, unless asked.

    Call after ``pygame.display.init()``. ``SDL_VIDEODRIVER=dummy`` (or ``offscreen``) set on
    purpose, e.g. by tests, is honoured.
    """
    driver = pygame.display.get_driver()
    if driver in _HEADLESS_DRIVERS and os.environ.get("SDL_VIDEODRIVER") != driver:
        raise SourceError(f"SDL found only the {driver!r} video driver")
