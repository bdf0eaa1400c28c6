"""Decoders under test in closed loop: task, scripted user, perturbations, session, scores."""

from ldns_sim.closed_loop.calibration import (
    CalibrationBlock,
    calibration_block,
    default_task,
    default_user,
    fit_decoder,
)
from ldns_sim.closed_loop.perturbations import (
    Perturbation,
    PerturbationSchedule,
    load_perturbations,
    parse_perturbation,
)
from ldns_sim.closed_loop.scoring import Scores, achieved_bitrate, score_trials
from ldns_sim.closed_loop.session import ClosedLoopSession, SessionLog
from ldns_sim.closed_loop.task import CenterOutTask, TaskConfig, TrialRecord
from ldns_sim.closed_loop.user import ScriptedUser, UserConfig

__all__ = ["CalibrationBlock", "CenterOutTask", "ClosedLoopSession", "Perturbation",
           "PerturbationSchedule", "Scores", "ScriptedUser", "SessionLog", "TaskConfig",
           "TrialRecord", "UserConfig", "achieved_bitrate", "calibration_block", "default_task",
           "default_user", "fit_decoder", "load_perturbations", "parse_perturbation",
           "score_trials"]
