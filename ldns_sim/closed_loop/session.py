"""The closed loop, in process and bin by bin: user -> model -> perturbations -> decoder -> cursor.

One ``step()`` is one bin of ``bin_s`` seconds of session time (no sleeping: the loop runs as fast
as the model generates, and the same seed gives the same session)::

    intended = user.act()                      from what the screen showed reaction_s ago
    chunk    = generator.next_chunk(intended)  the model's spikes, driven by the intention
    counts   = schedule.apply(chunk.counts)    unit dropout, drift, gain, noise, shuffle
    decoded  = decoder.step(counts)            the decoder under test
    cursor   = clamp(cursor + decoded * bin_s) the decoded cursor
    events   = task.update(cursor, t_end)      hold, acquisition, timeout
    user.observe(cursor, target)               the screen at the bin's end

With ``decoder=None`` the cursor moves with the intended velocity itself (an ideal decoder):
the ceiling every real decoder is compared with, and a test of the task and the user.
Sinks (ZMQ, LSL, NWB) receive each bin as a stamped chunk whose counts are the perturbed counts
(what a rig would see) and whose condition is the intended velocity, plus every task and
perturbation event as a marker. A bin is published (at its end, with a clock) before the
decoder steps, so a decoder in a process of its own (``decoder_process.RemoteDecoder``) can
read it from the wire and reply within the same step.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ldns_sim.closed_loop.perturbations import Perturbation, PerturbationSchedule
from ldns_sim.closed_loop.scoring import Scores, score_trials
from ldns_sim.closed_loop.task import CenterOutTask, TaskConfig, TrialRecord
from ldns_sim.closed_loop.user import ScriptedUser, User, UserConfig
from ldns_sim.core import Chunk, ChunkGenerator
from ldns_sim.decoders.base import Decoder
from ldns_sim.errors import ConfigError
from ldns_sim.realtime.clock import Clock
from ldns_sim.sinks.base import Sink

log = logging.getLogger(__name__)


@dataclass
class SessionLog:
    """Everything a closed-loop session did, bin by bin, plus its events and trials.

    Array attributes have one row per bin: ``t_end_s`` (n,) session seconds; ``intended``,
    ``decoded``, ``cursor``, ``target`` (n, 2) in behaviour (velocity or position) units;
    ``trial`` (n,) the trial in progress at the bin's end (before any transition);
    ``inside`` (n,) cursor inside the cued target; ``counts`` (n, n_neurons) the perturbed
    counts the decoder read.
    """

    bin_s: float
    n_selectable: int
    t_end_s: list = field(default_factory=list)
    intended: list = field(default_factory=list)
    decoded: list = field(default_factory=list)
    cursor: list = field(default_factory=list)
    target: list = field(default_factory=list)
    trial: list = field(default_factory=list)
    inside: list = field(default_factory=list)
    counts: list = field(default_factory=list)
    events: list[tuple[float, str]] = field(default_factory=list)
    trials: list[TrialRecord] = field(default_factory=list)

    def arrays(self) -> dict[str, np.ndarray]:
        """The per-bin records as arrays (see the class docstring for shapes)."""
        return {"t_end_s": np.asarray(self.t_end_s, float),
                "intended": np.asarray(self.intended, float).reshape(-1, 2),
                "decoded": np.asarray(self.decoded, float).reshape(-1, 2),
                "cursor": np.asarray(self.cursor, float).reshape(-1, 2),
                "target": np.asarray(self.target, float).reshape(-1, 2),
                "trial": np.asarray(self.trial, int),
                "inside": np.asarray(self.inside, bool),
                "counts": np.asarray(self.counts, np.int16)}

    def scores(self, start_s: float = 0.0, end_s: float = np.inf) -> Scores:
        """Scores of the finished trials that started in ``[start_s, end_s)``."""
        return score_trials([t for t in self.trials if start_s <= t.start_s < end_s],
                            self.n_selectable)


class ClosedLoopSession:
    """A closed-loop centre-out session, stepped one bin at a time.

    Parameters
    ----------
    generator
        The spiking model (``bins_per_chunk`` must be 1), driven by 2-D velocity.
    decoder
        A fitted decoder (reset at the start), or ``None`` for the ideal decoder.
    task
        Task geometry and timing.
    user
        Scripted user parameters, or a ``User`` of one's own (e.g. a person at a window,
        ``closed_loop.human``).
    rng
        Seeds the task's target order, the user's noise and the perturbations.
    perturbations
        Scheduled perturbations (session seconds).
    sinks
        Opened sinks that get each bin and every marker (the session does not close them).
    t0_s
        Clock time of the session's start, for the sinks' stamps (bin k ends at
        ``t0_s + (k + 1) bin_s``).
    monotonic_offset_s
        ``monotonic - LSL clock``, for the sinks' second stamp.
    clock
        If given (an ``LslClock``), each bin is published at its end time on this clock,
        so the loop runs in real time; ``None``: as fast as the model generates.
    """

    def __init__(self, generator: ChunkGenerator, decoder: Decoder | None, task: TaskConfig,
                 user: UserConfig | User, rng: np.random.Generator,
                 perturbations: Sequence[Perturbation] = (), sinks: Sequence[Sink] = (),
                 t0_s: float = 0.0, monotonic_offset_s: float = 0.0,
                 clock: Clock | None = None) -> None:
        if generator.bins_per_chunk != 1:
            raise ConfigError(f"closed loop: the generator must emit one bin per chunk, got "
                              f"bins_per_chunk={generator.bins_per_chunk}")
        if len(generator.condition_names) != 2:
            raise ConfigError(f"closed loop: the model must be driven by a 2-D velocity, its "
                              f"condition is {generator.condition_names or 'nothing'}")
        n_neurons = len(generator.meta_neuron_ids)
        if decoder is not None and decoder.n_neurons != n_neurons:
            raise ConfigError(f"closed loop: decoder {decoder.kind} reads {decoder.n_neurons} "
                              f"channels, the model has {n_neurons}")
        seeds = rng.integers(0, 2**63 - 1, size=3)
        self.generator, self.decoder, self.sinks = generator, decoder, list(sinks)
        self.bin_s = float(generator.bin_s)
        self.task = CenterOutTask(task, np.random.default_rng(seeds[0]))
        self.user: User = (ScriptedUser(user, self.bin_s, np.random.default_rng(seeds[1]))
                           if isinstance(user, UserConfig) else user)
        self.schedule = PerturbationSchedule(perturbations, n_neurons, self.bin_s,
                                             np.random.default_rng(seeds[2]))
        self.t0_s, self.monotonic_offset_s = float(t0_s), float(monotonic_offset_s)
        self.clock = clock
        self.cursor = np.zeros(2)
        self.n_bins = 0
        self.log = SessionLog(self.bin_s, task.n_selectable)
        if decoder is not None:
            decoder.reset()
        self._emit(0.0, self.task.start_event())
        self.user.observe(self.cursor, self.task.target_xy, self.task.trial)

    @property
    def t_s(self) -> float:
        """Session time now (the end of the last bin), seconds."""
        return self.n_bins * self.bin_s

    def mark(self, text: str) -> None:
        """An event from outside the loop (e.g. the input device), stamped now."""
        self._emit(self.t_s, text)

    def _emit(self, t_s: float, text: str) -> None:
        self.log.events.append((t_s, text))
        for sink in self.sinks:
            sink.write_marker(text, self.t0_s + t_s)

    def step(self) -> dict:
        """Run one bin; returns that bin's record (``intended``, ``decoded``, ``cursor``, ...)."""
        t_start = self.t_s
        t_end = (self.n_bins + 1) * self.bin_s
        for text in self.schedule.events(t_start):
            self._emit(t_start, text)
        intended = self.user.act()
        chunk = self.generator.next_chunk(intended.reshape(1, 2))
        counts = self.schedule.apply(chunk.counts[0], chunk.rates_hz[0] * self.bin_s, t_start)
        if self.clock is not None:  # the bin's spikes exist at its end: publish, then decode
            self.clock.sleep_until(self.t0_s + t_end)
        self._publish(chunk, counts, intended, t_end)
        decoded = (intended.astype(float) if self.decoder is None
                   else self.decoder.step(counts))
        self.cursor = self.task.clamp(self.cursor + decoded * self.bin_s)
        record = {"t_end_s": t_end, "intended": intended, "decoded": decoded,
                  "cursor": self.cursor.copy(), "target": self.task.target_xy.copy(),
                  "trial": self.task.trial, "counts": counts}
        events = self.task.update(self.cursor, t_end)
        record["inside"] = self.task.inside or any(e.endswith(":success") for e in events)
        for key, value in record.items():
            getattr(self.log, key).append(value)
        for text in events:
            self._emit(t_end, text)
        self.n_bins += 1
        self.user.observe(self.cursor, self.task.target_xy, self.task.trial)
        return record

    def _publish(self, chunk: Chunk, counts: np.ndarray, intended: np.ndarray,
                 t_end: float) -> None:
        if not self.sinks:
            return
        out = Chunk(seq=self.n_bins, first_bin=self.n_bins,
                    counts=np.minimum(counts, np.iinfo(np.int16).max).astype(np.int16)[None],
                    rates_hz=chunk.rates_hz, latents=chunk.latents,
                    condition=intended.reshape(1, 2).astype(np.float32))
        stamp = np.array([self.t0_s + t_end])
        out = out.stamped(stamp, stamp + self.monotonic_offset_s)
        for sink in self.sinks:
            sink.write_chunk(out)

    def run(self, duration_s: float, progress=None) -> SessionLog:
        """Step until ``duration_s`` more seconds of session time have passed.

        ``progress``, if given, is called with the number of bins done after each bin.
        """
        n = int(round(duration_s / self.bin_s))
        for _ in range(n):
            self.step()
            if progress is not None:
                progress(1)
        self.log.trials = list(self.task.trials)
        return self.log

    def finish(self) -> SessionLog:
        """The log with the finished trials (after ``step`` calls driven from outside)."""
        for text in self.schedule.events(np.inf):
            self._emit(self.t_s, text)
        self.log.trials = list(self.task.trials)
        return self.log
