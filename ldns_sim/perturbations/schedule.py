"""Scheduled perturbations of the spikes a decoder sees: what goes wrong on a real array.

Each perturbation acts between ``start_s`` (inclusive) and ``end_s`` (exclusive), seconds of
session time (bin start times), on the counts after the model made them and before the decoder
reads them (and the stream publishes them). Kinds and the meaning of ``value``:

``dropout``  a fraction ``value`` of units (drawn once, seeded) go silent: counts 0.
``drift``    each unit's rate drifts linearly from its onset: factor ``1 + s_i value m``, with
             ``m`` minutes since onset and ``s_i`` uniform in [-1, 1] per unit (drawn once),
             clipped at 0. ``value`` is the largest relative change per minute.
``gain``     every unit's rate times ``value`` (``>= 0``).
``noise``    extra Poisson spikes at ``value`` Hz on every unit (a noise burst).
``shuffle``  a fraction ``value`` of the channels (drawn once) are permuted among themselves
             (a cyclic shift of the chosen channels, so every chosen channel moves).

Rate changes by a factor ``g`` are applied to Poisson counts exactly in distribution: ``g < 1``
keeps each spike with probability ``g`` (binomial thinning), ``g > 1`` adds
``Poisson((g - 1) * rate * bin_s)`` spikes, with the model's ground-truth rate. Within a bin the
order is: rate changes (drift, gain), noise, dropout, shuffle (electrode-level effects last).

Command-line and TOML form: ``KIND:VALUE@START-END`` (seconds; ``END`` may be left out for
"until the end", ``@...`` altogether for the whole session), e.g. ``dropout:0.3@60-120``,
``noise:20@30-35``, ``shuffle:1``. A TOML file holds ``[[perturbation]]`` tables with
``kind``, ``value``, ``start_s`` and optionally ``end_s``; so does a stream profile.

Used by ``ldns-sim closed-loop`` (``ldns_sim.closed_loop.session``) and ``ldns-sim stream``
(``ldns_sim.perturbations.stage``, applied to every sink's copy of the stream).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ldns_sim.errors import ConfigError
from ldns_sim.toml_config import load_toml_model

KINDS = ("dropout", "drift", "gain", "noise", "shuffle")
_ORDER = {"drift": 0, "gain": 0, "noise": 1, "dropout": 2, "shuffle": 3}


@dataclass(frozen=True)
class Perturbation:
    """One scheduled perturbation; see the module docstring for ``kind`` and ``value``."""

    kind: str
    value: float
    start_s: float = 0.0
    end_s: float = math.inf

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"perturbation kind {self.kind!r}; expected one of "
                              f"{', '.join(KINDS)}")
        if not (self.start_s >= 0 and self.end_s > self.start_s):
            raise ConfigError(f"perturbation {self.kind}: needs 0 <= start_s < end_s, got "
                              f"{self.start_s} and {self.end_s}")
        fraction = self.kind in ("dropout", "shuffle")
        if not math.isfinite(self.value) or self.value < 0 or (fraction and self.value > 1):
            expected = "a fraction in [0, 1]" if fraction else "a finite number >= 0"
            raise ConfigError(f"perturbation {self.kind}: value {self.value}, expected "
                              f"{expected}")

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.value:g}"

    def active(self, t_s: float) -> bool:
        return self.start_s <= t_s < self.end_s

    def spec(self) -> str:
        """The ``KIND:VALUE@START-END`` form of this perturbation."""
        end = "" if math.isinf(self.end_s) else f"{self.end_s:g}"
        return f"{self.label}@{self.start_s:g}-{end}"


def parse_perturbation(spec: str) -> Perturbation:
    """``KIND:VALUE[@START-[END]]`` -> ``Perturbation``; ``ConfigError`` naming the spec."""
    head, _, window = spec.strip().partition("@")
    kind, sep, value = head.partition(":")
    try:
        if not sep:
            raise ValueError("no value")
        start_s, end_s = 0.0, math.inf
        if window:
            start, dash, end = window.partition("-")
            if not dash:
                raise ValueError("no '-' in the time window")
            start_s = float(start)
            end_s = float(end) if end else math.inf
        return Perturbation(kind.strip(), float(value), start_s, end_s)
    except ValueError as error:
        raise ConfigError(f"--perturb {spec!r}: {error}; expected KIND:VALUE@START-END "
                          f"with KIND one of {', '.join(KINDS)}, e.g. dropout:0.3@60-120") from None


def from_command_line(specs: Sequence[str], path: str | Path | None = None
                      ) -> list[Perturbation]:
    """``--perturb SPEC`` (repeatable) and ``--perturb-file FILE.toml``, in that order."""
    out = [parse_perturbation(s) for s in specs]
    return out + (load_perturbations(path) if path else [])


class PerturbationEntry(BaseModel):
    """One ``[[perturbation]]`` table (a perturbation file or a stream profile), validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str
    value: float
    start_s: float = Field(0.0, ge=0)
    end_s: float | None = None
    """``None``: until the end of the session."""

    @model_validator(mode="after")
    def _valid(self) -> PerturbationEntry:
        try:
            self.to_perturbation()
        except ConfigError as error:
            raise ValueError(str(error)) from None
        return self

    def to_perturbation(self) -> Perturbation:
        return Perturbation(self.kind, self.value, self.start_s,
                            math.inf if self.end_s is None else self.end_s)


class PerturbationFile(BaseModel):
    """A perturbation file: ``[[perturbation]]`` tables and nothing else."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    perturbation: tuple[PerturbationEntry, ...] = ()


def load_perturbations(path: str | Path) -> list[Perturbation]:
    """The ``[[perturbation]]`` tables of a TOML file; ``ConfigError`` naming file and field."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"perturbation file {path}: not found")
    data = load_toml_model(PerturbationFile, path, "perturbation file")
    return [e.to_perturbation() for e in data.perturbation]


class PerturbationSchedule:
    """Applies a list of perturbations to counts, bin by bin, and reports onsets and offsets.

    Parameters
    ----------
    perturbations
        The schedule (any order; applied in the order of the module docstring).
    n_neurons
        Channels per bin.
    bin_s
        Bin width (s).
    rng
        Draws the fixed choices (units, signs, permutations) at construction and the spikes
        added or removed during ``apply``.
    """

    def __init__(self, perturbations: Sequence[Perturbation], n_neurons: int, bin_s: float,
                 rng: np.random.Generator) -> None:
        self.perturbations = tuple(sorted(perturbations, key=lambda p: _ORDER[p.kind]))
        self.n_neurons, self.bin_s, self.rng = int(n_neurons), float(bin_s), rng
        self._fixed: list[np.ndarray | None] = [self._draw(p) for p in self.perturbations]
        self._was_active = [False] * len(self.perturbations)

    def _draw(self, p: Perturbation) -> np.ndarray | None:
        n = self.n_neurons
        if p.kind == "dropout":
            return self.rng.choice(n, size=int(round(p.value * n)), replace=False)
        if p.kind == "drift":
            return self.rng.uniform(-1.0, 1.0, n)
        if p.kind == "shuffle":
            chosen = self.rng.choice(n, size=int(round(p.value * n)), replace=False)
            perm = np.arange(n)
            if len(chosen) > 1:
                perm[chosen] = np.roll(chosen, 1)  # channel chosen[i] reads chosen[i-1]
            return perm
        return None

    def events(self, t_s: float) -> list[str]:
        """Markers for perturbations that start or stop at bin start ``t_s``."""
        out = []
        for i, p in enumerate(self.perturbations):
            now = p.active(t_s)
            if now != self._was_active[i]:
                out.append(f"perturbation_{'start' if now else 'stop'}:{p.label}")
                self._was_active[i] = now
        return out

    def factors(self, t_s: float) -> np.ndarray:
        """``(n_neurons,)`` combined rate factor of the active drift and gain perturbations."""
        g = np.ones(self.n_neurons)
        for p, fixed in zip(self.perturbations, self._fixed):
            if not p.active(t_s):
                continue
            if p.kind == "gain":
                g *= p.value
            elif p.kind == "drift":
                g *= np.maximum(0.0, 1.0 + fixed * p.value * (t_s - p.start_s) / 60.0)
        return g

    def apply(self, counts: np.ndarray, rate_per_bin: np.ndarray, t_s: float) -> np.ndarray:
        """The perturbed counts of the bin starting at ``t_s``.

        Parameters
        ----------
        counts
            ``(n_neurons,)`` integer counts from the model.
        rate_per_bin
            ``(n_neurons,)`` the model's ground-truth rate, in spikes per bin.
        t_s
            Bin start, session seconds.

        Returns
        -------
        numpy.ndarray
            ``(n_neurons,)`` int64 counts.
        """
        out = np.asarray(counts, dtype=np.int64).copy()
        active = [(p, f) for p, f in zip(self.perturbations, self._fixed) if p.active(t_s)]
        if not active:
            return out
        g = self.factors(t_s)
        if np.any(g != 1.0):
            low = g < 1.0
            out[low] = self.rng.binomial(out[low], g[low])
            high = g > 1.0
            out[high] += self.rng.poisson((g[high] - 1.0) * np.asarray(rate_per_bin)[high])
        for p, fixed in active:
            if p.kind == "noise":
                out += self.rng.poisson(p.value * self.bin_s, self.n_neurons)
            elif p.kind == "dropout":
                out[fixed] = 0
            elif p.kind == "shuffle":
                out = out[fixed]
        return out
