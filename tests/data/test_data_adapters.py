"""Dataset adapter TOML: the shipped files validate, bad files fail on one named line."""

from __future__ import annotations

import pytest

from ldns_sim.data.adapters import adapters_dir, available_adapters, load_adapter
from ldns_sim.errors import ConfigError


def test_shipped_adapters_validate():
    names = available_adapters()
    assert {"m1_center_out_trialdata", "nlb_mc_maze", "ldns_session", "npz"} <= set(names)
    for name in names:
        assert load_adapter(name).name == name
    maze = load_adapter(adapters_dir() / "nlb_mc_maze.toml")
    assert maze.bin_s == 0.005 and maze.behaviour.lag_s == 0.1
    assert (maze.alignment.start_s, maze.alignment.end_s) == (-0.25, 0.45)


@pytest.mark.parametrize(("body", "pattern"), [
    ('name = "x"\nformat = "nwb"\nbin_s = -1\n', r"field bin_s: .*greater than 0"),
    ('name = "x"\nformat = "nwb"\n[behaviour]\nsource = "v"\nlagg_s = 0.1\n',
     r"field behaviour\.lagg_s: Extra inputs are not permitted"),
    ('name = "x"\nformat = "csv"\n', r"field format: .*'nwb'"),
    ('name = "x"\nformat = "nwb"\n[alignment]\nmode = "event"\nevent = "m"\n',
     r"field alignment: event mode needs event, start_s and end_s"),
    ('name = "x"\nformat = "nwb"\n[split]\ntrain = 0.5\n',
     r"field split: train \+ val \+ test must be 1, got 0\.8"),
    ('format = "nwb"\n', r"field name: Field required"),
    ('name = "x"\nformat = nwb\n', r"not valid TOML"),
])
def test_bad_adapter_is_one_line_naming_file_and_field(tmp_path, body, pattern):
    path = tmp_path / "bad_adapter.toml"
    path.write_text(body)
    with pytest.raises(ConfigError, match=r"bad_adapter\.toml: " + ".*" + pattern) as info:
        load_adapter(path)
    assert "\n" not in str(info.value)


def test_unknown_name_lists_the_shipped_ones():
    with pytest.raises(ConfigError, match=r"unknown dataset adapter 'mc_mazee'.*nlb_mc_maze"):
        load_adapter("mc_mazee")
