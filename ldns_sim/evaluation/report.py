"""Write an evaluation to disk: metrics.json, PNG figures and one self-contained index.html."""

from __future__ import annotations

import base64
import html
import logging
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from ldns_sim.core import SpikeData
from ldns_sim.errors import DataError
from ldns_sim.evaluation import _figures
from ldns_sim.evaluation._set_stats import EvalConfig
from ldns_sim.evaluation.result import EvaluationResult

log = logging.getLogger(__name__)

_CAPTIONS = {
    "raster": "Spike counts of the first trials, back to back (darker = more spikes).",
    "population_counts": "Population spike count per bin: real histogram (grey), real and "
                         "generated KDE densities (the densities behind psch_kl).",
    "correlations": "Pairwise spike-count correlations at the model bin, one dot per pair.",
    "isi": "Per-neuron mean and std of inter-spike intervals (spikes spread evenly in bins).",
    "rates": "Per-neuron mean firing rate.",
    "psth": "PSTHs of the most condition-modulated neurons, one colour per direction.",
    "trajectories": "Behaviour integrated over time (cumsum * bin_s): solid the conditioning "
                    "behaviour, dashed decoded from spikes by a ridge decoder fitted on real.",
}


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _figures_for(result: EvaluationResult, real: SpikeData, candidates: dict[str, SpikeData],
                 out: Path, config: EvalConfig) -> dict[str, Path]:
    settings = result.settings
    max_count = int(settings.get("max_count") or max(
        int(c.sum(axis=1).max()) for s in [real, *candidates.values()] for c in s.counts))
    n_bins = int(settings.get("psth_n_bins") or min(
        len(c) for s in [real, *candidates.values()] for c in s.counts))
    paths = {
        "raster": _save(_figures.raster(real, candidates), out / "raster.png"),
        "population_counts": _save(_figures.population_counts(real, candidates, max_count),
                                   out / "population_counts.png"),
        "correlations": _save(_figures.scatter_statistic(real, candidates, "correlation"),
                              out / "correlations.png"),
        "isi": _save(_figures.scatter_statistic(real, candidates, "isi"), out / "isi.png"),
        "rates": _save(_figures.scatter_statistic(real, candidates, "rate"), out / "rates.png"),
        "psth": _save(_figures.psths(real, candidates, n_bins, config.psth_smooth_s),
                      out / "psth.png"),
    }
    if real.behaviour is not None:
        paths["trajectories"] = _save(
            _figures.decoded_trajectories(real, candidates, config.decoder_alpha,
                                          config.decoder_smooth_s), out / "trajectories.png")
    return paths


def _html_table(result: EvaluationResult) -> str:
    header, rows = result.table_rows()
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html_page(result: EvaluationResult, figures: dict[str, Path], title: str) -> str:
    blocks = []
    for key, path in figures.items():
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        blocks.append(f"<figure><img alt=\"{html.escape(key)}\" "
                      f"src=\"data:image/png;base64,{data}\"><figcaption>"
                      f"{html.escape(_CAPTIONS.get(key, key))}</figcaption></figure>")
    settings = html.escape(", ".join(f"{k}={v}" for k, v in result.settings.items()
                                     if k != "config"))
    style = ("body{font-family:sans-serif;margin:2em;max-width:1400px}"
             "table{border-collapse:collapse;font-size:13px}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
             "tr:nth-child(even){background:#f6f6f6}img{max-width:100%}"
             "figure{margin:2em 0}figcaption{color:#444;font-size:13px}")
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{style}</style></head><body>"
            f"<h1>{html.escape(title)}</h1>"
            f"<p>Each cell: value [2.5%, 97.5%] from {result.n_boot} bootstrap resamples of "
            f"trials (bias-corrected percentiles). The data floor compares one random half of "
            f"the real trials with the other.</p><p>{settings}</p>"
            f"{_html_table(result)}{''.join(blocks)}</body></html>\n")


def write_report(result: EvaluationResult, real: SpikeData, candidates: dict[str, SpikeData],
                 out_dir: str | Path, config: EvalConfig | None = None,
                 title: str = "ldns-sim realism report") -> dict[str, Path]:
    """Write ``metrics.json``, one PNG per figure and a self-contained ``index.html``.

    Parameters
    ----------
    result
        From :func:`ldns_sim.evaluation.compare.evaluate_sets` on the same sets.
    real, candidates
        The sets that were evaluated.
    out_dir
        Created if missing; existing files of the same names are overwritten.
    config
        The options the result was computed with (PSTH smoothing, decoder); ``None`` = the
        options recorded in ``result.settings``.

    Returns
    -------
    ``{name: path}`` of every file written (``"metrics"``, ``"index"`` and one per figure).
    """
    if not candidates:
        raise DataError("write_report: no candidate sets to report")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"{out}: cannot create the report folder ({err})") from err
    if config is None:
        saved = dict(result.settings.get("config", {}))
        saved["coarse_bins"] = tuple(saved.get("coarse_bins", EvalConfig.coarse_bins))
        config = EvalConfig(**saved)
    metrics = out / "metrics.json"
    metrics.write_text(result.to_json())
    with np.errstate(invalid="ignore", divide="ignore"):
        figures = _figures_for(result, real, candidates, out, config)
    index = out / "index.html"
    index.write_text(_html_page(result, figures, title), encoding="utf-8")
    log.info("report written to %s", index)
    return {"metrics": metrics, "index": index, **figures}
