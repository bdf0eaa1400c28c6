"""The real-time engine: one clock, one schedule, chunks out on time to every sink.

Schedule. Bin ``b`` (0, 1, 2, ... since the stream started at ``t0``) covers
``[t0 + b * bin_s, t0 + (b + 1) * bin_s)`` and is stamped with its end,
``t0 + (b + 1) * bin_s``. Every target is computed from ``t0`` and the bin index, never by
adding periods, so the schedule cannot drift however long the stream runs.

Per chunk of ``n = bins_per_chunk`` bins ending at ``t_end``:

1. condition: row ``i`` is the source's newest sample, read ``L`` before the bin's end, at
   ``bin_end_i - L``, where ``L`` is the look-ahead (or as soon as the engine is free, if that
   time has passed). Every bin is driven by behaviour from before its end (causal) and all
   bins by behaviour of the same age; the last row is read just before generation starts;
2. generate at ``t_end - L``: ``generator.next_chunk(condition)``;
3. wait until ``t_end``, stamp every bin with its end (LSL clock and monotonic clock), hand
   the chunk to every sink, then its ``Telemetry``. The monotonic stamp is the LSL stamp plus
   the clocks' offset, measured at ``t0`` and every ``OFFSET_INTERVAL_S`` (both stamps stay
   exactly regular in between; on Linux both clocks are ``CLOCK_MONOTONIC``).

Look-ahead ``L`` (the latency budget). A fixed ``lookahead_s`` is used as given. By default
it adapts: ``L = max(floor, 1.5 * p95 of the newest 256 leads)``, where a chunk's lead is the
time from its scheduled generation start to the end of generation: the generation latency
plus the OS's delay in waking the engine (which dominates on a loaded machine at normal
priority). The floor is ``min(bin_s / 4, 6 ms)`` when the loop's thread runs real-time
(``rt_priority`` granted), else ``bin_s / 4``. Warm-up latencies seed it when
``warmup_chunks > 0``. ``L`` is never more than one chunk (``n * bin_s``), because generation
of a chunk starts only once the previous one is out. Each bin's condition is ``L`` old at the
bin's end, so a small ``L`` is a fresh condition: a behaviour sample reaches the spikes
within one bin (waiting for the next read) plus ``L``; ``Telemetry.condition_age_s`` reports
the age of the last row's sample at emission. The floor is a trade measured in
``docs/benchmarks.md`` (2.1, 2.2): with the engine thread real-time, leads above 5 ms were
rare (0 to 5 per thousand chunks on a shared 2-core machine), at normal priority a quarter
of them were; in two quiet 10-minute streams the longest generations were 5.5 and 4.9 ms, so
a 5 ms floor left 3 and 1 chunks late, which 6 ms covers (later runs at 6 ms still had 0-2:
the VM stops a CPU for 5 to 40 ms a few times in 10 minutes, seen by a probe thread beside the
stream, ``scripts/wake_probe.py``); and every millisecond of look-ahead is a millisecond of
condition-to-spikes latency (at most one bin plus ``L``).

Timing aids (both on in ``ldns-sim stream``, see the stream profile's ``[engine]``):
``rt_priority`` runs the loop's thread ``SCHED_FIFO`` (Linux, when allowed), so its wake-ups
preempt other processes instead of waiting out their time slices, and asks the condition
source to run its input thread (an LSL or ZMQ receive) one priority below (beside a stream the
LSL hop's p99 was 4.2 ms with that thread at normal priority, 0.7 ms at 9; docs/benchmarks.md
2.1); ``freeze_gc`` moves every object alive at the start out of the garbage collector's
reach (``gc.freeze``), so a full collection during the stream walks only the stream's own
objects, not torch's and the model's hundreds of thousands (~100 ms here).

``gil_switch_s`` shortens the interval after which a thread waiting for the GIL asks the
holder to let go (``sys.setswitchinterval``; Python's default is 5 ms): a helper thread of the
process running Python code (a sink's writer, a condition reader) otherwise delays the engine's
wake-up by up to 5 ms, nearly the whole look-ahead.

Immediate emission (``emission="immediate"``). The schedule above hands each chunk out at its
end, so a behaviour sample reaches the spikes within one bin plus ``L``, and ``L`` has to
cover the slowest generations and wake-ups. Immediate emission trades the regular hand-out
for latency, as an acquisition system does: each bin's condition is read at the bin's end
(``L = 0``), the chunk is generated right after its last bin ended and handed out the moment
it is done, still stamped with its bins' ends (the stamps stay exactly regular; they are
``g`` in the past when the chunk arrives, ``g`` the generation time). A sample then reaches
the spikes within one chunk (one bin, for one-bin chunks) plus ``g`` and the OS wake-up; the
hand-out time varies with ``g`` (the emission jitter, push time - bin end, is ``g`` plus the
wake-up; the interval jitter, how far the time between hand-outs is from one chunk, is the
change in it). A chunk is late when it is handed out more than ``deadline_s`` after its end
(default: a quarter of the chunk, the generation budget); nothing waits for the deadline, it
only labels the chunk. A chunk being generated when a stop is asked is still handed out.
``ldns-sim stream`` uses immediate emission by default (``[engine] emission``); ``Engine``
itself defaults to the scheduled one.

Late chunks. A chunk whose generation ends after ``t_end`` (immediate emission: handed out
more than ``deadline_s`` after ``t_end``) is emitted at once, counted and still stamped at its
target times (the stream stays regular and gap-free for LSL consumers; its timestamps tell the
truth about which bin is which). The engine never skips bins to catch up;
``Telemetry.queue_depth`` is the backlog, the number of whole chunks already due when a chunk
is handed out (0 when on time).

Failure. A sink that raises is logged once, closed and dropped; the stream goes on. A
condition source that raises is logged once and its last value held (``ok=False``). A
generator that raises stops the stream; ``run`` / ``join`` re-raise its error. A generator
that raises ``StopIteration`` (a recording played once) ends the stream cleanly.
"""

from __future__ import annotations

import gc
import itertools
import logging
import math
import os
import sys
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from ldns_sim.core import Chunk, ChunkGenerator, StreamMeta, Telemetry
from ldns_sim.errors import ConfigError
from ldns_sim.realtime._guarded_source import GuardedSource
from ldns_sim.realtime.clock import Clock
from ldns_sim.realtime.condition import ConditionSource
from ldns_sim.realtime.priority import raise_to_fifo
from ldns_sim.realtime.stats import EmissionLog, EngineStats
from ldns_sim.sinks.base import Sink

logger = logging.getLogger(__name__)

#: Longest single sleep, seconds: bounds how long ``stop()`` waits for the loop to notice.
MAX_SLEEP_S = 0.1
#: Adaptive look-ahead: newest leads considered, and headroom over their quantile below.
LOOKAHEAD_WINDOW = 256
LOOKAHEAD_HEADROOM = 1.5
#: Adaptive look-ahead: the quantile of the newest leads it covers (a few stalls in the window,
#: which no look-ahead short of a bin would cover, do not push it up for the whole window).
LOOKAHEAD_QUANTILE = 0.95
#: Adaptive look-ahead floor with a real-time engine thread (seconds; a quarter bin if less).
#: At normal priority the floor is a quarter bin: OS wake-up delays of several ms are common.
LOOKAHEAD_FLOOR_RT_S = 0.006
#: Emission schedules (module docstring): hand out at the chunk's end, or as soon as generated.
EMISSIONS = ("scheduled", "immediate")
#: Immediate emission: default deadline, as a fraction of a chunk, after which a chunk is late.
IMMEDIATE_DEADLINE_CHUNKS = 0.25
#: The wait for a condition source's first sample checks for a stop request this often, s.
SOURCE_WAIT_SLICE_S = 0.05
#: How often the offset between the LSL and the monotonic clock is measured again, seconds.
OFFSET_INTERVAL_S = 10.0
#: Engines streaming with the GC frozen (the freeze is process-wide: the last one lifts it).
_GC_FREEZERS = 0
_GC_LOCK = threading.Lock()
#: Engines streaming with a shortened GIL switch interval, and the interval found before the
#: first of them (process-wide as well: the last one restores it).
_SWITCH_USERS = 0
_SWITCH_BEFORE_S: float | None = None


class Engine:
    """Drives a ``ChunkGenerator`` on the clock and fans its stamped chunks out to sinks.

    Parameters
    ----------
    generator
        Makes each chunk from a ``(bins_per_chunk, n_condition)`` float32 condition.
    source
        The live condition; not started (the engine starts and stops it). Its
        ``n_channels`` must match ``len(generator.condition_names)``.
    sinks
        Outputs, opened already unless ``meta`` is given. The engine owns them from here on
        and closes each exactly once.
    clock
        ``LslClock()`` for real streams, ``ManualClock()`` in tests.
    lookahead_s
        Fixed look-ahead in seconds, ``0 <= lookahead_s <= bins_per_chunk * bin_s``;
        ``None`` adapts it to the measured generation time (module docstring).
    duration_s
        Stop after the whole chunks that fit in this many seconds; ``None``: no limit.
    max_chunks
        Stop after this many chunks; ``None``: no limit.
    meta
        If given, ``start``/``run`` open every sink with it.
    warmup_chunks
        Chunks generated (and discarded) before the stream starts, to measure generation
        time for the first look-ahead (scheduled emission) and so that the first streamed
        chunk does not pay for torch's first calls. They advance the generator's state.
    stats_capacity
        Newest chunks the latency/jitter percentiles of ``stats()`` cover.
    freeze_gc
        ``gc.freeze()`` after the warm-up, lifted when the stream ends (the last of several
        engines streaming at once lifts it): see the module docstring.
    rt_priority
        Run the loop's thread ``SCHED_FIFO`` at this priority (1-99), restored when the loop
        ends; ``None``: normal priority. Refused (no permission, not Linux): a warning, and
        the stream runs at normal priority. The source is asked to run its input thread one
        below (``ConditionSource.set_worker_priority``; 2 or more only).
    gil_switch_s
        While streaming, the GIL switch interval (``sys.setswitchinterval``) if shorter than
        the process's, restored when the last such engine ends; ``None``: left alone.
    cpu
        Pin the loop's thread to this CPU (``os.sched_setaffinity``), restored when the loop
        ends; ``None``: the OS places it (docs/benchmarks.md 2.1). Refused (no such CPU, not
        Linux): a warning, unpinned.
    source_wait_s
        After starting the source, wait up to this long for its first sample before the
        first bin (``ConditionSource.wait_for_data``), so a stream driven by a rig does not
        open with bins on a zero condition while its inlet connects. None by then: a warning,
        and the stream starts (those bins say ``ok=False``). 0: start at once.
    emission
        ``"scheduled"``: generate ``L`` ahead and hand each chunk out at its end;
        ``"immediate"``: read each bin's condition at its end, generate after the chunk's end
        and hand it out when done (module docstring). Immediate takes no ``lookahead_s``.
    deadline_s
        Immediate emission only: a chunk handed out more than this after its end is late;
        ``None``: a quarter of a chunk.

    Notes
    -----
    Latency budget per chunk, scheduled emission (immediate: each bin's condition is read at
    its end and the chunk handed out when generated, late past ``deadline_s``; the module
    docstring): each bin's condition is read ``L`` before the bin ends,
    generation starts ``L`` before the chunk ends and must finish (OS wake-up included)
    within ``L``; the hand-off to the sinks is within the clock's wake-up precision of the
    chunk's end (LslClock: tens of microseconds typically, milliseconds on a saturated
    machine; ``scripts/bench_engine.py`` measures it). Sinks must not block.
    """

    def __init__(self, generator: ChunkGenerator, source: ConditionSource,
                 sinks: Sequence[Sink], clock: Clock, lookahead_s: float | None = None,
                 duration_s: float | None = None, max_chunks: int | None = None, *,
                 meta: StreamMeta | None = None, warmup_chunks: int = 0,
                 stats_capacity: int = 2**20, freeze_gc: bool = True,
                 rt_priority: int | None = None, gil_switch_s: float | None = None,
                 cpu: int | None = None, source_wait_s: float = 0.0,
                 emission: str = "scheduled", deadline_s: float | None = None) -> None:
        self.generator, self.source, self.clock, self.meta = generator, source, clock, meta
        self.bin_s = float(generator.bin_s)
        self.bins_per_chunk = int(generator.bins_per_chunk)
        self.chunk_s = self.bins_per_chunk * self.bin_s
        self._check_args(lookahead_s, duration_s, max_chunks, warmup_chunks)
        self.immediate, self.deadline_s = self._check_emission(emission, deadline_s,
                                                               lookahead_s)
        if rt_priority is not None and not 1 <= rt_priority <= 99:
            raise ConfigError(f"rt_priority must be between 1 and 99, got {rt_priority}")
        self.rt_priority = rt_priority
        if cpu is not None and cpu < 0:
            raise ConfigError(f"cpu must be a CPU number (0 or more), got {cpu}")
        self.cpu = cpu
        if not 0 <= source_wait_s < math.inf:
            raise ConfigError(f"source_wait_s must be 0 or more seconds, got {source_wait_s}")
        self.source_wait_s = float(source_wait_s)
        self.cpu_pinned = False
        """``True`` once the loop's thread runs on ``cpu`` only."""
        self._old_affinity: set[int] | None = None
        self.rt_granted = False
        """``True`` once the loop's thread got ``SCHED_FIFO`` (it keeps it until the end)."""
        self._old_policy = None
        self.freeze_gc = bool(freeze_gc)
        self._gc_frozen = False
        if gil_switch_s is not None and not 0 < gil_switch_s <= 0.1:
            raise ConfigError(f"gil_switch_s must be in (0, 0.1] s, got {gil_switch_s}")
        self.gil_switch_s = gil_switch_s
        self._switch_set = False
        self.fixed_lookahead_s = lookahead_s
        self.warmup_chunks = int(warmup_chunks)
        self.n_chunks_limit = _chunk_limit(duration_s, max_chunks, self.chunk_s)
        self._sinks: list[Sink] = list(sinks)
        self._log = EmissionLog(self.bin_s, stats_capacity)
        self._lead_s: deque[float] = deque(maxlen=LOOKAHEAD_WINDOW)
        self._lookahead_s = self._next_lookahead()
        self._stop = threading.Event()
        self._done = threading.Event()
        self._finish_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop_ident: int | None = None
        self._state = "idle"
        self._error: BaseException | None = None
        self._reader = GuardedSource(source)
        self._source_started = False
        self.t0_s = float("nan")
        self._mono_offset_s = 0.0
        self._offset_every = max(1, math.ceil(OFFSET_INTERVAL_S / self.chunk_s))
        self.n_emitted = 0

    def _check_args(self, lookahead_s, duration_s, max_chunks, warmup_chunks) -> None:
        name = type(self.generator).__name__
        if not (self.bin_s > 0 and math.isfinite(self.bin_s)) or self.bins_per_chunk < 1:
            raise ConfigError(f"{name}: needs bin_s > 0 and bins_per_chunk >= 1, got "
                              f"bin_s={self.bin_s}, bins_per_chunk={self.bins_per_chunk}")
        n_cond = len(self.generator.condition_names)
        if self.source.n_channels != n_cond:
            raise ConfigError(f"condition source {self.source.name!r} has "
                              f"{self.source.n_channels} channels {self.source.channel_names}; "
                              f"{name} expects {n_cond}: {self.generator.condition_names}")
        if lookahead_s is not None and not 0 <= lookahead_s <= self.chunk_s:
            raise ConfigError(f"lookahead_s must be between 0 and one chunk "
                              f"({self.chunk_s} s), got {lookahead_s}")
        if duration_s is not None and not duration_s >= self.chunk_s:
            raise ConfigError(f"duration_s must be at least one chunk ({self.chunk_s} s), "
                              f"got {duration_s}")
        if max_chunks is not None and max_chunks < 1:
            raise ConfigError(f"max_chunks must be >= 1, got {max_chunks}")
        if warmup_chunks < 0:
            raise ConfigError(f"warmup_chunks must be >= 0, got {warmup_chunks}")
        if self.meta is not None and (self.meta.bin_s != self.bin_s or
                                      self.meta.n_neurons != len(self.generator.meta_neuron_ids)):
            raise ConfigError(f"stream meta (bin_s={self.meta.bin_s}, "
                              f"{self.meta.n_neurons} neurons) does not match {name} "
                              f"(bin_s={self.bin_s}, {len(self.generator.meta_neuron_ids)})")

    def _check_emission(self, emission: str, deadline_s: float | None,
                        lookahead_s: float | None) -> tuple[bool, float]:
        """``(immediate, deadline_s)`` from the arguments, or a ``ConfigError``."""
        if emission not in EMISSIONS:
            raise ConfigError(f"emission must be one of {EMISSIONS}, got {emission!r}")
        immediate = emission == "immediate"
        if not immediate:
            if deadline_s is not None:
                raise ConfigError("deadline_s applies to immediate emission only; scheduled "
                                  "emission is late when a chunk is not ready at its end")
            return False, 0.0
        if lookahead_s:
            raise ConfigError(f"immediate emission reads each bin's condition at its end; "
                              f"a look-ahead ({lookahead_s} s) does not apply")
        if deadline_s is None:
            return True, IMMEDIATE_DEADLINE_CHUNKS * self.chunk_s
        if not 0 < deadline_s < math.inf:
            raise ConfigError(f"deadline_s must be more than 0 s, got {deadline_s}")
        return True, float(deadline_s)

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> Engine:
        """Start streaming in a background thread; errors starting the source/sinks raise here."""
        self._begin()
        self._thread = threading.Thread(target=self._run_loop, name="ldns-engine", daemon=True)
        self._thread.start()
        return self

    def run(self) -> EngineStats:
        """Stream in the caller's thread until the duration/chunk limit or ``stop()``."""
        self._begin()
        self._run_loop()
        if self._error is not None:
            raise self._error
        return self.stats()

    def stop(self) -> None:
        """Stop streaming, write the ``stop`` marker, stop the source, close the sinks.

        Idempotent. From another thread it waits for the loop to finish; from the loop's own
        thread (a sink, a signal handler while ``run`` is running) it only asks it to stop.
        """
        self._stop.set()
        if self._state == "idle":
            self._finish()
        elif threading.get_ident() != self._loop_ident:
            self._done.wait()

    def request_stop(self) -> None:
        """Ask the loop to stop at its next wake-up and return at once (signal-safe)."""
        self._stop.set()

    def join(self, timeout_s: float | None = None) -> bool:
        """Wait for the stream to end; ``True`` if it has. Re-raises the loop's error."""
        finished = self._done.wait(timeout_s) if self._state != "idle" else True
        if finished and self._error is not None:
            raise self._error
        return finished

    @property
    def stop_requested(self) -> bool:
        """``True`` once ``stop()`` or ``request_stop()`` was called."""
        return self._stop.is_set()

    @property
    def state(self) -> str:
        """``"idle"``, ``"on"``, ``"stopped"`` or ``"failed"``."""
        return self._state

    @property
    def sinks(self) -> tuple[Sink, ...]:
        """The sinks still attached (a failed sink is dropped)."""
        return tuple(self._sinks)

    def stats(self) -> EngineStats:
        """Emission statistics so far (safe to call while streaming)."""
        return self._log.snapshot(self._lookahead_s)

    def __enter__(self) -> Engine:
        return self.start() if self._state == "idle" else self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return (f"<Engine | {self._state.upper()} | {len(self._sinks)} sinks | "
                f"{self.bins_per_chunk}x{self.bin_s * 1e3:g} ms bins | "
                f"{self.n_emitted} chunks | {self._log.n_late} late>")

    def _begin(self) -> None:
        if self._state != "idle":
            raise RuntimeError(f"{self!r} has already run; build a new Engine")
        self._state = "on"
        try:
            for sink in list(self._sinks) if self.meta is not None else []:
                sink.open(self.meta)
            self._warm_up()
            self._freeze_gc()
            self._shorten_gil_switch()
            if self.rt_priority is not None and self.rt_priority > 1:
                self.source.set_worker_priority(self.rt_priority - 1)  # below the loop's
            self.source.start()
            self._source_started = True
            self._wait_for_source()
            self.t0_s = self.clock.now()
            self._mono_offset_s = self._measure_monotonic_offset()
        except BaseException:
            self._state = "failed"
            self._finish(started=False)
            raise
        self._fan_out("write_marker", "start", self.t0_s)
        timing = (f"immediate emission, deadline {self.deadline_s * 1e3:.2f} ms" if self.immediate
                  else f"look-ahead {self._lookahead_s * 1e3:.2f} ms")
        logger.info("streaming %r from t0=%.6f s, %s", self, self.t0_s, timing)

    def _wait_for_source(self) -> None:
        """Wait for the source's first sample in slices, so ``stop()`` and signals get through."""
        n_slices = math.ceil(self.source_wait_s / SOURCE_WAIT_SLICE_S)
        for _ in range(n_slices):
            if self._stop.is_set() or self.source.wait_for_data(
                    min(SOURCE_WAIT_SLICE_S, self.source_wait_s)):
                return
        if n_slices:
            logger.warning("condition source %r: no sample within %g s; streaming starts, on a "
                           "zero condition until one arrives", self.source.name,
                           self.source_wait_s)

    def _warm_up(self) -> None:
        zeros = np.zeros((self.bins_per_chunk, self.source.n_channels), dtype=np.float32)
        for _ in range(self.warmup_chunks):
            t_start_s = self.clock.now()
            self.generator.next_chunk(zeros)
            self._lead_s.append(self.clock.now() - t_start_s)
        self._lookahead_s = self._next_lookahead()

    def _freeze_gc(self) -> None:
        """Collect once, then move every object alive to the GC's permanent generation.

        Everything built before the stream (torch, the model, the sinks) is a few hundred
        thousand objects; a full collection walks them all (~100 ms here), long enough to make
        a chunk late whenever the allocations of the sinks trigger one. Frozen, they are
        skipped: collections during the stream walk only what the stream itself allocated.
        """
        if self.freeze_gc and not self._gc_frozen:
            with _GC_LOCK:
                global _GC_FREEZERS
                if _GC_FREEZERS == 0:
                    gc.collect()
                    gc.freeze()
                _GC_FREEZERS += 1
            self._gc_frozen = True

    def _shorten_gil_switch(self) -> None:
        if self.gil_switch_s is None or self._switch_set:
            return
        global _SWITCH_USERS, _SWITCH_BEFORE_S
        with _GC_LOCK:
            if _SWITCH_USERS == 0:
                _SWITCH_BEFORE_S = sys.getswitchinterval()
            _SWITCH_USERS += 1
            sys.setswitchinterval(min(self.gil_switch_s, sys.getswitchinterval()))
        self._switch_set = True

    def _restore_gil_switch(self) -> None:
        if not self._switch_set:
            return
        global _SWITCH_USERS
        with _GC_LOCK:
            _SWITCH_USERS -= 1
            if _SWITCH_USERS == 0 and _SWITCH_BEFORE_S is not None:
                sys.setswitchinterval(_SWITCH_BEFORE_S)
        self._switch_set = False

    def _unfreeze_gc(self) -> None:
        if self._gc_frozen:
            with _GC_LOCK:
                global _GC_FREEZERS
                _GC_FREEZERS -= 1
                if _GC_FREEZERS == 0:
                    gc.unfreeze()
            self._gc_frozen = False

    def _raise_priority(self) -> None:
        """Run this (the loop's) thread ``SCHED_FIFO`` at ``rt_priority``, if asked and allowed.

        A real-time thread preempts every normal one the moment its sleep ends, so neither
        the wake-up before generation nor the one before emission waits for the scheduler to
        finish another process's time slice (milliseconds to tens of milliseconds on a busy
        machine). Linux only; needs root, CAP_SYS_NICE or an rtprio limit (``ulimit -r``).
        Refused: logged, and the stream runs at normal priority.
        """
        if self.rt_priority is None:
            return
        old = raise_to_fifo(self.rt_priority, "engine thread", logger)
        if old is not None:
            self._old_policy = old
            self.rt_granted = True

    def _pin_cpu(self) -> None:
        """Run this (the loop's) thread on ``cpu`` only, if asked and possible."""
        if self.cpu is None:
            return
        try:
            old = os.sched_getaffinity(0)
            os.sched_setaffinity(0, {self.cpu})
        except (AttributeError, OSError) as error:
            logger.warning("engine thread not pinned: CPU %d refused (%s)", self.cpu, error)
            return
        self._old_affinity = old
        self.cpu_pinned = True
        logger.info("engine thread pinned to CPU %d", self.cpu)

    def _unpin_cpu(self) -> None:
        if self._old_affinity is not None:
            old = self._old_affinity
            _call_logged(lambda: os.sched_setaffinity(0, old),
                         "restoring the engine thread's CPU affinity")
            self._old_affinity = None

    def _restore_priority(self) -> None:
        if self._old_policy is not None:
            _call_logged(lambda: os.sched_setscheduler(0, *self._old_policy),
                         "restoring the engine thread's scheduling policy")
            self._old_policy = None

    def _run_loop(self) -> None:
        self._loop_ident = threading.get_ident()
        try:
            self._raise_priority()
            self._pin_cpu()
            self._lookahead_s = self._next_lookahead()  # the floor depends on the priority
            self._loop()
        except BaseException as error:  # noqa: BLE001 - kept, logged and re-raised by run/join
            self._error = error
            logger.error("stream stopped by %r", error)
            self._fan_out("write_marker", f"error:{type(error).__name__}", self.clock.now())
        finally:
            self._unpin_cpu()
            self._restore_priority()
            self._finish()

    def _finish(self, started: bool = True) -> None:
        with self._finish_lock:
            if self._done.is_set():
                return
            if self._state == "on":
                self._write_source_events()
                self._fan_out("write_marker", "stop", self.clock.now())
            if self._source_started:  # also after a failed start, e.g. Ctrl-C in the wait
                _call_logged(self.source.stop, f"condition source {self.source.name!r} stop")
                self._source_started = False
            for sink in self._sinks:
                _call_logged(sink.close, f"sink {sink.name!r} close")
            self._sinks.clear()
            self._unfreeze_gc()
            self._restore_gil_switch()
            self._state = "failed" if self._error is not None or not started else "stopped"
            self._done.set()

    # ----------------------------------------------------------------- the loop
    def _loop(self) -> None:
        n = self.bins_per_chunk
        for k in range(self.n_chunks_limit) if self.n_chunks_limit else itertools.count():
            t_free_s = self.clock.now()
            first_bin = k * n
            bin_end_s = self.t0_s + (first_bin + 1 + np.arange(n)) * self.bin_s  # (n,)
            t_end_s = float(bin_end_s[-1])
            condition = self._read_condition(bin_end_s - self._lookahead_s)  # L = 0: immediate
            if condition is None:
                return
            self._write_source_events()
            t_start_s = self.clock.now()
            try:
                chunk = self.generator.next_chunk(condition)
            except StopIteration:
                logger.info("%s has no more chunks", type(self.generator).__name__)
                self._fan_out("write_marker", "end_of_source", self.clock.now())
                return
            t_done_s = self.clock.now()
            # lead needed: from the scheduled start (or when the engine got free) to done
            lead_s = t_done_s - max(t_end_s - self._lookahead_s, t_free_s)
            self._lead_s.append(lead_s)
            self._check_chunk(chunk)
            # immediate: handed out now, even if stop was asked while generating (it is done);
            # late is judged in _emit on the hand-out time
            if not (self.immediate or self._wait_until(t_end_s)):
                return
            self._emit(chunk, k, bin_end_s, t_done_s - t_start_s,
                       late=not self.immediate and t_done_s > t_end_s, lead_s=lead_s)
            self._lookahead_s = self._next_lookahead()

    def _read_condition(self, read_at_s: np.ndarray) -> np.ndarray | None:
        """``(n, n_cond)`` float32 rows read at ``read_at_s`` (nondecreasing); None if stopped."""
        rows = np.empty((len(read_at_s), self.source.n_channels), dtype=np.float32)
        for i, t_s in enumerate(read_at_s):
            if i > 0 and t_s == read_at_s[i - 1]:
                rows[i] = rows[i - 1]
                continue
            if not self._wait_until(float(t_s)):
                return None
            rows[i] = self._reader.read(self.clock.now()).value
        return rows

    def _wait_until(self, t_s: float) -> bool:
        """Sleep until ``t_s`` in slices of at most ``MAX_SLEEP_S``; False if stop was asked."""
        while not self._stop.is_set():
            now_s = self.clock.now()
            if now_s >= t_s:
                return True
            self.clock.sleep_until(min(t_s, now_s + MAX_SLEEP_S))
        return False

    def _emit(self, chunk: Chunk, seq: int, bin_end_s: np.ndarray, latency_s: float,
              late: bool, lead_s: float) -> None:
        t_end_s = float(bin_end_s[-1])
        pushed_s = self.clock.now()
        if self.immediate:
            late = pushed_s - t_end_s > self.deadline_s
        if seq % self._offset_every == 0 and seq > 0:
            self._mono_offset_s = self._measure_monotonic_offset()
        mono_offset_s = self._mono_offset_s
        stamped = replace(chunk, seq=seq, first_bin=seq * self.bins_per_chunk,
                          bin_end_s=bin_end_s, bin_end_monotonic_s=bin_end_s + mono_offset_s)
        self._fan_out("write_chunk", stamped)
        self._log.record(latency_s, pushed_s - t_end_s, late, chunk.n_bins, lead_s)
        if late and _is_power_of_ten(self._log.n_late):
            budget = (f"deadline {self.deadline_s * 1e3:.1f} ms after its end" if self.immediate
                      else f"look-ahead {self._lookahead_s * 1e3:.1f} ms")
            logger.warning("%d chunk(s) late so far (chunk %d: done %.1f ms after its "
                           "scheduled start, generation %.1f ms, %s)", self._log.n_late, seq,
                           self._lead_s[-1] * 1e3, latency_s * 1e3, budget)
        last = self._reader.last
        self._fan_out("write_telemetry", Telemetry(
            seq=seq, generation_latency_s=latency_s,
            queue_depth=max(0, int((pushed_s - t_end_s) // self.chunk_s)),
            n_late_total=self._log.n_late, late=late, emitted_at_s=pushed_s,
            condition_age_s=pushed_s - last.sample_time_s if last else math.nan))
        self.n_emitted = seq + 1

    def _measure_monotonic_offset(self) -> float:
        """``monotonic() - now()`` in seconds, from the tightest of 5 bracketed reads."""
        best_width_s, best_offset_s = math.inf, 0.0
        for _ in range(5):
            before_s = self.clock.monotonic()
            now_s = self.clock.now()
            after_s = self.clock.monotonic()
            if after_s - before_s < best_width_s:
                best_width_s, best_offset_s = after_s - before_s, (before_s + after_s) / 2 - now_s
        return best_offset_s

    def _check_chunk(self, chunk: Chunk) -> None:
        n, n_neurons = self.bins_per_chunk, len(self.generator.meta_neuron_ids)
        shapes = {"counts": chunk.counts.shape, "rates_hz": chunk.rates_hz.shape,
                  "latents": chunk.latents.shape, "condition": chunk.condition.shape}
        if shapes["counts"] != (n, n_neurons) or any(s[0] != n for s in shapes.values()):
            raise RuntimeError(f"{type(self.generator).__name__}.next_chunk returned shapes "
                               f"{shapes}; expected {n} bins of {n_neurons} neurons")

    def _next_lookahead(self) -> float:
        if self.immediate:
            return 0.0
        if self.fixed_lookahead_s is not None:
            return float(self.fixed_lookahead_s)
        budget_s = (LOOKAHEAD_HEADROOM * np.quantile(self._lead_s, LOOKAHEAD_QUANTILE)
                    if self._lead_s else 0.0)
        floor_s = min(self.bin_s / 4, LOOKAHEAD_FLOOR_RT_S) if self.rt_granted else self.bin_s / 4
        return min(self.chunk_s, max(floor_s, budget_s))

    def _write_source_events(self) -> None:
        for text in self._reader.drain_events():
            self._fan_out("write_marker", text, self.clock.now())

    def _fan_out(self, method: str, *args) -> None:
        for sink in list(self._sinks):
            try:
                getattr(sink, method)(*args)
            except Exception:
                logger.exception("sink %r failed in %s; closing and dropping it, the stream "
                                 "goes on", sink.name, method)
                self._sinks.remove(sink)
                _call_logged(sink.close, f"sink {sink.name!r} close")


def _chunk_limit(duration_s: float | None, max_chunks: int | None, chunk_s: float) -> int:
    """Chunks to emit (0: no limit): the whole chunks in ``duration_s``, at most ``max_chunks``."""
    limits = [] if max_chunks is None else [int(max_chunks)]
    if duration_s is not None:
        limits.append(int(math.floor(duration_s / chunk_s + 1e-9)))
    return min(limits) if limits else 0


def _is_power_of_ten(n: int) -> bool:
    return n > 0 and 10 ** round(math.log10(n)) == n


def _call_logged(fn, what: str) -> None:
    try:
        fn()
    except Exception:
        logger.exception("%s failed", what)
