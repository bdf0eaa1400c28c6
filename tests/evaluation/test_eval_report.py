"""write_report: metrics.json, PNG figures and one self-contained, well-formed index.html."""

import json
from html.parser import HTMLParser

import numpy as np

from ldns_sim.evaluation import EvalConfig, evaluate_sets, write_report
from ldns_sim.evaluation.baselines import psth_poisson

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
VOID = {"meta", "img", "br", "hr", "link", "input"}


class _Checker(HTMLParser):
    """Collects tags, checks nesting, and records every src/href."""

    def __init__(self):
        super().__init__()
        self.stack, self.errors, self.urls, self.tags = [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.urls += [v for k, v in attrs if k in ("src", "href")]
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(f"unbalanced </{tag}>")


def test_report_writes_files_and_valid_html(reach_data, tmp_path):
    small = reach_data.take(np.arange(24))
    candidates = {"psth_poisson": psth_poisson(small, small, np.random.default_rng(0))}
    config = EvalConfig(coarse_bins=(4,), max_lag_bins=4)
    result = evaluate_sets(small, candidates, np.random.default_rng(1), n_boot=2, config=config)
    paths = write_report(result, small, candidates, tmp_path / "report")

    assert json.loads(paths["metrics"].read_text()) == json.loads(result.to_json())
    figures = [k for k in paths if k not in ("metrics", "index")]
    assert {"raster", "population_counts", "correlations", "isi", "rates", "psth",
            "trajectories"} <= set(figures)
    for key in figures:
        assert paths[key].read_bytes()[:8] == PNG_MAGIC, key

    page = paths["index"].read_text(encoding="utf-8")
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert page.startswith("<!DOCTYPE html>")
    assert checker.errors == [] and checker.stack == []
    assert checker.tags.count("img") == len(figures)
    assert all(u.startswith("data:image/png;base64,") for u in checker.urls)
    assert checker.tags.count("tr") == len(result.metrics) + 1
    assert "psth_poisson" in page and "data floor" in page
