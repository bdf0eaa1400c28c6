"""`ldns-sim bench` plumbing: a tiny random model through the real command, engine and clock.

Speed is measured by the benchmark itself, never asserted here: these tests check that every
number is there, has its type and is finite (and positive where it must be).
"""

import contextlib
import io
import json
import math

import pytest
import torch

from ldns_sim.bench_command import format_report, measure_scaling
from ldns_sim.bundle import load_bundle, save_bundle
from ldns_sim.cli import main
from ldns_sim.realtime.clock import LslClock
from ldns_sim.simulator import SamplerSettings
from ldns_sim.testing import make_random_bundle

N_NEURONS = 8
BIN_S = 0.05  # make_random_bundle's bin width for a preset


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    return save_bundle(make_random_bundle(N_NEURONS, preset="tiny", seed=0),
                       tmp_path_factory.mktemp("bench") / "tiny-random")


@pytest.fixture(scope="module")
def bench_json(tiny_model_dir):
    """The stdout of a 1-second run with --json, and torch's thread count before and after."""
    out = io.StringIO()
    threads_before = torch.get_num_threads()
    with contextlib.redirect_stdout(out):  # module scope: no capsys
        code = main(["bench", "--model", str(tiny_model_dir), "--duration", "1",
                     "--steps", "2", "--json"])
    return code, out.getvalue(), threads_before, torch.get_num_threads()


def _positive(x) -> bool:
    return isinstance(x, float | int) and math.isfinite(x) and x > 0


@pytest.mark.realtime
def test_bench_json_has_every_number(bench_json, tiny_model_dir):
    code, text, threads_before, threads_after = bench_json
    assert code == 0
    report = json.loads(text)  # stdout holds the JSON object and nothing else
    assert threads_after == threads_before  # the command restores torch's thread count
    assert report["torch_threads"] == 1
    assert report["torch_version"] == torch.__version__
    assert report["command"] == (f"ldns-sim bench --model {tiny_model_dir} --duration 1 "
                                 f"--steps 2 --json")
    assert isinstance(report["date"], str) and report["date"][:2] == "20"
    assert report["machine"]["cpu_count"] >= 1 and report["machine"]["platform"]
    assert report["model"]["n_neurons"] == N_NEURONS and report["model"]["n_steps"] == 2
    assert report["scaling"] is None

    rt = report["realtime"]
    assert rt["condition"] == "script:center-out"
    assert rt["n_chunks"] == rt["n_bins"] == round(1 / BIN_S)
    assert isinstance(rt["n_late"], int) and 0 <= rt["n_late"] <= rt["n_chunks"]
    for key in ("real_time_factor", "latency_p50_ms", "latency_p99_ms", "latency_max_ms",
                "latency_p50_fraction_of_bin", "latency_p99_fraction_of_bin",
                "peak_rss_mib"):
        assert _positive(rt[key]), (key, rt[key])
    # the default profile emits immediately: no look-ahead, late past a quarter bin
    assert (rt["emission"], rt["lookahead_ms"]) == ("immediate", 0.0)
    assert rt["deadline_ms"] == pytest.approx(BIN_S / 4 * 1e3)
    assert rt["latency_p50_ms"] <= rt["latency_p99_ms"] <= rt["latency_max_ms"]
    assert rt["latency_p99_fraction_of_bin"] == pytest.approx(
        rt["latency_p99_ms"] / 1e3 / BIN_S)
    for key in ("jitter_p50_ms", "jitter_p99_ms", "jitter_max_ms"):  # emitted at or after
        assert math.isfinite(rt[key]) and rt[key] >= 0, (key, rt[key])
    assert 0 <= rt["interval_jitter_p99_ms"] <= rt["interval_jitter_max_ms"]

    off = report["offline"]
    assert off["n_bins"] == rt["n_bins"]
    for key in ("generation_s", "real_time_factor", "cost_per_bin_mean_ms",
                "cost_per_bin_p50_ms", "cost_per_bin_p99_ms"):
        assert _positive(off[key]), (key, off[key])
    assert off["real_time_factor"] == pytest.approx(off["n_bins"] * BIN_S / off["generation_s"])


@pytest.mark.realtime
def test_scaling_rows_and_table(bench_json, tiny_model_dir):
    bundle = load_bundle(tiny_model_dir)
    rows = measure_scaling(bundle, SamplerSettings(n_steps=1), 0.2, LslClock(),
                           neuron_counts=(N_NEURONS, 12), stream_counts=(1, 3))
    assert [(r["n_neurons"], r["n_streams"], r["weights"]) for r in rows] == [
        (8, 1, "model"), (8, 3, "model"), (12, 1, "random"), (12, 3, "random")]
    for r in rows:
        assert r["n_chunks"] == round(0.2 / BIN_S)
        for key in ("cost_per_bin_per_stream_ms", "real_time_factor_per_stream",
                    "latency_p99_ms", "peak_rss_mib"):
            assert _positive(r[key]), (key, r[key])
        for key in ("streams_per_core_p50", "streams_per_core_p99"):
            assert isinstance(r[key], int) and r[key] >= 0, (key, r[key])

    report = json.loads(bench_json[1])
    table = format_report(report | {"scaling": rows})
    assert "real-time factor" in table and "generation latency p99" in table
    # without scaling, the same table minus a blank line, a title, a header and 4 rows
    assert len(table.splitlines()) == len(format_report(report).splitlines()) + 7
    assert "      12*        3" in table  # random-weight rows are marked


@pytest.mark.parametrize(("argv", "expected"), [
    (["--duration", "0"], "--duration 0.0: expected a positive number"),
    (["--duration", "0.01"], "shorter than one bin"),
    (["--steps", "0"], "--steps 0: expected at least 1"),
])
def test_bad_input_is_one_line(tiny_model_dir, capsys, argv, expected):
    assert main(["bench", "--model", str(tiny_model_dir), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and "\n" not in err


def test_missing_model_is_one_line(tmp_path, capsys):
    assert main(["bench", "--model", str(tmp_path / "nothing"), "--duration", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "nothing" in err and "\n" not in err


def test_random_bundle_follows_seed_and_architecture():
    rng_state = torch.random.get_rng_state()
    a, b = (make_random_bundle(N_NEURONS, preset="tiny", seed=3) for _ in range(2))
    c = make_random_bundle(N_NEURONS, preset="tiny", seed=4)
    assert torch.equal(torch.random.get_rng_state(), rng_state)  # global state untouched
    params = [dict(x.denoiser.named_parameters()) | dict(x.ae.named_parameters())
              for x in (a, b, c)]
    assert all(torch.equal(params[0][k], params[1][k]) for k in params[0])
    assert not torch.equal(params[0]["conv_in.weight"], params[2]["conv_in.weight"])

    big = make_random_bundle(100, like=a)
    assert big.n_neurons == 100 and len(big.meta.neuron_ids) == 100
    assert big.meta.ae.n_neurons == 100 and big.meta.history.n_neurons == 100
    assert big.meta.denoiser == a.meta.denoiser
    assert (big.meta.ae.n_latents, big.meta.ae.n_hidden, big.meta.ae.n_blocks) == (
        a.meta.ae.n_latents, a.meta.ae.n_hidden, a.meta.ae.n_blocks)
    assert (big.meta.bin_s, big.meta.behaviour_names, big.meta.condition) == (
        a.meta.bin_s, a.meta.behaviour_names, a.meta.condition)
    assert big.ae.decode(torch.zeros(1, a.meta.ae.n_latents, 3)).shape == (1, 100, 3)
