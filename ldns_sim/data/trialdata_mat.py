"""Miller-lab TrialData ``.mat`` files (a struct array of binned trials) -> SpikeData.

Layout (e.g. ``center_out_data.mat``): variable ``trial_data``, one struct per trial with
``M1_spikes`` ``(T, n_neurons)`` counts, ``vel``/``pos``/``acc`` ``(T, 2)``, ``bin_size`` (s),
``target_direction`` (rad) and 1-based bin indices ``idx_trial_start``, ``idx_movement_on``,
``idx_trial_end`` (inclusive). Everything here works in the file's bins first (window, lag),
then rebins by an integer factor: counts are summed, behaviour averaged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io

from ldns_sim.core import SpikeData
from ldns_sim.data.adapters import DatasetAdapter, behaviour_names
from ldns_sim.data.binning import COUNT_DTYPE, integer_ratio, rebin_mean, rebin_sum
from ldns_sim.data.splits import drop_marked, random_splits, splits_from_labels
from ldns_sim.errors import DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Window:
    """A trial's kept bins ``[first, stop)`` in file bins, and its event bin (or -1)."""

    first: int
    stop: int
    event: int


def read_trials(path: Path, adapter: DatasetAdapter) -> list[dict]:
    """The struct array of a TrialData file as a list of per-trial dicts."""
    try:
        content = scipy.io.loadmat(str(path), simplify_cells=True)
    except NotImplementedError:
        raise DataError(f"{path}: MATLAB v7.3 (HDF5) files are not supported; "
                        f"re-save with save(..., '-v7')") from None
    except (ValueError, OSError, TypeError) as exc:
        raise DataError(f"{path}: not a readable MATLAB .mat file ({exc})") from None
    name = adapter.neural.struct
    if name not in content:
        found = sorted(k for k in content if not k.startswith("__"))
        raise DataError(f"{path}: no variable {name!r} (adapter {adapter.name!r}); "
                        f"variables present: {found}")
    trials = content[name]
    trials = [trials] if isinstance(trials, dict) else list(trials)
    if not trials:
        raise DataError(f"{path}: variable {name!r} holds no trials")
    return trials


def _field(trial: dict, name: str, path: Path, adapter: DatasetAdapter, i: int):
    if name not in trial:
        raise DataError(f"{path}: trial {i} has no field {name!r} (adapter {adapter.name!r}); "
                        f"fields present: {sorted(trial)}")
    return trial[name]


def _lag_bins(adapter: DatasetAdapter, file_bin_s: float, path: Path) -> int:
    if adapter.behaviour is None:
        return 0
    lag = integer_ratio(adapter.behaviour.lag_s, file_bin_s)
    if lag is None:
        raise DataError(f"{path}: behaviour lag {adapter.behaviour.lag_s} s is not a multiple "
                        f"of the file's {file_bin_s} s bin (adapter {adapter.name!r})")
    return lag


def _window(trial: dict, n_rows: int, lag: int, factor: int, adapter: DatasetAdapter,
            path: Path, i: int) -> _Window | None:
    """Bins to keep, in file bins; None if the trial cannot hold the requested window."""
    spec = adapter.alignment
    event = -1 if spec.event is None else int(_field(trial, spec.event, path, adapter, i)) - 1
    if spec.mode == "event":
        file_bin_s = float(trial[adapter.neural.bin_size_field])
        first, stop = (event + round(s / file_bin_s) for s in (spec.start_s, spec.end_s))
        fits = first >= max(0, -lag) and stop <= min(n_rows, n_rows - lag)
        return _Window(first, stop, event) if fits else None
    first = int(_field(trial, spec.trial_start or "idx_trial_start", path, adapter, i)) - 1
    stop = int(_field(trial, spec.trial_end or "idx_trial_end", path, adapter, i))
    first, stop = max(first, 0, -lag), min(stop, n_rows, n_rows - lag)  # behaviour must exist
    stop = first + (stop - first) // factor * factor
    return _Window(first, stop, event) if stop > first else None


def _check_event_window(adapter: DatasetAdapter, file_bin_s: float, factor: int,
                        path: Path) -> None:
    spec = adapter.alignment
    if spec.mode == "continuous":
        raise DataError(f"{path}: alignment.mode 'continuous' is not supported for .mat trials")
    if spec.mode != "event":
        return
    for name, value in (("start_s", spec.start_s), ("end_s", spec.end_s)):
        if integer_ratio(value, file_bin_s) is None:
            raise DataError(f"{path}: alignment.{name} = {value} s is not a multiple of the "
                            f"file's {file_bin_s} s bin (adapter {adapter.name!r})")
    n_file_bins = integer_ratio(spec.end_s - spec.start_s, file_bin_s)
    if n_file_bins % factor:
        raise DataError(f"{path}: window {spec.start_s}..{spec.end_s} s is not a whole number "
                        f"of {adapter.bin_s} s bins (adapter {adapter.name!r})")


def _rebin_factor(adapter: DatasetAdapter, file_bin_s: float, path: Path) -> int:
    bin_s = adapter.bin_s or file_bin_s
    factor = integer_ratio(bin_s, file_bin_s)
    if factor is None or factor < 1:
        raise DataError(f"{path}: bin width {bin_s} s is not an integer multiple of the file's "
                        f"{file_bin_s} s bins (adapter {adapter.name!r})")
    return factor


def _neuron_ids(trial: dict, n_neurons: int, adapter: DatasetAdapter) -> tuple[str, ...]:
    guide = trial.get(adapter.neural.unit_guide_field or "", None)
    guide = None if guide is None else np.atleast_2d(np.asarray(guide))
    if guide is not None and guide.shape == (n_neurons, 2):
        return tuple(f"elec{int(e)}_unit{int(u)}" for e, u in guide)
    return tuple(f"unit{k}" for k in range(n_neurons))


def load_trialdata_mat(path: str | Path, adapter: DatasetAdapter) -> SpikeData:
    """Load a TrialData ``.mat`` file as SpikeData.

    Parameters
    ----------
    path
        The ``.mat`` file (MATLAB v5/v7).
    adapter
        Its dataset adapter (format ``trialdata_mat``): bin width (an integer multiple of the
        file's), behaviour field and lag, trial window, direction field and split.

    Returns
    -------
    SpikeData
        Counts ``(n_bins_i, n_neurons)`` int32 per trial at ``adapter.bin_s`` (or the file's
        bin), behaviour ``(n_bins_i, n_behaviour)`` float32 with the lag applied. Trials that
        cannot hold the window (with the lag) are dropped and logged.
    """
    path = Path(path)
    trials = read_trials(path, adapter)
    file_bin_s = float(_field(trials[0], adapter.neural.bin_size_field, path, adapter, 0))
    factor = _rebin_factor(adapter, file_bin_s, path)
    _check_event_window(adapter, file_bin_s, factor, path)
    lag = _lag_bins(adapter, file_bin_s, path)
    counts, behaviour, kept, align = [], [], [], []
    for i, trial in enumerate(trials):
        spikes = np.atleast_2d(np.asarray(_field(trial, adapter.neural.counts_field, path,
                                                 adapter, i)))
        window = _window(trial, len(spikes), lag, factor, adapter, path, i)
        if window is None:
            continue
        counts.append(rebin_sum(spikes[window.first:window.stop], factor).astype(COUNT_DTYPE))
        if adapter.behaviour is not None:
            values = _behaviour(trial, len(spikes), adapter, path, i)
            lagged = values[window.first + lag:window.stop + lag]
            behaviour.append(rebin_mean(lagged * adapter.behaviour.scale, factor))
        kept.append(i)
        align.append((window.event - window.first) // factor)
    if not kept:
        raise DataError(f"{path}: no trial holds the window of adapter {adapter.name!r} "
                        f"({adapter.alignment.mode}, lag {lag} bins)")
    if len(kept) < len(trials):
        log.warning("%s: dropped %d of %d trials that do not hold the window",
                    path, len(trials) - len(kept), len(trials))
    return _assemble(path, adapter, trials, kept, counts, behaviour, align, file_bin_s * factor)


def _behaviour(trial: dict, n_rows: int, adapter: DatasetAdapter, path: Path,
               i: int) -> np.ndarray:
    values = np.asarray(_field(trial, adapter.behaviour.source, path, adapter, i), dtype=float)
    values = values.reshape(len(values), -1)
    if len(values) != n_rows:
        raise DataError(f"{path}: trial {i} field {adapter.behaviour.source!r} has "
                        f"{len(values)} rows for {n_rows} spike bins")
    return values


def _assemble(path: Path, adapter: DatasetAdapter, trials: list[dict], kept: list[int],
              counts: list, behaviour: list, align: list, bin_s: float) -> SpikeData:
    direction = None
    if adapter.direction.source == "column":
        angles = [float(_field(trials[i], adapter.direction.column, path, adapter, i))
                  for i in kept]
        direction = np.asarray(angles)
        direction = np.deg2rad(direction) if adapter.direction.units == "deg" else direction
    elif adapter.direction.source == "displacement":
        raise DataError(f"{path}: direction.source 'displacement' is only supported for NWB")
    rng = np.random.default_rng(adapter.split.seed)
    if adapter.split.column is not None:
        labels = [_field(trials[i], adapter.split.column, path, adapter, i) for i in kept]
        split = splits_from_labels(np.asarray(labels, dtype=object), adapter.split, rng,
                                   str(path))
    else:
        spec = adapter.split
        strata = direction if spec.stratify else None
        split = random_splits(len(kept), (spec.train, spec.val, spec.test), rng, strata)
    names = behaviour_names(adapter, behaviour[0].shape[1] if behaviour else 0, str(path))
    data = SpikeData(
        counts=tuple(counts), bin_s=bin_s,
        neuron_ids=_neuron_ids(trials[0], counts[0].shape[1], adapter),
        split=split, source=str(path),
        behaviour=tuple(behaviour) if adapter.behaviour is not None else None,
        behaviour_names=names, direction_rad=direction,
        align_bin=np.asarray(align) if adapter.alignment.event is not None else None,
    )
    return drop_marked(data)
