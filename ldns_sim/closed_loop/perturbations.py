"""Moved to ``ldns_sim.perturbations`` (shared with ``ldns-sim stream``); kept for imports."""

from ldns_sim.perturbations.schedule import (
    KINDS,
    Perturbation,
    PerturbationEntry,
    PerturbationFile,
    PerturbationSchedule,
    load_perturbations,
    parse_perturbation,
)

__all__ = ["KINDS", "Perturbation", "PerturbationEntry", "PerturbationFile",
           "PerturbationSchedule", "load_perturbations", "parse_perturbation"]
