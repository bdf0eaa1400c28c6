"""Shared test set-up: LSL discovery stays on this machine, unique names, real components."""

import ctypes
import glob
import os
import uuid

import pytest

from ldns_sim.lsl_config import configure_lsl

# Before any other LSL call: no discovery traffic leaves this machine during tests.
configure_lsl("machine")


@pytest.fixture
def unique_name(request) -> str:
    """A stream name no other test (or earlier run) uses."""
    return f"ldns-test-{request.node.name[:40]}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def bundled_sdl2():
    """The SDL2 library pygame itself loaded (same handle, same joystick list), with the
    prototypes the virtual-gamepad tests call. Skips where pygame's bundled SDL2 is absent."""
    pygame = pytest.importorskip("pygame")
    libs_dir = os.path.join(os.path.dirname(os.path.dirname(pygame.__file__)), "pygame.libs")
    paths = sorted(glob.glob(os.path.join(libs_dir, "libSDL2-2*.so*")))
    if not paths:
        pytest.skip("pygame's bundled SDL2 not found: cannot attach a virtual gamepad here")
    lib = ctypes.CDLL(paths[0])
    lib.SDL_JoystickOpen.restype = ctypes.c_void_p
    lib.SDL_JoystickFromInstanceID.restype = ctypes.c_void_p
    lib.SDL_JoystickSetVirtualAxis.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int16]
    lib.SDL_JoystickClose.argtypes = [ctypes.c_void_p]
    return lib
