"""Stream profiles: what a session publishes and records (``streams/*.toml``).

A profile names the LSL streams, the ZMQ endpoint, the chunking, the recording options and
any scheduled perturbations; ``ldns-sim stream --profile X`` reads one, and
``streams/default.toml`` is used when no profile is given. Validated here with pydantic
(``extra="forbid"``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

import ldns_sim
from ldns_sim.perturbations.schedule import Perturbation, PerturbationEntry
from ldns_sim.sinks.base import Sink
from ldns_sim.toml_config import load_toml_model, resolve_named_toml


def streams_dir() -> Path:
    """The repository's ``streams/`` folder (next to the ``ldns_sim`` package)."""
    return Path(ldns_sim.__file__).resolve().parents[1] / "streams"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LslProfile(_Section):
    """``[lsl]``: one outlet per kind (see ``docs/wire-format.md``)."""

    enabled: bool = True
    name_prefix: str = Field("ldns-sim", min_length=1)
    publish_events: bool = False
    publish_truth: bool = True
    scope: str = Field("machine", pattern="^(machine|link|site|organization|global)$")
    """liblsl ``ResolveScope``: ``machine`` keeps streams on this computer, ``site`` for a lab."""
    max_buffered_s: int = Field(60, gt=0)


class ZmqProfile(_Section):
    """``[zmq]``: one PUB socket, multipart ``[topic, header JSON, payload]``."""

    enabled: bool = True
    endpoint: str = "tcp://127.0.0.1:5556"
    bind_any: bool = False
    sndhwm: int = Field(1000, gt=0)
    meta_interval_s: float = Field(60.0, gt=0)


class RecordProfile(_Section):
    """``[record]``: the NWB session file (``--record FILE.nwb`` turns it on)."""

    path: str | None = None
    sync_interval_s: float = Field(0.5, gt=0, le=1.0)
    max_queue: int = Field(10_000, gt=0)
    session_description: str = "Simulated spiking session streamed by ldns-sim"
    experimenter: tuple[str, ...] = ()
    institution: str | None = None
    lab: str | None = None
    subject_id: str = "ldns-sim-virtual-subject"
    species: str = "Macaca mulatta"
    sex: str = Field("U", pattern="^[MFUO]$")
    age: str = Field("P0D", pattern="^P")


class EngineProfile(_Section):
    """``[engine]``: how the real-time loop keeps time (``ldns_sim.realtime.engine``)."""

    rt_priority: int = Field(10, ge=0, le=99)
    """SCHED_FIFO priority of the engine thread (the LSL/ZMQ condition source's input thread
    gets one less), 0: normal priority. Linux; needs root,
    CAP_SYS_NICE or an rtprio limit (``ulimit -r``), else the stream runs at normal priority
    and says so. On a busy machine it is what keeps wake-ups on time (docs/benchmarks.md 2.2)."""
    emission: Literal["scheduled", "immediate"] = "immediate"
    """``immediate``: each bin's condition is read at its end and the chunk handed out as soon
    as it is generated (a behaviour sample reaches the spikes within one bin plus the
    generation time; the hand-out comes that long after the bin's end and varies with it).
    ``scheduled``: each chunk is generated a look-ahead before its end and handed out at its
    end (regular hand-out; a sample reaches the spikes within one bin plus the look-ahead,
    which must cover the slowest generations). Stamps are the bins' ends in both
    (docs/benchmarks.md 2.1, session 8)."""
    lookahead_ms: float | None = Field(None, ge=0, allow_inf_nan=False)
    """Scheduled emission: fixed look-ahead in ms (condition read and generation start before
    each chunk's end); unset: adapted to the measured generation time. Set (non-zero)
    without ``emission``, it means ``emission = "scheduled"``."""
    deadline_ms: float | None = Field(None, gt=0, allow_inf_nan=False)
    """Immediate emission: a chunk handed out more than this after its end counts as late;
    unset: a quarter of a chunk."""
    freeze_gc: bool = True
    """Freeze the objects alive at the start out of Python's garbage collector while streaming
    (a full collection over them takes ~100 ms)."""
    cpu: int | None = Field(None, ge=0)
    """Pin the engine thread to this CPU (Linux); unset: the OS places it. On the 2-core VM
    of docs/benchmarks.md (2.1) one 10-minute run pinned to CPU 1 had 25 late chunks against
    46 unpinned; most of those came from the ZMQ meta repeat found later, so the gain of
    pinning by itself is not established."""
    source_wait_s: float = Field(0.0, ge=0, le=600)
    """Wait up to this long for the condition source's first sample before the first bin
    (a rig's LSL or ZMQ behaviour stream takes a fraction of a second to connect); 0: start
    at once. For open-loop rigs only: a rig that decodes the behaviour from the stream's own
    spikes sends nothing before the first bin, so the stream would wait this long for it.
    Sources that always have a value start at once anyway."""
    gil_switch_ms: float | None = Field(0.5, gt=0, le=100)
    """GIL switch interval while streaming (Python's default: 5 ms, which a helper thread
    running Python code can add to the engine's wake-up); unset: left at the default."""

    @model_validator(mode="before")
    @classmethod
    def _lookahead_means_scheduled(cls, raw: object) -> object:
        """A profile with a look-ahead and no ``emission`` (written before it existed) keeps
        the scheduled emission its look-ahead is for."""
        if isinstance(raw, dict) and raw.get("lookahead_ms") and "emission" not in raw:
            return {**raw, "emission": "scheduled"}
        return raw

    @model_validator(mode="after")
    def _timing_fits_emission(self) -> EngineProfile:
        if self.emission == "immediate" and self.lookahead_ms:
            raise ValueError('lookahead_ms applies to emission = "scheduled" only (immediate '
                             "emission reads each bin's condition at its end)")
        if self.emission == "scheduled" and self.deadline_ms is not None:
            raise ValueError('deadline_ms applies to emission = "immediate" only (a scheduled '
                             "chunk is late when it is not ready at its end)")
        return self


class StreamProfile(_Section):
    """A whole ``streams/*.toml`` file."""

    name: str
    description: str = ""
    bins_per_chunk: int = Field(5, gt=0, le=1000)
    """Bins generated and published together (latency = bins_per_chunk * bin_s)."""
    lsl: LslProfile = LslProfile()
    zmq: ZmqProfile = ZmqProfile()
    record: RecordProfile = RecordProfile()
    engine: EngineProfile = EngineProfile()
    perturbation: tuple[PerturbationEntry, ...] = ()
    """``[[perturbation]]`` tables: scheduled dropout, drift, gain, noise, shuffle (stream
    seconds; ``ldns_sim.perturbations``), added to any ``--perturb`` of the command line."""

    def perturbations(self) -> list[Perturbation]:
        return [entry.to_perturbation() for entry in self.perturbation]


def load_profile(path_or_name: str | Path = "default") -> StreamProfile:
    """Read and validate a stream profile.

    Parameters
    ----------
    path_or_name
        A TOML path, or a profile name (``"default"`` -> ``streams/default.toml``).

    Raises
    ------
    ConfigError
        One line naming the file and the offending field.
    """
    path = resolve_named_toml(path_or_name, streams_dir(), "stream profile")
    return load_toml_model(StreamProfile, path, "stream profile")


def make_sinks(profile: StreamProfile, record_path: str | Path | None = None) -> list[Sink]:
    """The sinks a profile asks for (not opened yet): LSL, ZMQ, then the NWB recorder.

    Parameters
    ----------
    record_path
        Overrides ``[record] path``; recording is on when either is set.
    """
    from ldns_sim.sinks.lsl_sink import LslSink
    from ldns_sim.sinks.nwb_recorder import NwbRecorder
    from ldns_sim.sinks.nwb_writer import SessionInfo
    from ldns_sim.sinks.zmq_sink import ZmqSink

    sinks: list[Sink] = []
    if profile.lsl.enabled:
        sinks.append(LslSink(profile.lsl.name_prefix, profile.lsl.publish_events,
                             profile.lsl.publish_truth, profile.lsl.max_buffered_s,
                             profile.lsl.scope))
    if profile.zmq.enabled:
        sinks.append(ZmqSink(profile.zmq.endpoint, profile.zmq.bind_any, profile.zmq.sndhwm,
                             profile.zmq.meta_interval_s))
    path = record_path or profile.record.path
    if path:
        r = profile.record
        session = SessionInfo(session_description=r.session_description,
                              experimenter=r.experimenter, institution=r.institution,
                              lab=r.lab, subject_id=r.subject_id, species=r.species,
                              sex=r.sex, age=r.age)
        sinks.append(NwbRecorder(path, session, sync_interval_s=r.sync_interval_s,
                                 max_queue=r.max_queue))
    return sinks
