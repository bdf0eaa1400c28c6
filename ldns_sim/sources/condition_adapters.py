"""Condition adapters: how a live device or stream maps onto the model's condition.

A condition adapter is a small TOML file in ``adapters/conditions/`` (``joystick.toml``,
``lsl_cursor.toml``) validated here with pydantic (``extra="forbid"``): which axes or
channels, inversion, dead zone, gain, and what to do when the link goes away.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

import ldns_sim
from ldns_sim.errors import ConfigError
from ldns_sim.sources.link_state import HoldPolicy

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, from PyPI
    import tomli as tomllib


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


def _resolve(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.suffix == ".toml":
        if not path.is_file():
            raise ConfigError(f"{path}: condition adapter file not found")
        return path
    candidate = conditions_dir() / f"{name_or_path}.toml"
    if not candidate.is_file():
        raise ConfigError(f"unknown condition adapter {str(name_or_path)!r}; expected a .toml "
                          f"path or one of {available_condition_adapters()}")
    return candidate


def _one_line(path: Path, error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        loc = ".".join(str(x) for x in item["loc"]) or "(top level)"
        value = item.get("input")
        shown = "" if isinstance(value, dict) or item["type"] == "missing" else f" (got {value!r})"
        parts.append(f"field {loc}: {item['msg']}{shown}")
    return f"{path}: " + "; ".join(parts)


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
    path = _resolve(name_or_path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read condition adapter: {exc.strerror}") from None
    if raw.get("kind") != kind:
        raise ConfigError(f"{path}: field kind is {raw.get('kind')!r}, expected {kind!r}")
    try:
        return _MODELS[kind].model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_one_line(path, exc)) from None
