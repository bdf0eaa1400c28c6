"""NWB recordings (DANDI / NLB motor-cortex layout, or our own sessions) -> SpikeData.

Trials come from the trials table (whole trials, or a window around an event such as
``move_onset_time``) or, for a continuous recording without trials, from fixed segments.
Spikes are counted in ``[t, t + bin_s)`` bins. Behaviour is linearly interpolated at one
instant per bin (its centre by default) plus the lag, so neural bin t is paired with
behaviour at t + lag; trials whose behaviour is unknown there (NaN, gap, outside the
recording) are dropped and logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pynwb import NWBHDF5IO, NWBFile

from ldns_sim.core import SpikeData
from ldns_sim.data.adapters import DatasetAdapter, behaviour_names
from ldns_sim.data.binning import bin_spike_times, integer_ratio, interpolate_behaviour
from ldns_sim.data.nwb_read import Series, read_series, read_trial_columns, read_units
from ldns_sim.data.splits import drop_marked, random_splits, splits_from_labels
from ldns_sim.errors import DataError

log = logging.getLogger(__name__)

_SAMPLE_OFFSET = {"start": 0.0, "centre": 0.5, "end": 1.0}  # where in a bin behaviour is read


@dataclass(frozen=True)
class _Windows:
    """The time windows to bin, one per trial or segment."""

    starts_s: np.ndarray  # (n,) first bin start
    n_bins: np.ndarray  # (n,)
    event_s: np.ndarray | None = None  # (n,) alignment event time, NaN if unknown
    labels: np.ndarray | None = None  # (n,) split labels from the file
    direction_rad: np.ndarray | None = None  # (n,)

    def keep(self, idx: np.ndarray) -> _Windows:
        def pick(a):
            return None if a is None else a[idx]
        return _Windows(self.starts_s[idx], self.n_bins[idx], pick(self.event_s),
                        pick(self.labels), pick(self.direction_rad))


def load_nwb(path: str | Path, adapter: DatasetAdapter) -> SpikeData:
    """Load an NWB file as SpikeData.

    Parameters
    ----------
    path
        NWB file with a Units table (spike_times); a trials table unless the adapter's
        alignment mode is ``continuous``; the behaviour TimeSeries the adapter names.
    adapter
        A dataset adapter of format ``nwb``.

    Returns
    -------
    SpikeData
        int32 counts ``(n_bins_i, n_units)`` per trial or segment at the adapter's
        ``bin_s`` (or the behaviour's sampling interval when that is unset), behaviour
        float32 ``(n_bins_i, n_channels)`` with the lag applied.
    """
    path = Path(path)
    try:
        io = NWBHDF5IO(str(path), mode="r")
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"{path}: not a readable NWB file ({exc})") from None
    with io:
        nwb = io.read()
        spike_times, ids = read_units(nwb, path)
        series = read_series(nwb, adapter.behaviour, path, adapter) if adapter.behaviour else None
        bin_s = _bin_width(adapter, series, path)
        if adapter.alignment.mode == "continuous":
            windows = _segments(adapter, series, spike_times, bin_s, path)
        else:
            windows = _trial_windows(nwb, adapter, bin_s, path)
    counts = bin_spike_times(spike_times, windows.starts_s, windows.n_bins, bin_s)
    behaviour = None
    if series is not None:
        behaviour, ok = _behaviour(series, windows, adapter, bin_s)
        if not ok.all():
            if not ok.any():
                raise DataError(f"{path}: behaviour {series.name!r} is unknown (NaN, gap or "
                                f"outside the recording) in every trial of adapter "
                                f"{adapter.name!r} (lag {adapter.behaviour.lag_s} s)")
            log.warning("%s: dropped %d of %d trials where %r is unknown", path,
                        int((~ok).sum()), len(ok), series.name)
            kept = np.flatnonzero(ok)
            windows = windows.keep(kept)
            counts = [counts[i] for i in kept]
            behaviour = [behaviour[i] for i in kept]
    names = series.channel_names if series is not None else ()
    return _assemble(path, adapter, windows, counts, behaviour, ids, bin_s, names)


def _bin_width(adapter: DatasetAdapter, series: Series | None, path: Path) -> float:
    if adapter.bin_s is None and series is None:
        raise DataError(f"{path}: adapter {adapter.name!r} sets no bin_s and names no "
                        f"behaviour to take the bin width from")
    bin_s = adapter.bin_s if adapter.bin_s is not None else round(series.sampling_interval_s, 9)
    if series is not None and series.sampling_interval_s > bin_s * (1 + 1e-6):
        raise DataError(f"{path}: behaviour {series.name!r} is sampled every "
                        f"{series.sampling_interval_s:g} s, coarser than the {bin_s:g} s bin of "
                        f"adapter {adapter.name!r}; use a bin of at least that width")
    return bin_s


def _trial_windows(nwb: NWBFile, adapter: DatasetAdapter, bin_s: float, path: Path) -> _Windows:
    spec = adapter.alignment
    start_col, stop_col = spec.trial_start or "start_time", spec.trial_end or "stop_time"
    names = [start_col, stop_col] + [c for c in (spec.event, adapter.direction.column
                                                 if adapter.direction.source == "column"
                                                 else None, adapter.split.column) if c]
    cols = read_trial_columns(nwb, list(dict.fromkeys(names)), path, adapter)
    event = None if spec.event is None else cols[spec.event].astype(float)
    if spec.mode == "event":
        n = integer_ratio(spec.end_s - spec.start_s, bin_s)
        if n is None or n < 1:
            raise DataError(f"{path}: window {spec.start_s}..{spec.end_s} s is not a whole "
                            f"number of {bin_s} s bins (adapter {adapter.name!r})")
        starts, n_bins = event + spec.start_s, np.full(len(event), n)
    else:
        starts = cols[start_col].astype(float)
        durations = cols[stop_col].astype(float) - starts
        n_bins = np.floor(durations / bin_s + 1e-6).astype(int)
        short = np.flatnonzero(n_bins < 1)
        if len(short):
            raise DataError(f"{path}: trial {short[0]} lasts {durations[short[0]]:g} s, shorter "
                            f"than one {bin_s:g} s bin (adapter {adapter.name!r}); "
                            f"{len(short)} such trials")
    direction = None
    if adapter.direction.source == "column":
        direction = cols[adapter.direction.column].astype(float)
        direction = np.deg2rad(direction) if adapter.direction.units == "deg" else direction
    elif adapter.direction.source == "displacement":
        direction = _displacement_direction(nwb, adapter, event if event is not None
                                            else starts, path)
    labels = None if adapter.split.column is None else cols[adapter.split.column]
    windows = _Windows(starts, n_bins, event, labels, direction)
    valid = np.flatnonzero(np.isfinite(starts))
    if len(valid) < len(starts):
        log.warning("%s: dropped %d trials without %r", path, len(starts) - len(valid), spec.event)
        if len(valid) == 0:
            raise DataError(f"{path}: no trial has a finite {spec.event!r} "
                            f"(adapter {adapter.name!r})")
        windows = windows.keep(valid)
    return windows


def _displacement_direction(nwb: NWBFile, adapter: DatasetAdapter, ref_s: np.ndarray,
                            path: Path) -> np.ndarray:
    spec = adapter.direction
    pos = read_series(nwb, spec.series, path, adapter)
    gap = 5 * pos.sampling_interval_s
    a = interpolate_behaviour(pos.times_s, pos.values, ref_s + spec.from_s, gap)
    b = interpolate_behaviour(pos.times_s, pos.values, ref_s + spec.to_s, gap)
    if pos.values.shape[1] < 2:
        raise DataError(f"{path}: direction series {spec.series!r} has "
                        f"{pos.values.shape[1]} channel(s); a displacement needs x and y")
    return np.arctan2(b[:, 1] - a[:, 1], b[:, 0] - a[:, 0]).astype(float)


def _segments(adapter: DatasetAdapter, series: Series | None, spike_times: list[np.ndarray],
              bin_s: float, path: Path) -> _Windows:
    seg_s = adapter.alignment.segment_s
    n = integer_ratio(seg_s, bin_s)
    if n is None or n < 1:
        raise DataError(f"{path}: segment_s {seg_s} s is not a whole number of {bin_s} s bins "
                        f"(adapter {adapter.name!r})")
    if series is not None:
        # Bins placed so that each bin's behaviour instant falls on a sample.
        shift = _SAMPLE_OFFSET[adapter.behaviour.sample_at] * bin_s + adapter.behaviour.lag_s
        t_begin, t_end = series.times_s[0] - shift, series.times_s[-1] - shift + bin_s
    else:
        t_begin = 0.0
        t_end = max((float(t[-1]) for t in spike_times if len(t)), default=0.0)
    n_segments = int(np.floor((t_end - t_begin) / seg_s + 1e-6))
    if n_segments < 1:
        raise DataError(f"{path}: the recording lasts {t_end - t_begin:g} s, shorter than one "
                        f"segment of {seg_s:g} s (adapter {adapter.name!r})")
    starts = t_begin + np.arange(n_segments) * seg_s
    return _Windows(starts, np.full(n_segments, n))


def _behaviour(series: Series, windows: _Windows, adapter: DatasetAdapter,
               bin_s: float) -> tuple[list[np.ndarray], np.ndarray]:
    """Behaviour per window ``(n_bins_i, n_channels)`` and whether it is known everywhere."""
    spec = adapter.behaviour
    offset = _SAMPLE_OFFSET[spec.sample_at]
    queries = [s + (np.arange(n) + offset) * bin_s + spec.lag_s
               for s, n in zip(windows.starts_s, windows.n_bins)]
    max_gap = spec.max_gap_s if spec.max_gap_s is not None else 5 * series.sampling_interval_s
    values = interpolate_behaviour(series.times_s, series.values, np.concatenate(queries),
                                   max_gap * (1 + 1e-6))
    values *= np.float32(spec.scale)
    per_window = np.split(values, np.cumsum(windows.n_bins)[:-1])
    ok = np.array([np.isfinite(v).all() for v in per_window])
    return per_window, ok


def _assemble(path: Path, adapter: DatasetAdapter, windows: _Windows, counts: list,
              behaviour: list | None, ids: tuple[str, ...], bin_s: float,
              file_names: tuple[str, ...]) -> SpikeData:
    rng = np.random.default_rng(adapter.split.seed)
    spec = adapter.split
    if windows.labels is not None:
        split = splits_from_labels(windows.labels, spec, rng, str(path))
    else:
        strata = windows.direction_rad if spec.stratify else None
        split = random_splits(len(counts), (spec.train, spec.val, spec.test), rng, strata)
    align = None
    if windows.event_s is not None:
        rel = (windows.event_s - windows.starts_s) / bin_s
        align = np.where(np.isfinite(rel), np.floor(np.nan_to_num(rel) + 1e-6), -1).astype(int)
    names = () if not behaviour else behaviour_names(adapter, behaviour[0].shape[1], str(path),
                                                      file_names)
    data = SpikeData(
        counts=tuple(counts), bin_s=float(bin_s), neuron_ids=ids, split=split,
        source=str(path), behaviour=None if behaviour is None else tuple(behaviour),
        behaviour_names=names, direction_rad=windows.direction_rad, align_bin=align,
    )
    return drop_marked(data)
