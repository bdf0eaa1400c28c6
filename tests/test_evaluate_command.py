"""``ldns-sim evaluate``: real files in tmp_path, parsed by the real CLI parser."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import numpy as np
import pytest

from ldns_sim.bundle import save_bundle
from ldns_sim.cli import build_parser, main
from ldns_sim.core import SpikeData
from ldns_sim.data.npz_io import save_npz
from ldns_sim.data.tuning import make_tuning_data, reach_velocity
from ldns_sim.errors import ConfigError, DataError
from ldns_sim.evaluate_command import (
    BASELINE_NAMES,
    STREAMED,
    WINDOW,
    common_length,
    run_evaluate,
    sample_model,
    session_pieces,
)
from ldns_sim.nn.denoiser import Denoiser
from ldns_sim.testing import make_random_bundle

N_NEURONS = 16
BIN_S = 0.05  # the bin width of make_random_bundle's presets


@pytest.fixture(scope="module")
def tuning() -> SpikeData:
    return make_tuning_data(n_trials=64, n_neurons=N_NEURONS, n_bins=30, bin_s=BIN_S, seed=3)


@pytest.fixture(scope="module")
def real_npz(tuning, tmp_path_factory):
    return save_npz(tuning, tmp_path_factory.mktemp("real") / "tuning.npz")


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    return save_bundle(make_random_bundle(N_NEURONS, seed=1, preset="tiny"),
                       tmp_path_factory.mktemp("model") / "random-tiny")


def _evaluate(*argv: str) -> int:
    return run_evaluate(build_parser().parse_args(["evaluate", *argv]))


def _header(out: str) -> str:
    return out.splitlines()[0]


def test_samples_npz_prints_table_with_baselines_and_floor(tuning, real_npz, tmp_path, capsys):
    samples = tmp_path / "samples.npz"
    save_npz(make_tuning_data(n_trials=64, n_neurons=N_NEURONS, n_bins=30, bin_s=BIN_S,
                              seed=4).select("test"), samples)
    assert _evaluate(str(samples), "--data", str(real_npz), "--n-boot", "3") == 0
    out = capsys.readouterr().out
    header = _header(out)
    for name in ("samples (samples.npz)", *BASELINE_NAMES, "data floor"):
        assert name in header
    assert "LDNS" not in header
    rows = [line.split()[0] for line in out.splitlines()[2:]]
    assert {"psch_kl", "corr_rmse", "rate_rmse", "psth_r2", "decode_r2"} <= set(rows)


@pytest.mark.slow  # the report's matplotlib figures take ~5 s for 5 candidates
def test_report_files_and_metrics_of_identical_samples(tuning, real_npz, tmp_path, capsys):
    # The real test split itself as "samples": its errors against the real set must be 0.
    samples = save_npz(tuning.select("test"), tmp_path / "same.npz")
    report = tmp_path / "report"
    assert _evaluate(str(samples), "--data", str(real_npz), "--report", str(report),
                     "--n-boot", "3") == 0
    assert "samples (same.npz)" in _header(capsys.readouterr().out)
    for name in ("metrics.json", "index.html", "raster.png", "psth.png", "rates.png"):
        assert (report / name).stat().st_size > 0
    metrics = json.loads((report / "metrics.json").read_text())
    same = metrics["candidates"]["samples (same.npz)"]
    assert same["rate_rmse"]["value"] == 0 and same["corr_rmse"]["value"] == 0
    assert metrics["candidates"]["homogeneous Poisson"]["psth_r2"]["value"] < 0.9
    settings = metrics["settings"]
    assert settings["candidate_kind"] == "samples" and settings["split"] == "test"
    assert "same lengths" in settings["trial_lengths"]
    assert settings["n_trials"]["PSTH-Poisson"] == tuning.select("test").n_trials
    assert "samples (same.npz)" in (report / "index.html").read_text()


def test_shorter_samples_cut_both_sets_to_common_length(tuning):
    real = tuning.select("test")
    short = replace(real, counts=tuple(c[:12] for c in real.counts),
                    behaviour=tuple(b[:12] for b in real.behaviour),
                    true_rates=tuple(r[:12] for r in real.true_rates))
    cut_samples, cut_real, note = common_length(short, real)
    assert {len(c) for c in cut_samples.counts} == {len(c) for c in cut_real.counts} == {12}
    np.testing.assert_array_equal(cut_real.counts[0], real.counts[0][:12])
    assert len(cut_real.behaviour[0]) == 12 and "first 12 bins" in note


def test_bundle_candidate_streamed_only(real_npz, bundle_dir, capsys):
    assert _evaluate(str(bundle_dir), "--data", str(real_npz), "--n-boot", "2",
                     "--steps", "2") == 0
    header = _header(capsys.readouterr().out)
    assert STREAMED in header and WINDOW not in header
    assert all(name in header for name in BASELINE_NAMES)


def test_samples_per_trial_draws_k_model_and_baseline_trials_per_real_trial(
        tuning, real_npz, bundle_dir, caplog):
    n_real = tuning.select("test").n_trials
    with caplog.at_level("INFO", logger="ldns_sim.evaluation.compare"):
        assert _evaluate(str(bundle_dir), "--data", str(real_npz), "--n-boot", "0",
                         "--steps", "2", "--samples-per-trial", "3") == 0
    for name in (STREAMED, "PSTH-Poisson"):
        assert f"evaluating {name} ({3 * n_real} trials) against {n_real} real trials" in \
            caplog.text
    with pytest.raises(ConfigError, match="--samples-per-trial 0"):
        _evaluate(str(bundle_dir), "--data", str(real_npz), "--samples-per-trial", "0")


def test_bundle_sampled_on_each_real_trial(tuning, tmp_path):
    """Ragged real trials: one generated trial per real trial, same length and behaviour;
    with a whole-window denoiser the window sampler's set appears too."""
    bundle = make_random_bundle(N_NEURONS, seed=2, preset="tiny")
    cfg = replace(bundle.meta.denoiser, causal=False)
    bundle = replace(bundle, window_denoiser=Denoiser(cfg).eval(),
                     meta=bundle.meta.model_copy(update={"window_denoiser": cfg}))
    path = save_bundle(bundle, tmp_path / "with-window")
    real = tuning.select("test")
    lengths = [30 - (i % 3) * 7 for i in range(real.n_trials)]  # 30, 23, 16 bins
    ragged = replace(real, counts=tuple(c[:n] for c, n in zip(real.counts, lengths)),
                     behaviour=tuple(b[:n] for b, n in zip(real.behaviour, lengths)),
                     true_rates=None)
    sets, notes = sample_model(str(path), ragged, 2, np.random.SeedSequence(0))
    assert set(sets) == {STREAMED, WINDOW}
    for generated in sets.values():
        assert [len(c) for c in generated.counts] == lengths
        assert generated.n_neurons == N_NEURONS
        for b_gen, b_real in zip(generated.behaviour, ragged.behaviour):
            np.testing.assert_array_equal(b_gen, b_real)
        assert all(r.shape == c.shape for r, c in zip(generated.true_rates, generated.counts))
    assert "window" in notes["trial_lengths"] and "16-bin windows" in notes["trial_lengths"]


def test_neuron_count_mismatch_is_one_line_naming_both(real_npz, tmp_path, capsys):
    other = save_bundle(make_random_bundle(12, preset="tiny"), tmp_path / "twelve")
    with pytest.raises(DataError, match=r"12 neurons.* 16") as err:
        _evaluate(str(other), "--data", str(real_npz))
    assert "\n" not in str(err.value)
    assert main(["evaluate", str(other), "--data", str(real_npz)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "12 neurons" in lines[0] and "16" in lines[0]


def test_bad_candidate_and_options_are_config_errors(real_npz, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not spikes")
    with pytest.raises(ConfigError, match="notes.txt"):
        _evaluate(str(text), "--data", str(real_npz))
    with pytest.raises(DataError, match="missing.npz: no such file"):
        _evaluate(str(tmp_path / "missing.npz"), "--data", str(real_npz))
    with pytest.raises(ConfigError, match="--steps 0"):
        _evaluate(str(real_npz), "--data", str(real_npz), "--steps", "0")
    with pytest.raises(ConfigError, match="--samples-per-trial 2: only a model.*tuning.npz"):
        _evaluate(str(real_npz), "--data", str(real_npz), "--samples-per-trial", "2")


def test_samples_nwb_written_by_sample(tuning, real_npz, tmp_path, capsys):
    from ldns_sim.data.nwb_trials_writer import write_trials_nwb

    samples = write_trials_nwb(tuning.select("test"), tmp_path / "samples.nwb",
                               description="test split as samples", model_name="none")
    assert _evaluate(str(samples), "--data", str(real_npz), "--n-boot", "2") == 0
    assert "samples (samples.nwb)" in _header(capsys.readouterr().out)


def _record_session(path, n_chunks: int, bins_per_chunk: int) -> None:
    from ldns_sim.sinks.nwb_recorder import NwbRecorder
    from ldns_sim.testing import TuningCurveGenerator, make_stream_meta

    gen = TuningCurveGenerator(N_NEURONS, BIN_S, bins_per_chunk, np.random.default_rng(0))
    rec = NwbRecorder(path).open(make_stream_meta(gen, condition_source="script:center-out"))
    t0_s = time.monotonic()  # stamps on both clocks, as the engine's
    rec.write_marker("start", t0_s)
    for k in range(n_chunks):
        velocity = reach_velocity(bins_per_chunk, 2, bins_per_chunk // 2, k * np.pi / 4, 1.0)
        ends = t0_s + (k * bins_per_chunk + 1 + np.arange(bins_per_chunk)) * BIN_S
        rec.write_chunk(gen.next_chunk(velocity.astype(np.float32)).stamped(ends, ends))
    rec.close()


def test_session_nwb_cut_into_trial_length_pieces(tuning, real_npz, tmp_path, capsys):
    session = tmp_path / "session.nwb"
    # 420 bins: two whole 10 s segments (200 bins) and a remainder the loader drops
    _record_session(session, n_chunks=21, bins_per_chunk=20)
    assert _evaluate(str(session), "--data", str(real_npz), "--n-boot", "2") == 0
    assert "session (session.nwb)" in _header(capsys.readouterr().out)

    from ldns_sim.data.load import load_spike_data

    pieces, real, note = session_pieces(load_spike_data(session), tuning.select("test"))
    assert pieces.n_trials == 2 * (200 // 30)
    assert {len(c) for c in pieces.counts} == {len(c) for c in real.counts} == {30}
    assert pieces.behaviour is not None
    assert "12 consecutive pieces of 30 bins" in note and "first 30 bins" in note
