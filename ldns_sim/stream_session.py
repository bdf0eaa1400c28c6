"""Wires one live session: model or recording -> engine (LSL clock) -> sinks; source -> engine.

Used by ``ldns-sim stream`` and ``ldns-sim replay``; the CLI only parses arguments.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ldns_sim.core import ChunkGenerator, StreamMeta
from ldns_sim.errors import ConfigError
from ldns_sim.perturbations.schedule import Perturbation, PerturbationSchedule
from ldns_sim.perturbations.stage import perturb_sinks
from ldns_sim.realtime.clock import LslClock
from ldns_sim.realtime.condition import ConditionSource
from ldns_sim.realtime.engine import Engine
from ldns_sim.realtime.signals import install_signal_handlers
from ldns_sim.sinks.base import Sink
from ldns_sim.sinks.profile import StreamProfile, load_profile, make_sinks

#: Spawn key of the perturbations' RNG: seeded by ``--seed``, independent of the model's draws.
PERTURBATION_STREAM = 7

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SessionOptions:
    profile: str = "default"
    lsl: bool | None = None
    """None: as the profile says."""
    zmq_endpoint: str | None = None
    no_zmq: bool = False
    bind_any: bool = False
    record: str | None = None
    duration_s: float | None = None
    seed: int = 0
    lsl_scope: str | None = None
    lsl_prefix: str | None = None
    perturbations: tuple[Perturbation, ...] = ()
    """From the command line; the profile's ``[[perturbation]]`` tables are added to them."""


def _profile(opts: SessionOptions) -> StreamProfile:
    profile = load_profile(opts.profile)
    lsl = profile.lsl.model_copy(update={
        k: v for k, v in {"enabled": opts.lsl, "scope": opts.lsl_scope,
                          "name_prefix": opts.lsl_prefix}.items() if v is not None})
    zmq = profile.zmq.model_copy(update={"enabled": profile.zmq.enabled and not opts.no_zmq})
    if opts.zmq_endpoint:
        zmq = zmq.model_copy(update={"endpoint": opts.zmq_endpoint, "enabled": True,
                                     "bind_any": opts.bind_any or zmq.bind_any})
    return profile.model_copy(update={"lsl": lsl, "zmq": zmq})


def make_meta(generator: ChunkGenerator, model_name: str, sha256: str, seed: int,
              condition_source: str) -> StreamMeta:
    return StreamMeta(model_name=model_name, model_sha256=sha256, seed=seed,
                      bin_s=generator.bin_s, neuron_ids=tuple(generator.meta_neuron_ids),
                      n_latents=generator.n_latents,
                      condition_names=tuple(generator.condition_names),
                      condition_source=condition_source,
                      source_id=f"ldns-sim-{uuid.uuid4().hex[:12]}",
                      sampler=getattr(generator, "sampler_description", ""))


def engine_options(profile: StreamProfile) -> dict:
    """``Engine`` keyword arguments from a profile's ``[engine]`` table."""
    e = profile.engine
    return {"rt_priority": e.rt_priority or None, "freeze_gc": e.freeze_gc, "cpu": e.cpu,
            "gil_switch_s": None if e.gil_switch_ms is None else e.gil_switch_ms / 1e3,
            "lookahead_s": None if e.lookahead_ms is None else e.lookahead_ms / 1e3,
            "source_wait_s": e.source_wait_s, "emission": e.emission,
            "deadline_s": None if e.deadline_ms is None else e.deadline_ms / 1e3}


def run_session(generator: ChunkGenerator, source: ConditionSource, meta: StreamMeta,
                opts: SessionOptions, clock: LslClock,
                extra_sinks: tuple[Sink, ...] = (), warmup_chunks: int = 0) -> dict:
    """Open sinks, run the engine until the duration ends or SIGINT/SIGTERM; return stats.

    Perturbations (``opts.perturbations`` and the profile's) act on what every sink gets,
    ``extra_sinks`` included (``ldns_sim.perturbations.stage``); with ``--record`` the
    schedule is then added to the file as ``intervals/perturbations``.
    """
    profile = _profile(opts)
    perturbations = [*opts.perturbations, *profile.perturbations()]
    if opts.lsl is not False and profile.lsl.enabled:
        from ldns_sim.lsl_config import configure_lsl

        configure_lsl(profile.lsl.scope)
    sinks = make_sinks(profile, opts.record)
    opened: list[Sink] = []
    try:
        for sink in sinks:
            opened.append(sink.open(meta))
    except Exception:
        for sink in opened:
            sink.close()
        raise
    engine = Engine(generator, source,
                    _perturbed([*opened, *extra_sinks], perturbations, meta, opts.seed), clock,
                    duration_s=opts.duration_s, warmup_chunks=warmup_chunks,
                    **engine_options(profile))
    install_signal_handlers(engine)
    log.info("streaming %s: %d neurons, %.0f ms bins, condition %s; sinks: %s",
             meta.model_name, meta.n_neurons, meta.bin_s * 1e3, meta.condition_source,
             ", ".join(repr(s) for s in opened))
    stats = engine.run()
    record = opts.record or profile.record.path
    if record and perturbations:
        from ldns_sim.perturbations.nwb import add_perturbation_intervals

        add_perturbation_intervals(record, perturbations)
    return stats.as_dict()


def _perturbed(sinks: list[Sink], perturbations: Sequence[Perturbation], meta: StreamMeta,
               seed: int) -> list[Sink]:
    if not perturbations:
        return sinks
    log.info("perturbations: %s", ", ".join(p.spec() for p in perturbations))
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(PERTURBATION_STREAM,)))
    return perturb_sinks(sinks, PerturbationSchedule(perturbations, meta.n_neurons, meta.bin_s,
                                                     rng))


def check_record_path(path: str | None) -> None:
    if path is None:
        return
    p = Path(path)
    if p.suffix != ".nwb":
        raise ConfigError(f"--record {path}: expected a .nwb file name")
    if not p.parent.exists():
        raise ConfigError(f"--record {path}: folder {p.parent} does not exist")

