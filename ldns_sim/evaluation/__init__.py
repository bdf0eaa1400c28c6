"""Realism of generated spikes: metrics, a data floor with bootstrap intervals, baselines, report.

Start with :func:`evaluate_sets` (numbers) and :func:`write_report` (figures and HTML);
:mod:`ldns_sim.evaluation.baselines` makes reference sets to score beside a model.
Definitions, units and conventions: docs/evaluation.md.
"""

from ldns_sim.evaluation._set_stats import EvalConfig
from ldns_sim.evaluation.compare import compare, evaluate_sets, metric_infos
from ldns_sim.evaluation.report import write_report
from ldns_sim.evaluation.result import Estimate, EvaluationResult, MetricInfo

__all__ = [
    "Estimate",
    "EvalConfig",
    "EvaluationResult",
    "MetricInfo",
    "compare",
    "evaluate_sets",
    "metric_infos",
    "write_report",
]
