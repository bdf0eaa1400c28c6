"""Scheduled perturbations of the streamed spikes: dropout, drift, gain, noise, shuffle.

``schedule``: what a perturbation is, how it is written (``KIND:VALUE@START-END``, TOML) and
how it changes one bin's counts. ``stage``: the same applied to a live stream's chunks on the
way to its sinks, with onset/offset markers. ``nwb``: the schedule as an NWB intervals table.
"""

from ldns_sim.perturbations.schedule import (
    KINDS,
    Perturbation,
    PerturbationEntry,
    PerturbationFile,
    PerturbationSchedule,
    from_command_line,
    load_perturbations,
    parse_perturbation,
)

__all__ = ["KINDS", "Perturbation", "PerturbationEntry", "PerturbationFile",
           "PerturbationSchedule", "from_command_line", "load_perturbations", "parse_perturbation"]
