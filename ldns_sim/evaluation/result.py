"""Outcome of an evaluation: each metric per candidate and for the data floor, with intervals."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Estimate:
    """A point estimate, its bootstrap interval and the bootstrap bias (NaN when not available).

    ``bias`` is the median bootstrap replicate minus ``value``; ``lo``/``hi`` are the
    2.5/97.5 percentiles of the replicates shifted by ``-bias`` and clipped to the metric's range.
    """

    value: float
    lo: float
    hi: float
    bias: float = float("nan")

    def format(self, digits: int = 4) -> str:
        if not math.isfinite(self.value):
            return "n/a" if math.isnan(self.value) else f"{self.value}"
        bounds = f" [{self.lo:.{digits}g}, {self.hi:.{digits}g}]" if math.isfinite(self.lo) else ""
        return f"{self.value:.{digits}g}{bounds}"

    def to_dict(self) -> dict[str, float | None]:
        def clean(x: float) -> float | None:
            return x if math.isfinite(x) else None
        return {"value": clean(self.value), "lo": clean(self.lo), "hi": clean(self.hi),
                "bootstrap_bias": clean(self.bias)}


@dataclass(frozen=True)
class MetricInfo:
    """What a metric is: its unit and which way is better (``"lower"`` or ``"higher"``)."""

    name: str
    unit: str
    better: str
    description: str


@dataclass(frozen=True)
class EvaluationResult:
    """Metrics of each candidate set against the real set, and the real-vs-real floor.

    Attributes
    ----------
    metrics
        Metric descriptions, in table order.
    candidates
        ``{candidate name: {metric name: Estimate}}``.
    floor
        ``{metric name: Estimate}``: one random half of the real trials against the other.
    n_boot
        Bootstrap resamples behind each interval (bias-corrected 2.5-97.5 percentiles).
    settings
        Sizes and options the numbers were computed with.
    """

    metrics: tuple[MetricInfo, ...]
    candidates: dict[str, dict[str, Estimate]]
    floor: dict[str, Estimate]
    n_boot: int
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics": [vars(m) for m in self.metrics],
            "candidates": {c: {k: e.to_dict() for k, e in v.items()}
                           for c, v in self.candidates.items()},
            "floor": {k: e.to_dict() for k, e in self.floor.items()},
            "n_boot": self.n_boot,
            "interval": ("bootstrap 2.5-97.5 percentiles over resampled trials, shifted by "
                         "the bootstrap bias (median replicate - value)"),
            "settings": self.settings,
        }

    def to_json(self, indent: int = 2) -> str:
        """JSON text; NaN and infinite numbers become ``null``."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def table_rows(self) -> tuple[list[str], list[list[str]]]:
        """Header and rows of the table: metric, one column per candidate, then the floor."""
        header = ["metric", *self.candidates, "data floor"]
        rows = []
        for m in self.metrics:
            label = f"{m.name} ({m.unit}, {m.better} better)" if m.unit else \
                f"{m.name} ({m.better} better)"
            cells = [self.candidates[c].get(m.name, Estimate(math.nan, math.nan, math.nan))
                     .format() for c in self.candidates]
            floor = self.floor.get(m.name, Estimate(math.nan, math.nan, math.nan)).format()
            rows.append([label, *cells, floor])
        return header, rows

    def format_table(self) -> str:
        """A plain-text table for the terminal: each cell ``value [lo, hi]``."""
        header, rows = self.table_rows()
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)),
                 "  ".join("-" * w for w in widths)]
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
        return "\n".join(lines)
