"""Dataset adapters: how one recording layout (NWB, TrialData .mat, .npz) maps to SpikeData.

An adapter is a small TOML file in ``adapters/datasets/`` validated here (pydantic v2,
``extra="forbid"``). It says which bin width to use, which behaviour channels to read and with
what lag, how trials are cut (whole trials, a window around an event, or fixed segments of a
continuous recording), where the reach direction comes from and how trials are split.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

import ldns_sim
from ldns_sim.errors import DataError
from ldns_sim.toml_config import load_toml_model, resolve_named_toml

SplitTarget = Literal["train", "val", "test", "holdout", "drop"]


def adapters_dir() -> Path:
    """The repository's ``adapters/datasets`` folder (next to the ``ldns_sim`` package)."""
    return Path(ldns_sim.__file__).resolve().parents[1] / "adapters" / "datasets"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NeuralSpec(_Section):
    """Where the spikes are. NWB always reads the Units table; these name .mat fields."""

    struct: str = "trial_data"
    """.mat: the variable holding the trial struct array."""
    counts_field: str = "M1_spikes"
    """.mat: per-trial ``(n_bins, n_neurons)`` count matrix."""
    unit_guide_field: str | None = "M1_unit_guide"
    """.mat: ``(n_neurons, 2)`` electrode/unit table used for neuron ids, if present."""
    bin_size_field: str = "bin_size"
    """.mat: the file's own bin width in seconds."""


class BehaviourSpec(_Section):
    """One behaviour signal, paired with the spikes bin for bin."""

    source: str
    """NWB: a TimeSeries name in the processing module (``hand_vel``), or a path into a
    container (``Position/cursor_pos``); .mat: a per-trial field (``vel``)."""
    names: tuple[str, ...] = ()
    """Channel names; empty means ``{source}_0``, ``{source}_1``, ..."""
    lag_s: float = 0.0
    """Neural bin t is paired with behaviour at t + lag_s (motor cortex leads movement)."""
    scale: float = 1.0
    """Multiplies the behaviour values (e.g. 0.001 for mm/s -> m/s)."""
    module: str = "behavior"
    """NWB: processing module holding the series (``acquisition`` is searched too)."""
    sample_at: Literal["centre", "start", "end"] = "centre"
    """NWB: which instant of each bin the behaviour is interpolated at (before the lag)."""
    max_gap_s: float | None = Field(default=None, gt=0)
    """NWB: longest stretch without samples (or of NaNs) bridged by interpolation;
    default five sampling intervals. Trials touching a longer gap are dropped."""


class AlignmentSpec(_Section):
    """How a recording is cut into trials."""

    mode: Literal["whole_trial", "event", "continuous"] = "whole_trial"
    trial_start: str | None = None
    """Start column/field (NWB ``start_time``; .mat ``idx_trial_start``, 1-based bins)."""
    trial_end: str | None = None
    """End column/field (NWB ``stop_time``; .mat ``idx_trial_end``, inclusive)."""
    event: str | None = None
    """Alignment event column/field (``move_onset_time``, ``idx_movement_on``): the window
    centre in ``event`` mode, and ``SpikeData.align_bin`` in both trial modes."""
    start_s: float | None = None
    """``event`` mode: window start relative to the event, seconds (e.g. -0.25)."""
    end_s: float | None = None
    """``event`` mode: window end relative to the event, seconds (e.g. 0.45)."""
    segment_s: float | None = Field(default=None, gt=0)
    """``continuous`` mode: length of each segment, seconds."""

    @model_validator(mode="after")
    def _mode_fields(self) -> AlignmentSpec:
        if self.mode == "event":
            if self.event is None or self.start_s is None or self.end_s is None:
                raise ValueError("event mode needs event, start_s and end_s")
            if not self.end_s > self.start_s:
                raise ValueError(f"end_s ({self.end_s}) must be after start_s ({self.start_s})")
        if self.mode == "continuous" and self.segment_s is None:
            raise ValueError("continuous mode needs segment_s")
        return self


class DirectionSpec(_Section):
    """Where each trial's reach direction comes from."""

    source: Literal["none", "column", "displacement"] = "none"
    column: str | None = None
    """``column``: trial column / .mat field holding the angle."""
    units: Literal["rad", "deg"] = "rad"
    series: str | None = None
    """``displacement`` (NWB): position TimeSeries whose displacement gives the angle."""
    from_s: float = 0.0
    """``displacement``: first instant, relative to the alignment event (or trial start)."""
    to_s: float | None = None
    """``displacement``: second instant, relative to the alignment event (or trial start)."""

    @model_validator(mode="after")
    def _source_fields(self) -> DirectionSpec:
        if self.source == "column" and self.column is None:
            raise ValueError("source 'column' needs column")
        if self.source == "displacement" and (self.series is None or self.to_s is None):
            raise ValueError("source 'displacement' needs series and to_s")
        return self


class SplitSpec(_Section):
    """Train/val/test assignment: random fractions (stratified by direction) or a column."""

    train: float = Field(default=0.7, ge=0, le=1)
    val: float = Field(default=0.1, ge=0, le=1)
    test: float = Field(default=0.2, ge=0, le=1)
    seed: int = 42
    stratify: bool = True
    """Draw the fractions within each direction, when trials have one."""
    column: str | None = None
    """Trial column (NWB) / field (.mat) holding a split label per trial (NLB ``split``)."""
    column_map: dict[str, SplitTarget] = Field(default_factory=dict)
    """Label -> split. ``holdout`` trials are divided into val/test in the ratio val:test;
    ``drop`` removes the trial. Labels train/val/test map to themselves by default."""

    @model_validator(mode="after")
    def _fractions(self) -> SplitSpec:
        total = self.train + self.val + self.test
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"train + val + test must be 1, got {total:g}")
        return self


class DatasetAdapter(_Section):
    """How one recording layout becomes :class:`ldns_sim.core.SpikeData`."""

    name: str
    description: str = ""
    format: Literal["nwb", "trialdata_mat", "npz"]
    bin_s: float | None = Field(default=None, gt=0)
    """Output bin width in seconds. None: the file's own (.mat), or the behaviour's sampling
    interval (NWB recordings with one condition sample per bin)."""
    neural: NeuralSpec = NeuralSpec()
    behaviour: BehaviourSpec | None = None
    alignment: AlignmentSpec = AlignmentSpec()
    direction: DirectionSpec = DirectionSpec()
    split: SplitSpec = SplitSpec()


def available_adapters() -> list[str]:
    """Names of the adapters shipped in ``adapters/datasets``."""
    return sorted(p.stem for p in adapters_dir().glob("*.toml"))


def load_adapter(name_or_path: str | Path) -> DatasetAdapter:
    """Read and validate a dataset adapter.

    Parameters
    ----------
    name_or_path
        An adapter name (``"nlb_mc_maze"`` -> ``adapters/datasets/nlb_mc_maze.toml``) or a
        path to a TOML file.

    Returns
    -------
    DatasetAdapter
        The validated adapter.

    Raises
    ------
    ConfigError
        One line naming the file and the offending field.
    """
    path = resolve_named_toml(name_or_path, adapters_dir(), "dataset adapter")
    return load_toml_model(DatasetAdapter, path, "adapter")


def behaviour_names(adapter: DatasetAdapter, n_channels: int, where: str,
                    from_file: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The adapter's behaviour channel names, checked against the ``n_channels`` read.

    Without names in the adapter: ``from_file`` (names the file gives), else
    ``{source}_0``, ``{source}_1``, ...
    """
    spec = adapter.behaviour
    if spec is None:
        return ()
    if not spec.names:
        if len(from_file) == n_channels:
            return tuple(from_file)
        return tuple(f"{spec.source}_{k}" for k in range(n_channels))
    if len(spec.names) != n_channels:
        raise DataError(f"{where}: behaviour {spec.source!r} has {n_channels} channels, but "
                        f"adapter {adapter.name!r} names {len(spec.names)}: {list(spec.names)}")
    return spec.names
