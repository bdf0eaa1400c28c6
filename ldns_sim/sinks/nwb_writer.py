"""A journal (``nwb_journal``) turned into one NWB file, the recorder's file contract.

Layout (times in seconds from ``session_start_time`` = the first bin's start, or the first
marker if that came earlier):

- ``units``: one row per neuron, ``spike_times`` (the k spikes of a bin spread evenly inside
  it, ``wire.spread_spike_times``), ``obs_intervals`` (the recorded stretches),
  ``resolution`` = bin width (spike times are only known to within a bin).
- ``processing/ecephys/binned_spike_counts``: TimeSeries (n_bins, n_neurons) int16, ``rate``
  1/bin_s, ``starting_time``; row i covers ``[t_i, t_i + bin_s)``.
- ``processing/behavior/condition``: the condition actually used per bin.
- ``processing/ldns_sim/{rates, latents}``: ground truth; ``bin_end_lsl_clock`` and
  ``bin_end_monotonic_clock``: each bin's end on the sender's clocks (to align with LSL);
  ``telemetry``: one row per chunk.
- ``events/markers``: EventsTable (timestamp, annotation).
- ``notes``: JSON with model name, sha256, seed, condition source, source_id, the LSL and
  monotonic clock readings at session time 0, drops and whether the session was recovered.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ldns_sim import __version__
from ldns_sim.errors import SinkError
from ldns_sim.sinks.nwb_journal import JournalContents
from ldns_sim.sinks.wire import TELEMETRY_CHANNELS, latent_labels, spread_spike_times

log = logging.getLogger(__name__)

SPIKE_TIME_CONVENTION = ("the k spikes counted in a bin [t, t + bin_s) are placed at "
                         "t + (j + 0.5) * bin_s / k, j = 0 .. k-1")
KEYWORDS = ("simulation", "synthetic data", "latent diffusion", "spiking neural population",
            "brain-computer interface", "ldns-sim")


@dataclass(frozen=True)
class SessionInfo:
    """Session metadata that the stream itself does not carry (DANDI asks for it).

    The subject is virtual: ``species`` names the species of the model's training data,
    ``age`` is an ISO 8601 duration (DANDI requires one; ``P0D`` when it does not apply).
    """

    session_description: str = "Simulated spiking session streamed by ldns-sim"
    experimenter: tuple[str, ...] = ()
    """DANDI form ``"Last, First"``; empty leaves the field out."""
    institution: str | None = None
    lab: str | None = None
    subject_id: str = "ldns-sim-virtual-subject"
    species: str = "Macaca mulatta"
    sex: str = "U"
    age: str = "P0D"


@dataclass(frozen=True)
class _Timeline:
    t0_lsl_s: float  # LSL clock at session time 0
    t0_monotonic_s: float  # time.monotonic() at session time 0
    bin_start_s: np.ndarray  # (n_bins,) session time of each bin's start (nominal grid)
    regular: bool  # bins are one unbroken run


def _timeline(j: JournalContents) -> _Timeline:
    bin_s = j.meta.bin_s
    first_start_lsl = float(j.bin_end[0, 0]) - bin_s
    lsl_to_mono = float(j.bin_end[0, 1] - j.bin_end[0, 0])
    t0_lsl = min([first_start_lsl] + [t for _, t in j.markers])
    index = j.bin_index
    start = (first_start_lsl - t0_lsl) + (index - index[0]) * bin_s
    return _Timeline(t0_lsl, t0_lsl + lsl_to_mono, start,
                     bool(np.all(np.diff(index) == 1)))


def _runs(index: np.ndarray, start_s: np.ndarray, bin_s: float) -> np.ndarray:
    """``(n_runs, 2)`` [start, stop] of each unbroken run of bins."""
    breaks = np.flatnonzero(np.diff(index) != 1)
    first = np.concatenate([[0], breaks + 1])
    last = np.concatenate([breaks, [len(index) - 1]])
    return np.stack([start_s[first], start_s[last] + bin_s], axis=1).astype(np.float64)


def _series(name, data, unit, description, tl: _Timeline, bin_s: float, comments="", **kw):
    from hdmf.backends.hdf5 import H5DataIO
    from pynwb import TimeSeries

    when = (dict(rate=1.0 / bin_s, starting_time=float(tl.bin_start_s[0])) if tl.regular
            else dict(timestamps=tl.bin_start_s))
    return TimeSeries(name=name, data=H5DataIO(data, compression="gzip", compression_opts=4),
                      unit=unit, description=description, comments=comments or "no comments",
                      **when, **kw)


def _units_table(j: JournalContents, tl: _Timeline):
    from hdmf.common import VectorData, VectorIndex
    from pynwb.misc import Units

    n = j.meta.n_neurons
    unit_idx, times = [], []
    block = 100_000  # bins per block: bounded memory on hour-long sessions
    for b in range(0, j.n_bins, block):
        u, t = spread_spike_times(np.asarray(j.counts[b:b + block]), tl.bin_start_s[b:b + block],
                                  j.meta.bin_s)
        unit_idx.append(u)
        times.append(t)
    unit_idx, times = np.concatenate(unit_idx), np.concatenate(times)
    order = np.argsort(unit_idx, kind="stable")  # per unit, times stay ascending
    ends = np.cumsum(np.bincount(unit_idx, minlength=n))
    runs = _runs(j.bin_index, tl.bin_start_s, j.meta.bin_s)
    st = VectorData(name="spike_times", description="spike times (s); " + SPIKE_TIME_CONVENTION,
                    data=times[order])
    oi = VectorData(name="obs_intervals", description="recorded stretches [start, stop] (s)",
                    data=np.tile(runs, (n, 1)))
    cols = [st, VectorIndex(name="spike_times_index", data=ends, target=st),
            oi, VectorIndex(name="obs_intervals_index", data=np.arange(1, n + 1) * len(runs),
                            target=oi),
            VectorData(name="unit_name", description="neuron id of the model",
                       data=list(j.meta.neuron_ids))]
    return Units(name="units", description="simulated neurons of model " + j.meta.model_name,
                 resolution=float(j.meta.bin_s), columns=cols, id=list(range(n)))


def _markers_table(j: JournalContents, tl: _Timeline):
    from pynwb.event import EventsTable

    table = EventsTable(name="markers", description="stream markers (start, stop, "
                        "perturbations, condition source lost/restored), as published on LSL",
                        source_description="ldns-sim engine")
    for text, t in j.markers:
        table.add_event(timestamp=float(t - tl.t0_lsl_s), annotation=text)
    return table


def _telemetry_table(j: JournalContents, tl: _Timeline):
    from hdmf.common import DynamicTable, VectorData

    units = dict(TELEMETRY_CHANNELS)
    cols = []
    for name, _ in TELEMETRY_CHANNELS:
        values = [rec[name] for rec in j.telemetry]
        if name == "emitted_at_s":
            name, values = "emitted_at", [v - tl.t0_lsl_s for v in values]
        cols.append(VectorData(name=name, data=np.asarray(values),
                               description=f"{name} ({units.get(name, 's')}), per chunk"))
    return DynamicTable(name="telemetry", description="real-time engine health, one row per "
                        "chunk; emitted_at in session time (s)", columns=cols)


def _notes(j: JournalContents, tl: _Timeline, recovered: bool) -> str:
    m = j.meta
    return json.dumps({
        "model_name": m.model_name, "model_sha256": m.model_sha256, "seed": m.seed,
        "bin_s": m.bin_s, "condition_source": m.condition_source,
        "condition_names": list(m.condition_names), "source_id": m.source_id,
        "sampler": m.sampler, "lsl_clock_at_session_start_s": tl.t0_lsl_s,
        "monotonic_clock_at_session_start_s": tl.t0_monotonic_s,
        "spike_time_convention": SPIKE_TIME_CONVENTION,
        "n_dropped_by_recorder": j.n_dropped, "recovered_after_crash": recovered,
        "ldns_sim_version": __version__,
    })


def _nwbfile(j: JournalContents, tl: _Timeline, info: SessionInfo, recovered: bool):
    from pynwb import NWBFile
    from pynwb.file import Subject

    opened = dt.datetime.fromisoformat(j.extra["opened_at_utc"])
    since_open_s = tl.t0_monotonic_s - j.extra["opened_at_monotonic_s"]
    start = opened + dt.timedelta(seconds=since_open_s)
    if not -60.0 < since_open_s < 7 * 86400.0:  # stamps not from this host's time.monotonic()
        log.warning("bin stamps are %.0f s from the recorder's open on time.monotonic(); "
                    "session_start_time set to the open time", since_open_s)
        start = opened
    m = j.meta
    subject = Subject(subject_id=info.subject_id, species=info.species, sex=info.sex,
                      age=info.age, description=f"Simulated subject: no animal was recorded. "
                      f"Spikes generated by model {m.model_name} (sha256 {m.model_sha256}); "
                      "species names the species of its training data.")
    optional = {k: v for k, v in (("experimenter", list(info.experimenter)),
                                  ("institution", info.institution), ("lab", info.lab)) if v}
    return NWBFile(
        session_description=info.session_description, identifier=str(uuid.uuid4()),
        session_start_time=start, session_id=m.source_id, subject=subject,
        keywords=list(KEYWORDS), notes=_notes(j, tl, recovered),
        experiment_description=(f"Closed-loop simulation: latent diffusion model {m.model_name} "
                                f"(seed {m.seed}) driven by {m.condition_source}."),
        source_script=f"ldns-sim {__version__}; model {m.model_name} sha256 {m.model_sha256} "
                      f"seed {m.seed}",
        source_script_file_name="ldns-sim", **optional)


def write_nwb(j: JournalContents, out_path: Path, info: SessionInfo,
              recovered: bool = False) -> Path:
    """Write the journal's session to ``out_path`` (via a temporary file, then renamed).

    Raises
    ------
    SinkError
        If the journal holds no bins, or the file cannot be written.
    """
    from pynwb import NWBHDF5IO

    if j.n_bins == 0:
        raise SinkError(f"{out_path}: the session recorded no bins; nothing to write")
    tl = _timeline(j)
    m, bin_s = j.meta, j.meta.bin_s
    nwb = _nwbfile(j, tl, info, recovered)
    nwb.units = _units_table(j, tl)
    columns = f"columns={list(m.neuron_ids)}"
    nwb.create_processing_module("ecephys", "binned spike counts").add(_series(
        "binned_spike_counts", j.counts, "counts", "spike counts per bin (row i covers "
        "[t_i, t_i + bin_s))", tl, bin_s, comments=columns))
    if j.condition.shape[1]:
        nwb.create_processing_module("behavior", "condition the model used").add(_series(
            "condition", j.condition, "a.u.", f"condition actually used per bin, from "
            f"{m.condition_source}; columns={list(m.condition_names)}", tl, bin_s,
            comments=f"columns={list(m.condition_names)}"))
    truth = nwb.create_processing_module("ldns_sim", "simulator ground truth and clocks")
    truth.add(_series("rates", j.rates_hz, "Hz", "ground-truth firing rate per bin", tl, bin_s,
                      comments=columns))
    if j.latents.shape[1]:
        truth.add(_series("latents", j.latents, "a.u.", "model latents (un-normalised) per "
                          "bin", tl, bin_s, comments=f"columns={list(latent_labels(m.n_latents))}"))
    for col, clock in ((0, "lsl"), (1, "monotonic")):
        truth.add(_series(f"bin_end_{clock}_clock", np.ascontiguousarray(j.bin_end[:, col]),
                          "s", f"{clock} clock reading at each bin's end, as published", tl,
                          bin_s))
    if j.telemetry:
        truth.add(_telemetry_table(j, tl))
    if j.markers:
        nwb.add_events_table(_markers_table(j, tl))
    out_path = Path(out_path)
    tmp = out_path.with_name(out_path.stem + ".writing.nwb")
    try:
        with NWBHDF5IO(str(tmp), "w") as io:
            io.write(nwb)
        os.replace(tmp, out_path)
    except OSError as err:
        raise SinkError(f"cannot write {out_path}: {err}") from err
    return out_path
