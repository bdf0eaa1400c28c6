"""Trial-structured SpikeData (e.g. sampled trials) -> one NWB file our NWB loader reads back.

Layout (times in seconds from ``session_start_time``, the moment of writing):

- trials are laid end to end on one timeline with ``TRIAL_GAP_BINS`` empty bins between them;
  trial i covers ``[start_i, start_i + n_bins_i * bin_s)``.
- ``intervals/trials``: ``start_time``, ``stop_time``, ``split`` (train | val | test),
  ``direction_rad`` (when the data has directions), ``align_time`` (when it has an alignment
  bin: the start of that bin).
- ``units``: ``spike_times`` (the k spikes of a bin spread evenly inside it, the convention of
  :data:`ldns_sim.sinks.nwb_writer.SPIKE_TIME_CONVENTION`), ``obs_intervals`` (the trial
  intervals), ``unit_name`` (``SpikeData.neuron_ids``), ``resolution`` = bin width.
- ``processing/ecephys/binned_spike_counts``: ``(n_bins_total, n_neurons)`` counts, one row per
  bin, timestamped at each bin's start.
- ``processing/behavior/<name>``: the behaviour, one sample per bin stamped at the bin's start,
  so reading it at each bin's start (``sample_at = "start"``, lag 0) gives the stored values
  back exactly. The name follows the channels' family (:func:`behaviour_series_name`):
  ``hand_vel`` for ``vel_*`` channels, ``hand_pos`` for ``pos_*``, else ``condition``. Channel
  names are kept in the series' comments as ``columns=[...]`` (the loader reads them).
- ``processing/ldns_sim/rates``: ground-truth rates in Hz, when given.
- ``notes``: JSON with :data:`LAYOUT_KEY` = :data:`LAYOUT`, model name, sha256, seed, bin
  width and what the file holds; :func:`is_trials_nwb` detects such files by it and
  :func:`trials_adapter` builds the adapter that reads one back into the same SpikeData.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import uuid
from pathlib import Path

import h5py
import numpy as np

from ldns_sim import __version__
from ldns_sim.core import SpikeData
from ldns_sim.data.adapters import DatasetAdapter, load_adapter
from ldns_sim.errors import ConfigError, DataError, SinkError
from ldns_sim.sinks.nwb_writer import KEYWORDS, SPIKE_TIME_CONVENTION, SessionInfo
from ldns_sim.sinks.wire import spread_spike_times

log = logging.getLogger(__name__)

LAYOUT_KEY = "ldns_sim_layout"
LAYOUT = "trials/1"
"""Value of ``notes[LAYOUT_KEY]`` in files written here (bumped if the layout changes)."""
TRIAL_GAP_BINS = 1
"""Empty bins between consecutive trials on the file's timeline."""
ADAPTER_NAME = "ldns_samples"
"""The dataset adapter (``adapters/datasets/ldns_samples.toml``) for files written here."""
_FAMILY_SERIES = {"vel": "hand_vel", "pos": "hand_pos"}


def behaviour_series_name(names: tuple[str, ...]) -> str:
    """The behaviour TimeSeries name for channels ``names``.

    ``hand_vel`` when every channel name starts with ``vel`` (``vel_x``, ``vel_y``: the NLB
    name for hand velocity), ``hand_pos`` when every one starts with ``pos``, else
    ``condition`` (the name our streamed sessions use for the condition per bin).
    """
    for prefix, series in _FAMILY_SERIES.items():
        if names and all(n.lower().startswith(prefix) for n in names):
            return series
    return "condition"


def write_trials_nwb(data: SpikeData, path: str | Path, *, description: str,
                     model_name: str = "", model_sha256: str = "", seed: int | None = None,
                     session: SessionInfo | None = None,
                     rates: tuple[np.ndarray, ...] | None = None) -> Path:
    """Write trial-structured spike counts to an NWB file (layout: module docstring).

    Parameters
    ----------
    data
        The trials: integer counts ``(n_bins_i, n_neurons)``, optional behaviour
        ``(n_bins_i, n_behaviour)``, directions, alignment bins and split labels.
    path
        Output ``.nwb`` file; written to a temporary name beside it, then renamed.
    description
        What the file holds (the NWB ``session_description``), e.g. how it was sampled.
    model_name, model_sha256, seed
        The model and seed that generated the trials ("" and None for recorded data).
    session
        Subject and experimenter metadata for DANDI; default :class:`SessionInfo` (a virtual
        subject). Its ``session_description`` is replaced by ``description``.
    rates
        Ground-truth firing rates in Hz, one ``(n_bins_i, n_neurons)`` array per trial.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ConfigError
        If ``description`` is empty.
    DataError
        If the counts are not non-negative integers, or ``rates`` do not match the counts.
    SinkError
        If the file cannot be written.
    """
    from hdmf.backends.hdf5 import H5DataIO
    from pynwb import NWBHDF5IO

    path = Path(path)
    if not description.strip():
        raise ConfigError(f"{path}: description must be a non-empty string")
    _check(data, rates, path)
    starts_s = _trial_starts(data)
    bin_start_s = np.concatenate([s + np.arange(len(c)) * data.bin_s
                                  for s, c in zip(starts_s, data.counts)])  # (n_bins_total,)
    intervals = np.stack([starts_s, starts_s + _n_bins(data) * data.bin_s], axis=1)  # (T, 2)
    info = session or SessionInfo()
    nwb = _nwbfile(data, description, info, model_name, model_sha256, seed)
    nwb.trials = _trials_table(data, intervals)
    nwb.units = _units_table(data, bin_start_s, intervals, model_name)

    def series(name, values, unit, text, columns):
        from pynwb import TimeSeries

        return TimeSeries(name=name, data=H5DataIO(values, compression="gzip"), unit=unit,
                          timestamps=bin_start_s, description=text,
                          comments=f"columns={list(columns)}")

    counts = np.concatenate(data.counts)  # (n_bins_total, n_neurons)
    counts = counts.astype(np.int16 if counts.max(initial=0) <= np.iinfo(np.int16).max
                           else np.int32)
    nwb.create_processing_module("ecephys", "binned spike counts").add(series(
        "binned_spike_counts", counts, "counts", "spike counts per bin; row i covers "
        "[t_i, t_i + bin_s); trials are separated by empty time", data.neuron_ids))
    if data.behaviour is not None:
        name = behaviour_series_name(data.behaviour_names)
        nwb.create_processing_module("behavior", "behaviour per bin").add(series(
            name, np.concatenate(data.behaviour).astype(np.float32), "a.u.",
            f"behaviour per bin, stamped at the bin's start; channels "
            f"{list(data.behaviour_names)}", data.behaviour_names))
    if rates is not None:
        nwb.create_processing_module("ldns_sim", "simulator ground truth").add(series(
            "rates", np.concatenate(rates).astype(np.float32), "Hz",
            "ground-truth firing rate per bin", data.neuron_ids))
    tmp = path.with_name(path.stem + ".writing.nwb")
    try:
        with NWBHDF5IO(str(tmp), "w") as io:
            io.write(nwb)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise SinkError(f"cannot write {path}: {err}") from None
    log.info("wrote %d trials (%d bins, %d neurons) to %s", data.n_trials, data.n_bins_total,
             data.n_neurons, path)
    return path


def is_trials_nwb(path: str | Path) -> bool:
    """Whether ``path`` is an NWB file written by :func:`write_trials_nwb` (by its notes)."""
    return _layout_notes(Path(path)) is not None


def trials_adapter(path: str | Path) -> DatasetAdapter:
    """The ``ldns_samples`` adapter, fitted to what one file written here holds.

    The TOML adapter reads the common case (``hand_vel`` behaviour, directions, no
    alignment) with the bin width taken from the behaviour's sampling interval. This sets
    the exact bin width and the behaviour series, direction and alignment columns the file
    actually has, so any file written here reads back into the same SpikeData.

    Raises
    ------
    DataError
        If ``path`` was not written by :func:`write_trials_nwb`.
    """
    notes = _layout_notes(Path(path))
    if notes is None:
        raise DataError(f"{path}: not an NWB file written by write_trials_nwb (no "
                        f"{LAYOUT_KEY!r} = {LAYOUT!r} in its notes)")
    base = load_adapter(ADAPTER_NAME)
    behaviour = None
    if notes["behaviour_series"]:
        behaviour = (base.behaviour or _default_behaviour()).model_copy(
            update={"source": notes["behaviour_series"], "names": ()})
    direction = base.direction if notes["has_direction"] else type(base.direction)()
    alignment = base.alignment.model_copy(
        update={"event": "align_time" if notes["has_align"] else None})
    return base.model_copy(update={"bin_s": float(notes["bin_s"]), "behaviour": behaviour,
                                   "direction": direction, "alignment": alignment})


def _default_behaviour():
    from ldns_sim.data.adapters import BehaviourSpec

    return BehaviourSpec(source="hand_vel", sample_at="start")


def _layout_notes(path: Path) -> dict | None:
    try:
        with h5py.File(path, "r") as fh:
            raw = fh["general/notes"][()] if "general/notes" in fh else b""
    except OSError as exc:
        raise DataError(f"{path}: not a readable NWB (HDF5) file ({exc})") from None
    try:
        notes = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
    except (ValueError, UnicodeDecodeError):
        return None
    ok = isinstance(notes, dict) and notes.get(LAYOUT_KEY) == LAYOUT
    return notes if ok else None


def _n_bins(data: SpikeData) -> np.ndarray:
    return np.array([len(c) for c in data.counts], dtype=np.int64)  # (n_trials,)


def _trial_starts(data: SpikeData) -> np.ndarray:
    """``(n_trials,)`` start of each trial (s): trials end to end, gaps between them."""
    n = _n_bins(data)
    first_bin = np.concatenate([[0], np.cumsum(n + TRIAL_GAP_BINS)[:-1]])
    return first_bin * data.bin_s


def _check(data: SpikeData, rates: tuple[np.ndarray, ...] | None, path: Path) -> None:
    for i, c in enumerate(data.counts):
        c = np.asarray(c)
        if c.dtype.kind not in "iu" and not np.array_equal(c, np.round(c)):
            raise DataError(f"{data.source}: trial {i} has non-integer counts; {path} stores "
                            f"spike counts")
        if c.size and c.min() < 0:
            raise DataError(f"{data.source}: trial {i} has a negative count ({c.min()})")
    if data.behaviour is not None and not all(np.isfinite(b).all() for b in data.behaviour):
        log.warning("%s: behaviour has NaN/inf; the loader drops trials where it is unknown",
                    data.source)
    if rates is None:
        return
    if len(rates) != data.n_trials:
        raise DataError(f"{path}: {len(rates)} rate arrays for {data.n_trials} trials")
    for i, (r, c) in enumerate(zip(rates, data.counts)):
        if np.shape(r) != c.shape:
            raise DataError(f"{path}: rates of trial {i} have shape {np.shape(r)}, expected "
                            f"{c.shape} like its counts")


def _trials_table(data: SpikeData, intervals: np.ndarray):
    from pynwb.epoch import TimeIntervals

    table = TimeIntervals(name="trials", description="trials laid end to end, "
                          f"{TRIAL_GAP_BINS} empty bin(s) apart")
    table.add_column("split", "train | val | test assignment of the trial")
    if data.direction_rad is not None:
        table.add_column("direction_rad", "reach direction of the trial (radians)")
    if data.align_bin is not None:
        table.add_column("align_time", "start of the trial's alignment bin (s), NaN if none")
    split = np.asarray(data.split).astype(str)
    for i, (start, stop) in enumerate(intervals):
        row = {"start_time": float(start), "stop_time": float(stop), "split": str(split[i])}
        if data.direction_rad is not None:
            row["direction_rad"] = float(data.direction_rad[i])
        if data.align_bin is not None:
            k = int(data.align_bin[i])
            row["align_time"] = float(start + k * data.bin_s) if k >= 0 else float("nan")
        table.add_row(**row)
    return table


def _units_table(data: SpikeData, bin_start_s: np.ndarray, intervals: np.ndarray,
                 model_name: str):
    from hdmf.common import VectorData, VectorIndex
    from pynwb.misc import Units

    n = data.n_neurons
    unit_idx, times = spread_spike_times(np.concatenate(data.counts), bin_start_s, data.bin_s)
    order = np.argsort(unit_idx, kind="stable")  # per unit, times stay ascending
    ends = np.cumsum(np.bincount(unit_idx, minlength=n))
    st = VectorData(name="spike_times", description="spike times (s); " + SPIKE_TIME_CONVENTION,
                    data=times[order])
    oi = VectorData(name="obs_intervals", description="the trials [start, stop] (s)",
                    data=np.tile(intervals, (n, 1)))
    cols = [st, VectorIndex(name="spike_times_index", data=ends, target=st),
            oi, VectorIndex(name="obs_intervals_index",
                            data=np.arange(1, n + 1) * len(intervals), target=oi),
            VectorData(name="unit_name", description="neuron id", data=list(data.neuron_ids))]
    what = f"neurons of model {model_name}" if model_name else f"neurons of {data.source}"
    return Units(name="units", description=what, resolution=float(data.bin_s), columns=cols,
                 id=list(range(n)))


def _notes(data: SpikeData, model_name: str, model_sha256: str, seed: int | None) -> str:
    names = tuple(data.behaviour_names) if data.behaviour is not None else ()
    return json.dumps({
        LAYOUT_KEY: LAYOUT, "model_name": model_name, "model_sha256": model_sha256,
        "seed": seed, "bin_s": data.bin_s, "n_trials": data.n_trials,
        "trial_gap_bins": TRIAL_GAP_BINS, "data_source": data.source,
        "behaviour_series": behaviour_series_name(names) if data.behaviour is not None else "",
        "behaviour_names": list(names), "has_direction": data.direction_rad is not None,
        "has_align": data.align_bin is not None,
        "spike_time_convention": SPIKE_TIME_CONVENTION, "ldns_sim_version": __version__,
    })


def _nwbfile(data: SpikeData, description: str, info: SessionInfo, model_name: str,
             model_sha256: str, seed: int | None):
    from pynwb import NWBFile
    from pynwb.file import Subject

    if model_name:
        origin = f"model {model_name} (sha256 {model_sha256 or 'unknown'}, seed {seed})"
        who = (f"Simulated subject: no animal was recorded. Spikes generated by {origin}; "
               "species names the species of its training data.")
    else:
        origin = data.source
        who = f"Subject of the trials taken from {origin}."
    subject = Subject(subject_id=info.subject_id, species=info.species, sex=info.sex,
                      age=info.age, description=who)
    optional = {k: v for k, v in (("experimenter", list(info.experimenter)),
                                  ("institution", info.institution), ("lab", info.lab)) if v}
    return NWBFile(
        session_description=description, identifier=str(uuid.uuid4()),
        session_start_time=dt.datetime.now(dt.timezone.utc), subject=subject,
        keywords=list(KEYWORDS), notes=_notes(data, model_name, model_sha256, seed),
        experiment_description=f"{data.n_trials} trials of {data.n_neurons} neurons at "
                               f"{data.bin_s:g} s bins from {origin}.",
        source_script=f"ldns-sim {__version__}; {origin}",
        source_script_file_name="ldns-sim", **optional)
