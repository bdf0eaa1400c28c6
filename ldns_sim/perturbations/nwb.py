"""The perturbation schedule of a session, appended to its NWB file as ``intervals/perturbations``.

The markers (``events/markers``) say when each perturbation started and stopped on the
stream; this table says what was scheduled: one row per perturbation that acted during the
recording, ``start_time``/``stop_time`` in the file's time base (clipped to the recorded
bins), ``kind``, ``value`` and ``spec`` (the ``KIND:VALUE@START-END`` form, session seconds).
The recorder's contract has no room for it, so it is added with pynwb once the recorder has
written the file (a session recovered after a crash has the markers but not this table).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ldns_sim.errors import SinkError
from ldns_sim.perturbations.schedule import Perturbation


def _session_zero_s(nwb) -> tuple[float, float]:
    """``(file time of session time 0, file time of the last recorded bin's end)``."""
    counts = nwb.processing["ecephys"]["binned_spike_counts"]
    n_bins = counts.data.shape[0]
    bin_s = 1.0 / counts.rate if counts.rate else float(counts.timestamps[1]
                                                         - counts.timestamps[0])
    first = counts.starting_time if counts.timestamps is None else float(counts.timestamps[0])
    last_end = (first + n_bins * bin_s if counts.timestamps is None
                else float(counts.timestamps[-1]) + bin_s)
    zero = float(first)
    if "markers" in nwb.events:  # the engine's "start" marker is session time 0 exactly
        markers = nwb.events["markers"].to_dataframe()
        start = markers[markers.annotation == "start"]
        if len(start):
            zero = float(start.timestamp.iloc[0])
    return zero, last_end


def add_perturbation_intervals(path: str | Path,
                               perturbations: Sequence[Perturbation]) -> Path:
    """Append ``intervals/perturbations`` (see the module docstring) to an NWB session file.

    Raises
    ------
    SinkError
        If ``path`` is not a session file written by the recorder.
    """
    from pynwb import NWBHDF5IO
    from pynwb.epoch import TimeIntervals

    path = Path(path)
    if not path.is_file():
        raise SinkError(f"{path}: no NWB file to add the perturbation schedule to")
    with NWBHDF5IO(str(path), "a") as io:
        nwb = io.read()
        try:
            zero, last_end = _session_zero_s(nwb)
        except (KeyError, IndexError) as error:
            raise SinkError(f"{path}: not an ldns-sim session file ({error})") from None
        table = TimeIntervals(name="perturbations",
                              description="scheduled perturbations of the counts (session "
                                          "seconds in spec; see ldns_sim.perturbations)")
        for col, desc in (("kind", "dropout | drift | gain | noise | shuffle"),
                          ("value", "fraction, per-minute drift, factor or Hz (by kind)"),
                          ("spec", "KIND:VALUE@START-END as given, session seconds")):
            table.add_column(col, desc)
        for p in perturbations:
            start = zero + p.start_s
            if start >= last_end:
                continue  # scheduled after the recording ended: never acted
            table.add_interval(start_time=start, stop_time=min(zero + p.end_s, last_end),
                               kind=p.kind, value=float(p.value), spec=p.spec())
        nwb.add_time_intervals(table)
        io.write(nwb)
    return path
