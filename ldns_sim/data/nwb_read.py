"""Reading the pieces of an NWB file that SpikeData needs, as plain numpy.

The only module that touches pynwb objects: spike times from the Units table, columns of
the trials table, and one behaviour TimeSeries found by name in a processing module (directly,
inside a container such as ``Position``, or in ``acquisition``).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pynwb import NWBFile, TimeSeries

from ldns_sim.data.adapters import BehaviourSpec, DatasetAdapter
from ldns_sim.errors import DataError


@dataclass(frozen=True)
class Series:
    """A behaviour signal: ``times_s`` ``(n_samples,)`` and ``values`` ``(n_samples, n_ch)``."""

    name: str
    times_s: np.ndarray
    values: np.ndarray
    channel_names: tuple[str, ...] = ()
    """From a ``columns=[...]`` note in the series' comments (as ldns-sim writes), if any."""

    @property
    def sampling_interval_s(self) -> float:
        """Median interval between samples (inf with fewer than two samples)."""
        return float(np.median(np.diff(self.times_s))) if len(self.times_s) > 1 else np.inf


def read_units(nwb: NWBFile, path: Path) -> tuple[list[np.ndarray], tuple[str, ...]]:
    """Sorted spike times (s) per unit, and one id per unit: the ``unit_name`` column if
    there is one, else ``unit{id}``."""
    units = nwb.units
    if units is None or len(units) == 0:
        raise DataError(f"{path}: no Units table (or it is empty); an NWB recording needs "
                        f"units with spike_times")
    if "spike_times" not in units.colnames:
        raise DataError(f"{path}: the Units table has no spike_times column; columns present: "
                        f"{list(units.colnames)}")
    index = units["spike_times"]  # VectorIndex: end offset of each unit in the flat array
    ends = np.asarray(index.data[:], dtype=np.int64)
    flat = np.asarray(index.target.data[:], dtype=np.float64)
    starts = np.concatenate([[0], ends[:-1]])
    spike_times = [np.sort(flat[a:b]) for a, b in zip(starts, ends)]
    if "unit_name" in units.colnames:  # ldns-sim sessions keep the model's neuron ids
        ids = tuple(str(x.decode() if isinstance(x, bytes) else x)
                    for x in units["unit_name"].data[:])
    else:
        ids = tuple(f"unit{int(i)}" for i in units.id[:])
    return spike_times, ids


def read_trial_columns(nwb: NWBFile, names: list[str], path: Path,
                       adapter: DatasetAdapter) -> dict[str, np.ndarray]:
    """The named columns of the trials table as arrays (strings decoded)."""
    trials = nwb.trials
    if trials is None or len(trials) == 0:
        raise DataError(f"{path}: no trials table, but adapter {adapter.name!r} cuts trials "
                        f"(alignment.mode = {adapter.alignment.mode!r}); use mode 'continuous' "
                        f"with segment_s for a continuous recording")
    columns = {}
    for name in names:
        if name not in trials.colnames and name not in ("start_time", "stop_time"):
            raise DataError(f"{path}: trials table has no column {name!r} (adapter "
                            f"{adapter.name!r}); columns present: {list(trials.colnames)}")
        values = np.asarray(trials[name].data[:])
        if values.dtype.kind in "SO":
            values = np.array([v.decode() if isinstance(v, bytes) else v for v in values],
                              dtype=object)
        columns[name] = values
    return columns


def has_trials(nwb: NWBFile) -> bool:
    """Whether the file has a non-empty trials table."""
    return nwb.trials is not None and len(nwb.trials) > 0


def _candidates(nwb: NWBFile, module: str) -> dict[str, TimeSeries]:
    """Every TimeSeries reachable by name: ``name`` and ``Container/name``."""
    found: dict[str, TimeSeries] = {}
    sources = []
    if module in nwb.processing:
        sources.append(nwb.processing[module].data_interfaces)
    sources.append(nwb.acquisition)
    for interfaces in sources:
        for name, obj in interfaces.items():
            if isinstance(obj, TimeSeries):
                found.setdefault(name, obj)
                continue
            inner = getattr(obj, "time_series", None) or getattr(obj, "spatial_series", None)
            for inner_name, series in (inner or {}).items():
                found.setdefault(f"{name}/{inner_name}", series)
                found.setdefault(inner_name, series)
    return found


def read_series(nwb: NWBFile, spec: BehaviourSpec | str, path: Path,
                adapter: DatasetAdapter) -> Series:
    """One behaviour TimeSeries by name, as times and ``(n_samples, n_channels)`` values."""
    name = spec if isinstance(spec, str) else spec.source
    module = adapter.behaviour.module if adapter.behaviour is not None else "behavior"
    found = _candidates(nwb, module)
    if name not in found:
        raise DataError(f"{path}: no behaviour TimeSeries {name!r} (adapter {adapter.name!r}) "
                        f"in processing[{module!r}] or acquisition; present: {sorted(found)}")
    series = found[name]
    values = np.asarray(series.data[:], dtype=np.float64) * series.conversion + series.offset
    values = values.reshape(len(values), -1)
    times = np.asarray(series.get_timestamps(), dtype=np.float64)
    if len(times) != len(values):
        raise DataError(f"{path}: behaviour {name!r} has {len(values)} samples and "
                        f"{len(times)} timestamps")
    if len(times) > 1 and np.any(np.diff(times) <= 0):
        order = np.argsort(times, kind="stable")
        times, values = times[order], values[order]
    return Series(name, times, values, _channel_names(series, values.shape[1]))


def _channel_names(series: TimeSeries, n_channels: int) -> tuple[str, ...]:
    match = re.search(r"columns=(\[[^\]]*\])", series.comments or "")
    if match is None:
        return ()
    try:
        names = ast.literal_eval(match.group(1))
    except (ValueError, SyntaxError):
        return ()
    ok = len(names) == n_channels and all(isinstance(x, str) for x in names)
    return tuple(names) if ok else ()
