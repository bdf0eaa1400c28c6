"""Reading the project's TOML files (adapters, stream profiles) into pydantic models.

One place turns a file into validated data, and any problem into one ``ConfigError`` line that
names the file and the offending field. ``tomllib`` only parses: nothing is ever evaluated.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from ldns_sim.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, from PyPI
    import tomli as tomllib

ModelT = TypeVar("ModelT", bound=BaseModel)


def resolve_named_toml(name_or_path: str | Path, folder: Path, what: str) -> Path:
    """A ``.toml`` path as given, or ``folder/NAME.toml`` for a bare name."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ConfigError(f"{path}: {what} file not found")
        return path
    candidate = folder / f"{name_or_path}.toml"
    if not candidate.is_file():
        known = sorted(p.stem for p in folder.glob("*.toml"))
        raise ConfigError(f"unknown {what} {str(name_or_path)!r}; expected a .toml path or one "
                          f"of {known}")
    return candidate


def read_toml(path: Path, what: str) -> dict:
    """Parse a TOML file; unreadable or invalid files give one ConfigError line."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc.strerror}") from None


def validation_line(path: Path, error: ValidationError) -> str:
    """All of a pydantic error's problems on one line: ``FILE: field a.b: message (got x)``."""
    parts = []
    for item in error.errors():
        loc = ".".join(str(x) for x in item["loc"]) or "(top level)"
        msg = item["msg"].removeprefix("Value error, ")
        value = item.get("input")
        shown = "" if isinstance(value, dict) or item["type"] == "missing" else f" (got {value!r})"
        parts.append(f"field {loc}: {msg}{shown}")
    return f"{path}: " + "; ".join(parts)


def validate(model: type[ModelT], raw: dict, path: Path) -> ModelT:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(validation_line(path, exc)) from None


def load_toml_model(model: type[ModelT], path: Path, what: str) -> ModelT:
    """Read ``path`` and validate it as ``model``."""
    return validate(model, read_toml(path, what), path)
