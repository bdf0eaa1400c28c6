"""Stream profiles: the shipped default validates; bad files fail with one clear line."""

from __future__ import annotations

import pytest

from ldns_sim.errors import ConfigError
from ldns_sim.sinks.lsl_sink import LslSink
from ldns_sim.sinks.nwb_recorder import NwbRecorder
from ldns_sim.sinks.profile import load_profile, make_sinks, streams_dir
from ldns_sim.sinks.zmq_sink import ZmqSink


def test_default_profile_loads_by_name_and_path():
    by_name = load_profile("default")
    assert by_name == load_profile(streams_dir() / "default.toml")
    assert by_name.zmq.endpoint == "tcp://127.0.0.1:5556" and by_name.lsl.scope == "machine"
    assert by_name.record.path is None and by_name.bins_per_chunk == 1


def test_make_sinks_follows_the_profile(tmp_path):
    profile = load_profile("default")
    sinks = make_sinks(profile)
    assert [type(s) for s in sinks] == [LslSink, ZmqSink]
    sinks = make_sinks(profile, record_path=tmp_path / "s.nwb")
    assert isinstance(sinks[-1], NwbRecorder) and sinks[-1].path == tmp_path / "s.nwb"
    assert sinks[-1].session.species == "Macaca mulatta"


@pytest.mark.parametrize(("text", "message"), [
    ('name = "x"\n[zmq]\nendpiont = "tcp://127.0.0.1:1"\n', "field zmq.endpiont"),
    ('name = "x"\nbins_per_chunk = 0\n', "field bins_per_chunk"),
    ('name = "x"\n[lsl]\nscope = "planet"\n', "field lsl.scope"),
    ('name = "x"\n[record]\nsex = "male"\n', "field record.sex"),
    ('name = "x"\n[record\n', "not valid TOML"),
    ('name = "x"\n[engine]\nrt_priority = 100\n', "engine.rt_priority"),
    ('name = "x"\n[engine]\nemission = "asap"\n', "engine.emission"),
    ('name = "x"\n[engine]\nemission = "immediate"\nlookahead_ms = 4\n',
     "lookahead_ms applies to emission = .scheduled"),
    ('name = "x"\n[engine]\nemission = "immediate"\ndeadline_ms = inf\n', "engine.deadline_ms"),
    ('name = "x"\n[engine]\nemission = "scheduled"\ndeadline_ms = 4\n',
     "deadline_ms applies to emission = .immediate"),
])
def test_bad_profile_names_file_and_field(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_profile(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_unknown_profile_name_lists_the_known_ones():
    with pytest.raises(ConfigError, match="unknown stream profile 'nope'.*default"):
        load_profile("nope")


def test_scheduled_profile_is_the_default_but_for_its_emission():
    default, scheduled = load_profile("default"), load_profile("scheduled")
    assert scheduled.engine.emission == "scheduled" != default.engine.emission
    differ = {"name", "description", "engine"}
    assert scheduled.model_dump(exclude=differ) == default.model_dump(exclude=differ)
    assert (scheduled.engine.model_dump(exclude={"emission"})
            == default.engine.model_dump(exclude={"emission"}))


def test_engine_section_becomes_engine_options(tmp_path):
    from ldns_sim.stream_session import engine_options

    assert engine_options(load_profile("default")) == {
        "rt_priority": 10, "freeze_gc": True, "gil_switch_s": 0.0005, "lookahead_s": None,
        "cpu": None, "source_wait_s": 0.0, "emission": "immediate", "deadline_s": None}
    path = tmp_path / "p.toml"
    path.write_text('name = "p"\n[engine]\nrt_priority = 0\nemission = "scheduled"\n'
                    'lookahead_ms = 4\n'
                    'freeze_gc = false\ngil_switch_ms = 2\ncpu = 1\nsource_wait_s = 5\n')
    assert engine_options(load_profile(path)) == {
        "rt_priority": None, "freeze_gc": False, "gil_switch_s": 0.002, "lookahead_s": 0.004,
        "cpu": 1, "source_wait_s": 5.0, "emission": "scheduled", "deadline_s": None}
    path.write_text('name = "p"\n[engine]\nemission = "immediate"\ndeadline_ms = 8\n')
    options = engine_options(load_profile(path))
    assert (options["emission"], options["deadline_s"]) == ("immediate", 0.008)
    path.write_text('name = "p"\n[engine]\nlookahead_ms = 4\n')  # as profiles before emission
    assert load_profile(path).engine.emission == "scheduled"
