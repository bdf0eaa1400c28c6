"""Perturbations change the counts exactly as specified, and closed-loop scores fall under them."""

import math

import numpy as np
import pytest

from ldns_sim.closed_loop import (
    ClosedLoopSession,
    Perturbation,
    PerturbationSchedule,
    calibration_block,
    default_task,
    default_user,
    fit_decoder,
    load_perturbations,
    parse_perturbation,
)
from ldns_sim.errors import ConfigError
from ldns_sim.testing import TuningCurveGenerator

N = 50


def _schedule(*specs, seed=0):
    return PerturbationSchedule([parse_perturbation(s) for s in specs], N, 0.05,
                                np.random.default_rng(seed))


def test_parse_specs_and_errors(tmp_path):
    p = parse_perturbation("dropout:0.3@60-120")
    assert (p.kind, p.value, p.start_s, p.end_s) == ("dropout", 0.3, 60.0, 120.0)
    assert parse_perturbation("noise:20@5-").end_s == math.inf
    assert parse_perturbation("gain:2").spec() == "gain:2@0-"
    for bad in ("dropout", "dropout:1.5", "wobble:1", "gain:2@10", "gain:x@1-2",
                "noise:5@10-3"):
        with pytest.raises(ConfigError):
            parse_perturbation(bad)
    f = tmp_path / "p.toml"
    f.write_text('[[perturbation]]\nkind = "shuffle"\nvalue = 1.0\nstart_s = 2\nend_s = 4\n')
    assert load_perturbations(f) == [Perturbation("shuffle", 1.0, 2.0, 4.0)]
    f.write_text('[[perturbation]]\nkind = "gain"\nvalue = 1\nstart = 2\n')
    with pytest.raises(ConfigError, match="start"):
        load_perturbations(f)


def test_dropout_zeroes_exactly_the_fraction_inside_the_window():
    s = _schedule("dropout:0.3@1-2")
    counts = np.arange(1, N + 1)
    out_before = s.apply(counts, counts.astype(float), 0.95)
    np.testing.assert_array_equal(out_before, counts)
    out = s.apply(counts, counts.astype(float), 1.0)
    silent = out == 0
    assert silent.sum() == 15
    np.testing.assert_array_equal(out[~silent], counts[~silent])
    np.testing.assert_array_equal(s.apply(counts, counts.astype(float), 1.5) == 0, silent)
    np.testing.assert_array_equal(s.apply(counts, counts.astype(float), 2.0), counts)


def test_shuffle_moves_every_chosen_channel_and_keeps_the_counts():
    s = _schedule("shuffle:0.5")
    counts = np.arange(N) * 3
    out = s.apply(counts, np.ones(N), 0.0)
    moved = out != counts
    assert moved.sum() == 25
    np.testing.assert_array_equal(np.sort(out), np.sort(counts))


def test_gain_and_noise_change_the_rate_by_the_factor():
    rng = np.random.default_rng(123)  # not the schedule's seed: independent draws
    rate = np.full(N, 2.0)  # spikes per bin
    n_bins = 2000
    base = rng.poisson(rate, (n_bins, N))
    for spec, expected in (("gain:0.25", 0.5), ("gain:2.5", 5.0), ("noise:40", 2.0 + 2.0)):
        s = _schedule(spec)
        out = np.array([s.apply(b, rate, 0.0) for b in base])
        assert out.mean() == pytest.approx(expected, rel=0.03), spec
        assert out.var() == pytest.approx(expected, rel=0.08), spec  # still Poisson
    np.testing.assert_array_equal(_schedule("gain:0").apply(base[0], rate, 0.0), 0)
    np.testing.assert_array_equal(_schedule("gain:1").apply(base[0], rate, 0.0), base[0])


def test_drift_factor_grows_linearly_from_onset():
    s = _schedule("drift:0.5@10-")
    signs = s._fixed[0]
    np.testing.assert_allclose(s.factors(10.0), 1.0)
    np.testing.assert_allclose(s.factors(70.0), np.maximum(0, 1 + 0.5 * signs))
    np.testing.assert_allclose(s.factors(190.0), np.maximum(0, 1 + 1.5 * signs))
    np.testing.assert_allclose(s.factors(5.0), 1.0)


def test_onsets_and_offsets_become_markers_at_their_bins():
    gen = TuningCurveGenerator(N, 0.05, 1, np.random.default_rng(0))
    session = ClosedLoopSession(gen, None, default_task(1.0), default_user(1.0),
                                np.random.default_rng(0),
                                [parse_perturbation("noise:10@0.5-1")])
    session.run(1.5)
    log = session.finish()
    marks = [(round(t, 6), text) for t, text in log.events if text.startswith("perturbation")]
    assert marks == [(0.5, "perturbation_start:noise:10"), (1.0, "perturbation_stop:noise:10")]


@pytest.fixture(scope="module")
def wiener():
    gen = TuningCurveGenerator(40, 0.05, 1, np.random.default_rng(0))
    block = calibration_block(gen, 60.0, 1.0, np.random.default_rng(1))
    return gen, fit_decoder("wiener", block)


@pytest.mark.parametrize("spec", ["shuffle:1", "dropout:0.7", "gain:3"])
def test_scores_fall_under_a_strong_perturbation(wiener, spec):
    gen, decoder = wiener

    def bitrate(perturbations):
        s = ClosedLoopSession(gen, decoder, default_task(1.0), default_user(1.0),
                              np.random.default_rng(3), perturbations)
        return s.run(30.0).scores()

    clean, bad = bitrate([]), bitrate([parse_perturbation(spec)])
    assert clean.success_rate > 0.9
    assert bad.bitrate_bps < 0.75 * clean.bitrate_bps, (spec, clean, bad)
