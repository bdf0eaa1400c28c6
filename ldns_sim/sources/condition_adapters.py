"""Condition adapters: how a live device or stream maps onto the model's condition.

A condition adapter is a small TOML file in ``adapters/conditions/`` (``joystick.toml``,
``lsl_cursor.toml``) validated here with pydantic (``extra="forbid"``): which axes or
channels, inversion, dead zone, gain, and what to do when the link goes away.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

import ldns_sim
from ldns_sim.errors import ConfigError
from ldns_sim.sources.link_state import HoldPolicy
from ldns_sim.toml_config import read_toml, resolve_named_toml, validate


def conditions_dir() -> Path:
    """The repository's ``adapters/conditions`` folder (next to the ``ldns_sim`` package)."""
    return Path(ldns_sim.__file__).resolve().parents[1] / "adapters" / "conditions"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HoldSpec(_Section):
    """``[hold]``: the last value is held ``hold_s``, then decays with ``decay_tau_s``."""

    hold_s: float = Field(0.25, ge=0)
    decay_tau_s: float = Field(0.2, gt=0)
    lost_after_s: float | None = Field(0.5, gt=0)

    def policy(self) -> HoldPolicy:
        return HoldPolicy(self.hold_s, self.decay_tau_s, self.lost_after_s)


class JoystickAdapter(_Section):
    """A gamepad stick as the hand velocity (``kind = "joystick"``)."""

    kind: Literal["joystick"]
    device_index: int = Field(0, ge=0)
    axes: tuple[int, int] = (0, 1)
    invert: tuple[bool, bool] = (False, True)
    dead_zone: float = Field(0.1, ge=0, lt=1)
    poll_hz: float = Field(200.0, gt=0, le=1000)
    hold: HoldSpec = HoldSpec()


class LslAdapter(_Section):
    """An LSL behaviour stream as the hand velocity (``kind = "lsl"``)."""

    kind: Literal["lsl"]
    stream_name: str | None = None
    stream_type: str | None = None
    channels: tuple[int, int] = (0, 1)
    gain: float = 1.0
    """Factor from the stream's units to the model's behaviour units."""
    timeout_s: float = Field(5.0, gt=0)
    hold: HoldSpec = HoldSpec()


ConditionAdapter = JoystickAdapter | LslAdapter
_MODELS: dict[str, type[JoystickAdapter] | type[LslAdapter]] = {
    "joystick": JoystickAdapter, "lsl": LslAdapter}


def available_condition_adapters() -> list[str]:
    """Names of the condition adapters shipped in ``adapters/conditions``."""
    return sorted(p.stem for p in conditions_dir().glob("*.toml"))


def load_condition_adapter(name_or_path: str | Path, kind: str) -> ConditionAdapter:
    """Read and validate a condition adapter of the given kind.

    Parameters
    ----------
    name_or_path
        An adapter name (``"joystick"`` -> ``adapters/conditions/joystick.toml``) or a path
        to a TOML file.
    kind
        The kind the caller needs: ``"joystick"`` or ``"lsl"``.

    Returns
    -------
    JoystickAdapter or LslAdapter

    Raises
    ------
    ConfigError
        One line naming the file and the offending field.
    """
    path = resolve_named_toml(name_or_path, conditions_dir(), "condition adapter")
    raw = read_toml(path, "condition adapter")
    if raw.get("kind") != kind:
        raise ConfigError(f"{path}: field kind is {raw.get('kind')!r}, expected {kind!r}")
    return validate(_MODELS[kind], raw, path)
