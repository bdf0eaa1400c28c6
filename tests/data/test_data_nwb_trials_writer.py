"""Trials written to NWB by write_trials_nwb and read back by our own NWB loader."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timezone

import numpy as np
import pytest
from pynwb import NWBHDF5IO, NWBFile

from ldns_sim.core import SpikeData
from ldns_sim.data.load import load_spike_data
from ldns_sim.data.nwb_trials_writer import (
    LAYOUT,
    LAYOUT_KEY,
    behaviour_series_name,
    is_trials_nwb,
    trials_adapter,
    write_trials_nwb,
)
from ldns_sim.data.tuning import make_tuning_data
from ldns_sim.errors import ConfigError, DataError, SinkError
from ldns_sim.sinks.nwb_writer import SessionInfo

SHA = "ab" * 32


@pytest.fixture(scope="module")
def data() -> SpikeData:
    return make_tuning_data(n_trials=24, n_neurons=12, n_bins=30, bin_s=0.02, seed=3)


@pytest.fixture(scope="module")
def written(data, tmp_path_factory):
    path = tmp_path_factory.mktemp("trials") / "samples.nwb"
    rates_hz = tuple(r / data.bin_s for r in data.true_rates)
    write_trials_nwb(data, path, description="24 tuning trials", model_name="tuning-test",
                     model_sha256=SHA, seed=11, rates=rates_hz,
                     session=SessionInfo(experimenter=("Doe, Jane",), institution="Lab U"))
    return path


def _assert_same(back: SpikeData, data: SpikeData) -> None:
    assert back.n_trials == data.n_trials
    for got, want in zip(back.counts, data.counts):
        np.testing.assert_array_equal(got, want)
    assert back.neuron_ids == data.neuron_ids
    assert back.bin_s == data.bin_s
    np.testing.assert_array_equal(back.split, data.split)
    if data.behaviour is None:
        assert back.behaviour is None
    else:
        assert back.behaviour_names == data.behaviour_names
        for got, want in zip(back.behaviour, data.behaviour):
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    if data.direction_rad is None:
        assert back.direction_rad is None
    else:
        np.testing.assert_array_equal(back.direction_rad, data.direction_rad)


def test_round_trip_through_the_fitted_adapter(written, data):
    assert is_trials_nwb(written)
    back = load_spike_data(written, trials_adapter(written))
    _assert_same(back, data)
    np.testing.assert_array_equal(back.align_bin, data.align_bin)


def test_round_trip_through_the_toml_adapter_by_name(written, data):
    back = load_spike_data(written, "ldns_samples")
    _assert_same(back, data)
    assert back.align_bin is None  # the TOML names no alignment column


def test_pynwb_reads_trials_units_behaviour_rates_and_notes(written, data):
    with NWBHDF5IO(str(written), "r") as io:
        nwb = io.read()
        trials = nwb.trials.to_dataframe()
        starts = np.asarray(trials["start_time"])
        np.testing.assert_allclose(starts, np.arange(data.n_trials) * 31 * data.bin_s)
        np.testing.assert_allclose(trials["stop_time"] - starts, 30 * data.bin_s)
        assert list(trials["split"]) == list(data.split)
        np.testing.assert_array_equal(trials["direction_rad"], data.direction_rad)
        units = nwb.units
        assert list(units["unit_name"][:]) == list(data.neuron_ids)
        intervals = np.stack([starts, np.asarray(trials["stop_time"])], axis=1)
        for i in (0, data.n_neurons - 1):
            np.testing.assert_allclose(units["obs_intervals"][i], intervals)
            times = units["spike_times"][i]
            assert len(times) == sum(int(c[:, i].sum()) for c in data.counts)
            assert np.all(np.diff(times) > 0)
        vel = nwb.processing["behavior"]["hand_vel"]
        assert "columns=['vel_x', 'vel_y']" in vel.comments
        np.testing.assert_allclose(vel.timestamps[:31][-1], 31 * data.bin_s)  # the gap bin
        rates = nwb.processing["ldns_sim"]["rates"]
        assert rates.unit == "Hz"
        np.testing.assert_allclose(rates.data[:30], data.true_rates[0] / data.bin_s, rtol=1e-6)
        counts = nwb.processing["ecephys"]["binned_spike_counts"].data[:]
        np.testing.assert_array_equal(counts, np.concatenate(data.counts))
        notes = json.loads(nwb.notes)
        assert notes[LAYOUT_KEY] == LAYOUT
        assert (notes["model_name"], notes["model_sha256"], notes["seed"]) == \
            ("tuning-test", SHA, 11)
        assert nwb.session_description == "24 tuning trials"
        assert nwb.experimenter == ("Doe, Jane",)
        assert "Simulated" in nwb.subject.description and nwb.subject.age == "P0D"


def test_nwbinspector_dandi_finds_nothing_critical(written):
    nwbinspector = pytest.importorskip("nwbinspector")
    messages = list(nwbinspector.inspect_nwbfile(
        nwbfile_path=str(written), config=nwbinspector.load_config("dandi")))
    bad = [f"{m.importance.name} {m.check_function_name}: {m.message}" for m in messages
           if m.importance.name in ("CRITICAL", "PYNWB_VALIDATION", "ERROR")]
    assert not bad, bad


def _ragged(with_parts: bool, names: tuple[str, ...] = ()) -> SpikeData:
    """Trials of 1 to 9 bins at an awkward bin width, optionally with behaviour."""
    rng = np.random.default_rng(5)
    lengths = [1, 4, 9, 1, 2, 7]
    counts = tuple(rng.poisson(2.0, (n, 3)).astype(np.int32) for n in lengths)
    behaviour = tuple(rng.normal(size=(n, len(names))).astype(np.float32) for n in lengths)
    return SpikeData(counts=counts, bin_s=1 / 60, neuron_ids=("a", "b", "c"),
                     split=np.array(["train", "val", "test", "train", "train", "test"]),
                     source="ragged", behaviour=behaviour if with_parts else None,
                     behaviour_names=names if with_parts else ())


def test_ragged_trials_without_behaviour_or_directions_round_trip(tmp_path):
    data = _ragged(with_parts=False)
    path = write_trials_nwb(data, tmp_path / "ragged.nwb", description="ragged")
    _assert_same(load_spike_data(path, trials_adapter(path)), data)
    with pytest.raises(DataError, match="no behaviour TimeSeries 'hand_vel'"):
        load_spike_data(path, "ldns_samples")


@pytest.mark.parametrize(("names", "series"), [(("pos_x", "pos_y"), "hand_pos"),
                                               (("force",), "condition")])
def test_behaviour_series_is_named_by_channel_family(tmp_path, names, series):
    assert behaviour_series_name(names) == series
    data = _ragged(with_parts=True, names=names)
    path = write_trials_nwb(data, tmp_path / "b.nwb", description="family")
    with NWBHDF5IO(str(path), "r") as io:
        assert series in io.read().processing["behavior"].data_interfaces
    _assert_same(load_spike_data(path, trials_adapter(path)), data)


def test_bad_inputs_raise_one_line_errors(tmp_path, data):
    path = tmp_path / "x.nwb"
    with pytest.raises(ConfigError, match="description"):
        write_trials_nwb(data, path, description=" ")
    with pytest.raises(DataError, match="rates of trial 0 have shape"):
        write_trials_nwb(data, path, description="d",
                         rates=tuple(r[:-1] for r in data.true_rates))
    with pytest.raises(DataError, match="3 rate arrays for 24 trials"):
        write_trials_nwb(data, path, description="d", rates=data.true_rates[:3])
    negative = replace(data, counts=(-data.counts[0],) + data.counts[1:])
    with pytest.raises(DataError, match="negative count"):
        write_trials_nwb(negative, path, description="d")
    with pytest.raises(SinkError, match="cannot write"):
        write_trials_nwb(data, tmp_path / "missing_dir" / "x.nwb", description="d")
    assert not path.exists()


def test_other_nwb_files_are_not_taken_for_trials_files(tmp_path):
    path = tmp_path / "other.nwb"
    nwb = NWBFile(session_description="other", identifier="o", notes="free text",
                  session_start_time=datetime(2024, 1, 1, tzinfo=timezone.utc))
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    assert not is_trials_nwb(path)
    with pytest.raises(DataError, match="not an NWB file written by write_trials_nwb"):
        trials_adapter(path)
