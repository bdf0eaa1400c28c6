"""The task side of a closed-loop session, added to the session's NWB file.

The stream itself (the perturbed counts the decoder read, ground-truth rates and latents, the
intended velocity as the condition, task and perturbation events as markers) is recorded live
by the ordinary ``NwbRecorder`` sink. The recorder's file contract has no place for task data,
so once it has written the file this module appends, with pynwb:

- ``processing/closed_loop/``: TimeSeries ``cursor_position``, ``target_position``,
  ``decoded_velocity``, ``intended_velocity`` (one row per bin, stamped at the bin's end, in
  session seconds: the same time base as the rest of the file), and ``inside_target``;
- ``intervals/task_trials``: one row per finished trial (start, stop, target, outcome,
  straight distance, path length);
- ``processing/closed_loop/scores``: a one-row table of the session's scores and the
  decoder's name.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ldns_sim.closed_loop.session import SessionLog
from ldns_sim.closed_loop.task import TaskConfig
from ldns_sim.errors import SinkError


def add_task_data(path: str | Path, log: SessionLog, task: TaskConfig, decoder_name: str,
                  extra: dict | None = None) -> Path:
    """Append the task data of ``log`` to the NWB file ``path`` (written by ``NwbRecorder``).

    Parameters
    ----------
    path
        An NWB file of this session.
    log
        The session's log (its times are session seconds, bin 0 starting at 0).
    task
        The task's configuration (stored as the module's description JSON).
    decoder_name
        Name of the decoder under test.
    extra
        More facts for the description JSON (calibration length, perturbations, ...).
    """
    from hdmf.common import DynamicTable, VectorData
    from pynwb import NWBHDF5IO, TimeSeries

    path = Path(path)
    if not path.is_file():
        raise SinkError(f"{path}: no NWB file to add the task data to")
    a = log.arrays()
    t = a["t_end_s"]
    description = json.dumps({"decoder": decoder_name, "task": {
        k: (v if np.isfinite(v) else None) if isinstance(v, float) else v
        for k, v in task.__dict__.items()}, **(extra or {})})
    series = {
        "cursor_position": (a["cursor"], "position units (velocity units x s)",
                            "decoded cursor at each bin's end"),
        "target_position": (a["target"], "position units", "cued target during each bin"),
        "decoded_velocity": (a["decoded"], "velocity units", "the decoder's output per bin"),
        "intended_velocity": (a["intended"], "velocity units",
                              "the user's intended velocity (the model's condition) per bin"),
        "inside_target": (a["inside"].astype(np.int8), "bool",
                          "cursor inside the cued target's window"),
    }
    with NWBHDF5IO(str(path), "a") as io:
        nwb = io.read()
        module = nwb.create_processing_module("closed_loop", description)
        for name, (data, unit, desc) in series.items():
            module.add(TimeSeries(name=name, data=data, unit=unit, description=desc,
                                  timestamps=t))
        nwb.add_time_intervals(_trials_table(log))
        scores = log.scores().as_dict()
        module.add(DynamicTable(name="scores", description="closed-loop scores of the session",
                                columns=[VectorData(name=k, description=k, data=[float(v)])
                                         for k, v in scores.items()]))
        io.write(nwb)
    return path


def _trials_table(log: SessionLog):
    """``intervals/task_trials`` with typed columns, so that no finished trial is a valid table
    (a person who quit early, a session shorter than a trial)."""
    from hdmf.common import ElementIdentifiers, VectorData
    from pynwb.epoch import TimeIntervals

    t = log.trials
    columns = {
        "start_time": ("trial start (target onset), s", np.array([r.start_s for r in t], float)),
        "stop_time": ("trial end, s", np.array([r.end_s for r in t], float)),
        "target_index": ("0 = centre, 1.. peripheral targets",
                         np.array([r.target_index for r in t], np.int64)),
        "target_x": ("target x", np.array([r.target_xy[0] for r in t], float)),
        "target_y": ("target y", np.array([r.target_xy[1] for r in t], float)),
        "outcome": ("success | timeout | wrong_target",
                    np.array([r.outcome for r in t], dtype=object if t else str)),
        "straight_distance": ("start cursor to target window edge",
                              np.array([r.straight_distance for r in t], float)),
        "path_length": ("cursor path to the final hold (or the end)",
                        np.array([r.path_length for r in t], float)),
    }
    return TimeIntervals(name="task_trials", description="closed-loop centre-out trials",
                         id=ElementIdentifiers(name="id", data=np.arange(len(t))),
                         columns=[VectorData(name=k, description=d, data=v)
                                  for k, (d, v) in columns.items()])
