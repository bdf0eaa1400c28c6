"""``--condition SPEC`` -> a ConditionSource: the one place that knows every source.

Specs::

    joystick | joystick:ADAPTER.toml     a gamepad (conditions/joystick.toml)
    mouse                                the mouse in a small window
    lsl | lsl:NAME | lsl:ADAPTER.toml    an LSL behaviour stream (conditions/lsl_cursor.toml)
    zmq | zmq:ENDPOINT                   a ZMQ publisher (default tcp://127.0.0.1:5557)
    replay:FILE                          a recording's behaviour, played on the engine clock
    script:center-out                    a scripted centre-out reaching user
    none                                 zeros
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ldns_sim.errors import ConfigError
from ldns_sim.realtime.condition import ConditionSource, ConstantSource

log = logging.getLogger(__name__)

VALID_SPECS = ("joystick", "mouse", "lsl", "lsl:NAME", "zmq", "zmq:ENDPOINT", "replay:FILE",
               "script:center-out", "none")
DEFAULT_ZMQ_ENDPOINT = "tcp://127.0.0.1:5557"
_VELOCITY_KINDS = ("joystick", "mouse", "lsl", "zmq", "script")


class _CallableClock:
    """``clock_now`` seen as a Clock for sources that take one (only ``now`` is used)."""

    def __init__(self, clock_now: Callable[[], float]) -> None:
        self.now = clock_now


def make_source(spec: str, *, velocity_scale: float, channel_names: Sequence[str],
                clock_now: Callable[[], float], rng: np.random.Generator,
                data_loader: Callable[[str], object] | None = None) -> ConditionSource:
    """Build the condition source a ``--condition`` spec names (not started).

    Parameters
    ----------
    spec
        One of ``VALID_SPECS`` (see the module docstring).
    velocity_scale
        The model's typical peak speed, in its behaviour units (from the model bundle).
    channel_names
        The model's condition channel names, e.g. ``("vel_x", "vel_y")``.
    clock_now
        The engine clock, seconds.
    rng
        Randomness for scripted sources (the target order).
    data_loader
        ``path -> SpikeData`` for ``replay:FILE``; default ``ldns_sim.data.load.load_spike_data``.

    Returns
    -------
    ConditionSource

    Raises
    ------
    ConfigError
        Unknown spec, or a source that cannot drive this model; one line.
    """
    kind, _, arg = spec.strip().partition(":")
    channel_names = tuple(channel_names)
    if kind not in _VELOCITY_KINDS + ("replay", "none"):
        raise ConfigError(f"unknown --condition {spec!r}; expected one of "
                          f"{', '.join(VALID_SPECS)}")
    if kind in _VELOCITY_KINDS:
        _check_velocity_model(spec, velocity_scale, channel_names)
    if kind == "none":
        _no_argument(spec, arg)
        return ConstantSource.zeros(channel_names)
    if kind == "replay":
        return _replay(spec, arg, channel_names, clock_now, data_loader)
    builders = {"joystick": _joystick, "mouse": _mouse, "lsl": _lsl, "zmq": _zmq,
                "script": _script}
    return builders[kind](spec, arg, velocity_scale=velocity_scale,
                          channel_names=channel_names, clock_now=clock_now, rng=rng)


def _check_velocity_model(spec: str, velocity_scale: float, channel_names: tuple) -> None:
    if len(channel_names) != 2:
        raise ConfigError(f"--condition {spec!r} gives a 2-D hand velocity, but the model is "
                          f"conditioned on {channel_names or 'no per-bin behaviour'}; use "
                          f"replay:FILE or none (a direction model takes its angle from "
                          f"--direction)")
    if not (np.isfinite(velocity_scale) and velocity_scale > 0):
        raise ConfigError(f"--condition {spec!r}: the model's velocity_scale must be a "
                          f"positive number, got {velocity_scale}")


def _no_argument(spec: str, arg: str) -> None:
    if arg:
        raise ConfigError(f"--condition {spec!r} takes no argument; expected one of "
                          f"{', '.join(VALID_SPECS)}")


def _joystick(spec, arg, *, velocity_scale, channel_names, clock_now, rng):
    from ldns_sim.sources.condition_adapters import load_condition_adapter
    from ldns_sim.sources.joystick_source import JoystickSource

    adapter = load_condition_adapter(arg or "joystick", "joystick")
    return JoystickSource(velocity_scale=velocity_scale, clock_now=clock_now,
                          channel_names=channel_names, device_index=adapter.device_index,
                          axes=adapter.axes, invert=adapter.invert, dead_zone=adapter.dead_zone,
                          poll_hz=adapter.poll_hz, policy=adapter.hold.policy())


def _mouse(spec, arg, *, velocity_scale, channel_names, clock_now, rng):
    from ldns_sim.sources.mouse_source import MouseSource

    _no_argument(spec, arg)
    return MouseSource(velocity_scale=velocity_scale, clock_now=clock_now,
                       channel_names=channel_names)


def _lsl(spec, arg, *, velocity_scale, channel_names, clock_now, rng):
    from ldns_sim.sources.condition_adapters import load_condition_adapter
    from ldns_sim.sources.lsl_source import LslConditionSource

    is_file = arg.endswith(".toml")
    adapter = load_condition_adapter(arg if is_file else "lsl_cursor", "lsl")
    name = adapter.stream_name if (is_file or not arg) else arg
    stream_type = adapter.stream_type if (is_file or not arg) else None
    return LslConditionSource(name, stream_type, adapter.channels, adapter.timeout_s,
                              clock_now=clock_now, gain=adapter.gain,
                              channel_names=channel_names, policy=adapter.hold.policy())


def _zmq(spec, arg, *, velocity_scale, channel_names, clock_now, rng):
    from ldns_sim.sources.zmq_source import ZmqConditionSource

    return ZmqConditionSource(arg or DEFAULT_ZMQ_ENDPOINT, clock_now=clock_now,
                              channel_names=channel_names)


def _script(spec, arg, *, velocity_scale, channel_names, clock_now, rng):
    from ldns_sim.sources.script_source import ScriptedCenterOut

    if arg != "center-out":
        raise ConfigError(f"unknown script {spec!r}; expected script:center-out")
    return ScriptedCenterOut(peak_speed=velocity_scale, rng=rng, channel_names=channel_names,
                             clock_now=clock_now)


def _replay(spec, arg, channel_names, clock_now, data_loader):
    from ldns_sim.replay import ReplaySource

    if not arg:
        raise ConfigError(f"--condition {spec!r} needs a file: replay:FILE (.nwb, .mat, .npz)")
    if not Path(arg).is_file():
        raise ConfigError(f"--condition {spec!r}: {arg}: no such file")
    if data_loader is None:
        from ldns_sim.data.load import load_spike_data as data_loader
    source = ReplaySource(data_loader(arg), _CallableClock(clock_now))
    if len(source.channel_names) != len(channel_names):
        raise ConfigError(f"--condition {spec!r}: the recording's behaviour "
                          f"{source.channel_names} does not match the model's condition "
                          f"{channel_names}")
    if source.channel_names != channel_names:
        log.warning("replay %s: behaviour channels %s are fed to the model's %s in that order",
                    arg, source.channel_names, channel_names)
    return source
