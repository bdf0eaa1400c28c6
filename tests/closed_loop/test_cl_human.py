"""Human mode: the real pygame task window under SDL's dummy video driver (no screen needed).

Input comes from real SDL: mouse movement as posted pygame events, a gamepad as SDL's virtual
joystick (SDL_JoystickAttachVirtual through ctypes, on the SDL2 library pygame loaded). The
person is the only thing not real here: their input is a fixed sequence.
"""

import json
import threading
import time

import numpy as np
import pytest

pygame = pytest.importorskip("pygame")

from ldns_sim.cli import main  # noqa: E402
from ldns_sim.closed_loop import (  # noqa: E402
    ClosedLoopSession,
    calibration_block,
    default_task,
    fit_decoder,
)
from ldns_sim.closed_loop.human import (  # noqa: E402
    HumanUser,
    ScreenMap,
    mouse_motion_to_velocity,
    run_interactive,
    task_view,
)
from ldns_sim.closed_loop.window import open_task_window  # noqa: E402
from ldns_sim.realtime.clock import ManualClock  # noqa: E402
from ldns_sim.testing import TuningCurveGenerator  # noqa: E402

BIN_S = 0.05
SDL_INIT_JOYSTICK = 0x200


@pytest.fixture
def dummy_video(monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")


def test_screen_map_and_mouse_motion_mapping():
    m = ScreenMap(window_px=400, workspace_radius=2.0, margin_px=20)
    assert m.px_per_unit == pytest.approx(90.0)
    assert m.to_px((0.0, 0.0)) == (200, 200)
    assert m.to_px((2.0, 2.0)) == (380, 20)  # +y is up on the screen
    # moving the mouse 9 px right and 18 px up in one 50 ms bin: (0.1, 0.2) units per bin
    v = mouse_motion_to_velocity((9.0, -18.0), BIN_S, m.px_per_unit)
    np.testing.assert_allclose(v, [2.0, 4.0], rtol=1e-6)


def test_human_user_clips_speed_keeps_direction_and_rejects_nan():
    class Fixed:
        name, description = "fixed", "fixed"
        value = np.array([3.0, 4.0])

        def velocity(self):
            return self.value

        def reset(self):
            pass

    device = Fixed()
    user = HumanUser(device, max_speed=1.0)
    np.testing.assert_allclose(user.act(), [0.6, 0.8], rtol=1e-6)
    device.value = np.array([0.3, 0.0])
    np.testing.assert_allclose(user.act(), [0.3, 0.0], rtol=1e-6)
    device.value = np.array([np.nan, 1.0])
    np.testing.assert_array_equal(user.act(), [0.0, 0.0])


@pytest.fixture(scope="module")
def tuned():
    """A cosine-tuned population and a Wiener filter calibrated on it (open loop, 20 s)."""
    gen = TuningCurveGenerator(60, BIN_S, 1, np.random.default_rng(0))
    block = calibration_block(gen, 20.0, 1.0, np.random.default_rng(1))
    return gen, fit_decoder("wiener", block)


def _post_motion(rel_px):
    pygame.event.post(pygame.event.Event(pygame.MOUSEMOTION, rel=rel_px, pos=(0, 0),
                                         buttons=(0, 0, 0)))


def test_mouse_window_moves_the_decoded_cursor_where_the_mouse_pushes(dummy_video, tuned):
    gen, decoder = tuned
    task = default_task(1.0)
    window = open_task_window("mouse", task, BIN_S, 1.0, window_px=400)
    try:
        user = HumanUser(window.device, max_speed=1.5)
        session = ClosedLoopSession(gen, decoder, task, user, np.random.default_rng(2),
                                    clock=ManualClock())
        step_px = window.map.px_per_unit * 0.5 * BIN_S / 2  # 0.5 units/s, in two events
        _post_motion((-step_px, -step_px))  # moved before the run: forgotten at its start
        run_interactive(session, window, 0.0, "session")

        def push_up_left(_):
            for _ in range(2):
                _post_motion((-step_px, -step_px))  # screen: left and up

        log, stopped = run_interactive(session, window, 1.5, "session", push_up_left)
        assert stopped is None
        a = log.arrays()
        assert len(a["intended"]) == 30
        np.testing.assert_array_equal(a["intended"][0], [0.0, 0.0])  # nothing moved yet
        np.testing.assert_allclose(a["intended"][1:], np.tile([-0.5, 0.5], (29, 1)),
                                   rtol=1e-5)
        cursor = a["cursor"][-1]
        assert cursor[0] < -0.1 and cursor[1] > 0.1, cursor  # the decoder followed
        # the frame on the (dummy) screen shows the cursor where the session has it
        x, y = window.map.to_px(session.cursor)
        assert tuple(pygame.display.get_surface().get_at((x, y)))[:3] == (238, 238, 246)
        assert task_view(session, "session", 0.0).cursor_xy == tuple(session.cursor)

        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_ESCAPE))
        log, stopped = run_interactive(session, window, 10.0, "session")
        assert stopped == "escape" and len(log.t_end_s) == 30  # not one more bin
    finally:
        window.close()
    window.close()  # idempotent


def test_closing_the_window_stops_the_run(dummy_video, tuned):
    gen, decoder = tuned
    task = default_task(1.0)
    window = open_task_window("mouse", task, BIN_S, 1.0, window_px=400)
    try:
        session = ClosedLoopSession(gen, decoder, task, HumanUser(window.device, 1.5),
                                    np.random.default_rng(0), clock=ManualClock())
        run_interactive(session, window, 0.5, "session",
                        lambda _: pygame.event.post(pygame.event.Event(pygame.QUIT)))
        assert len(session.log.t_end_s) == 1
    finally:
        window.close()


@pytest.fixture
def virtual_stick_right(dummy_video, bundled_sdl2):
    """An SDL virtual gamepad (4 axes) with its stick held fully right."""
    sdl = bundled_sdl2
    sdl.SDL_InitSubSystem(SDL_INIT_JOYSTICK)
    index = sdl.SDL_JoystickAttachVirtual(1, 4, 4, 0)
    assert index >= 0
    handle = sdl.SDL_JoystickOpen(index)  # SDL takes axis values for an opened device only
    sdl.SDL_JoystickSetVirtualAxis(handle, 0, 32767)
    sdl.SDL_JoystickSetVirtualAxis(handle, 1, 0)
    yield
    sdl.SDL_JoystickClose(handle)
    sdl.SDL_JoystickDetachVirtual(index)
    sdl.SDL_QuitSubSystem(SDL_INIT_JOYSTICK)


@pytest.mark.realtime
def test_cli_joystick_session_is_paced_scored_and_recorded(virtual_stick_right, tmp_path,
                                                           capsys):
    out = tmp_path / "human.nwb"
    t_start = time.monotonic()
    code = main(["closed-loop", "--user", "joystick", "--decoder", "wiener", "--model",
                 "tuning", "--duration", "2", "--calibration", "20", "--record", str(out)])
    wall_s = time.monotonic() - t_start
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["user"] == "joystick" and result["scores"]["time_s"] >= 0
    assert 2.0 <= wall_s < 30  # paced: the 2 s session took at least 2 s
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(out), "r") as io:
        nwb = io.read()
        cl = nwb.processing["closed_loop"]
        intended = cl["intended_velocity"].data[:]
        cursor = cl["cursor_position"].data[:]
        assert intended.shape == (40, 2)
        np.testing.assert_allclose(intended, np.tile([1.0, 0.0], (40, 1)), atol=1e-4)
        task = default_task(1.0)
        assert cursor[-1, 0] > task.target_distance and abs(cursor[-1, 1]) < cursor[-1, 0]
        facts = json.loads(cl.description)
        assert facts["user"] == "joystick" and "joystick" in facts["input"]
        assert facts["stopped"] is None
        notes = list(nwb.events["markers"].to_dataframe().annotation)
        assert notes[0].startswith("trial_start:0:")
        assert "closed-loop:joystick:wiener" in nwb.experiment_description
        np.testing.assert_allclose(nwb.processing["behavior"]["condition"].data[:], intended,
                                   atol=1e-6)


@pytest.mark.realtime
def test_cli_escape_before_the_scored_session_is_an_interruption(dummy_video, capsys):
    def press_escape_once_the_window_is_up():
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if pygame.display.get_init() and pygame.display.get_surface() is not None:
                pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_ESCAPE))
                return
            time.sleep(0.01)

    presser = threading.Thread(target=press_escape_once_the_window_is_up, daemon=True)
    presser.start()
    code = main(["closed-loop", "--user", "mouse", "--decoder", "refit", "--model", "tuning",
                 "--duration", "2", "--calibration", "20", "--refit-block", "5"])
    presser.join()
    assert code == 130
    assert "interrupted" in capsys.readouterr().err


def test_no_display_is_one_line_naming_the_alternatives(monkeypatch, capsys):
    for name in ("SDL_VIDEODRIVER", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    assert main(["closed-loop", "--user", "mouse", "--decoder", "kalman", "--model",
                 "tuning"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--user mouse" in err
    assert "--user joystick|script" in err and "no display" in err


def test_no_gamepad_is_one_line_naming_the_alternatives(dummy_video, capsys):
    assert main(["closed-loop", "--user", "joystick", "--decoder", "kalman", "--model",
                 "tuning"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "no gamepad" in err and "--user mouse|script" in err
