"""--condition specs -> sources, and the condition adapters they read."""

import numpy as np
import pytest

from ldns_sim.core import SpikeData
from ldns_sim.data.npz_io import save_npz
from ldns_sim.errors import ConfigError
from ldns_sim.realtime.clock import ManualClock
from ldns_sim.realtime.condition import ConstantSource
from ldns_sim.replay import ReplaySource
from ldns_sim.sources.condition_adapters import (
    available_condition_adapters,
    load_condition_adapter,
)
from ldns_sim.sources.factory import VALID_SPECS, make_source
from ldns_sim.sources.joystick_source import JoystickSource
from ldns_sim.sources.lsl_source import LslConditionSource
from ldns_sim.sources.mouse_source import MouseSource
from ldns_sim.sources.script_source import ScriptedCenterOut
from ldns_sim.sources.zmq_source import ZmqConditionSource

NAMES = ("vel_x", "vel_y")


def _make(spec, clock=None, names=NAMES, **kwargs):
    clock = clock or ManualClock(start_s=1.0)
    return make_source(spec, velocity_scale=25.0, channel_names=names, clock_now=clock.now,
                       rng=np.random.default_rng(0), **kwargs)


def test_each_spec_builds_its_source():
    joystick = _make("joystick")
    assert isinstance(joystick, JoystickSource)
    assert joystick.axes == (0, 1) and joystick.invert == (False, True)  # joystick.toml
    assert joystick.velocity_scale == 25.0
    assert isinstance(_make("mouse"), MouseSource)
    lsl_default = _make("lsl")
    assert isinstance(lsl_default, LslConditionSource)
    assert lsl_default.stream_name == "cursor"  # lsl_cursor.toml
    assert _make("lsl:rig-hand").stream_name == "rig-hand"
    assert isinstance(_make("zmq"), ZmqConditionSource)
    assert _make("zmq").endpoint == "tcp://127.0.0.1:5557"
    assert _make("zmq:tcp://127.0.0.1:6001").endpoint == "tcp://127.0.0.1:6001"
    script = _make("script:center-out")
    assert isinstance(script, ScriptedCenterOut) and script.peak_speed == 25.0
    none = _make("none", names=("a", "b", "c"))
    assert isinstance(none, ConstantSource)
    np.testing.assert_array_equal(none.read(0.0).value, [0, 0, 0])


def test_unknown_and_malformed_specs_list_the_valid_ones():
    with pytest.raises(ConfigError) as info:
        _make("gamepad")
    assert all(spec in str(info.value) for spec in VALID_SPECS)
    with pytest.raises(ConfigError, match="script:center-out"):
        _make("script:random-walk")
    with pytest.raises(ConfigError, match="takes no argument"):
        _make("mouse:big")
    with pytest.raises(ConfigError, match="needs a file"):
        _make("replay")
    with pytest.raises(ConfigError, match="no such file"):
        _make("replay:/nonexistent/session.nwb")


def test_velocity_sources_refuse_a_model_without_2d_velocity():
    with pytest.raises(ConfigError, match="2-D hand velocity"):
        _make("joystick", names=("direction",))


def test_adapter_files_validate_and_errors_name_file_and_field(tmp_path):
    assert {"joystick", "lsl_cursor"} <= set(available_condition_adapters())
    bad = tmp_path / "pad.toml"
    bad.write_text('kind = "joystick"\ndead_zone = 1.5\n')
    with pytest.raises(ConfigError) as info:
        _make(f"joystick:{bad}")
    assert str(bad) in str(info.value) and "dead_zone" in str(info.value)
    extra = tmp_path / "extra.toml"
    extra.write_text('kind = "joystick"\nrumble = true\n')
    with pytest.raises(ConfigError, match="rumble"):
        load_condition_adapter(extra, "joystick")
    with pytest.raises(ConfigError, match="expected 'lsl'"):
        load_condition_adapter(extra, "lsl")
    custom = tmp_path / "hand.toml"
    custom.write_text('kind = "lsl"\nstream_type = "Hand"\nchannels = [2, 3]\ngain = 100.0\n'
                      '[hold]\nhold_s = 0.1\n')
    source = _make(f"lsl:{custom}")
    assert (source.stream_name, source.stream_type) == (None, "Hand")
    assert source.channels == (2, 3) and source.gain == 100.0


def test_replay_file_plays_on_the_engine_clock(tmp_path):
    rng = np.random.default_rng(1)
    behaviour = tuple(rng.normal(size=(10, 2)).astype(np.float32) for _ in range(2))
    data = SpikeData(counts=tuple(np.zeros((10, 3), dtype=np.int16) for _ in range(2)),
                     bin_s=0.02, neuron_ids=("a", "b", "c"),
                     split=np.array(["train", "train"]), source="test",
                     behaviour=behaviour, behaviour_names=NAMES)
    path = save_npz(data, tmp_path / "rec.npz")
    clock = ManualClock(start_s=3.0)
    source = _make(f"replay:{path}", clock=clock).start()
    assert isinstance(source, ReplaySource)
    np.testing.assert_allclose(source.read(3.0 + 0.02 * 12.5).value, behaviour[1][2])
