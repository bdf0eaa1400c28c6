"""Measuring whether a generator keeps real time: what ``ldns-sim bench`` reports.

``run_bench`` streams a generator through the real engine (zero condition, a sink that only
counts) and reports the engine's own statistics plus peak memory. ``run_scaling`` runs
``n_streams`` generators round robin in one process, as one engine chunk each, to report the
cost of one more stream.
"""

from __future__ import annotations

import logging
import resource
import sys
from collections.abc import Callable, Sequence

import numpy as np

from ldns_sim.core import Chunk, ChunkGenerator
from ldns_sim.errors import ConfigError
from ldns_sim.realtime.clock import Clock
from ldns_sim.realtime.condition import ConstantSource
from ldns_sim.realtime.engine import Engine
from ldns_sim.sinks.base import Sink

logger = logging.getLogger(__name__)


class CountingSink(Sink):
    """Counts what it receives and keeps nothing (a benchmark must not grow memory)."""

    name = "counting"

    def __init__(self) -> None:
        self.n_chunks = 0
        self.n_bins = 0
        self.n_markers = 0
        self.n_telemetry = 0

    def write_chunk(self, chunk: Chunk) -> None:
        self.n_chunks += 1
        self.n_bins += chunk.n_bins

    def write_marker(self, text: str, timestamp_s: float) -> None:
        self.n_markers += 1

    def write_telemetry(self, telemetry) -> None:
        self.n_telemetry += 1


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (``getrusage``)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # bytes on macOS, else KiB


def run_bench(generator_factory: Callable[[], ChunkGenerator], duration_s: float,
              clock: Clock, lookahead_s: float | None = None,
              warmup_chunks: int = 0) -> dict[str, float | int]:
    """Stream a fresh generator for ``duration_s`` seconds and report how it kept time.

    Parameters
    ----------
    generator_factory
        Builds the generator under test (called once).
    duration_s
        Stream length in seconds (whole chunks).
    clock
        ``LslClock()`` to measure; a ``ManualClock`` only checks the plumbing (all
        latencies are then 0).
    lookahead_s, warmup_chunks
        Passed to ``Engine``.

    Returns
    -------
    dict
        ``EngineStats`` fields (seconds, counts, real-time factor) plus ``bin_s``,
        ``bins_per_chunk``, ``n_neurons``, ``duration_s`` and ``peak_rss_mb``.
    """
    generator = generator_factory()
    source = ConstantSource.zeros(generator.condition_names)
    sink = CountingSink()
    engine = Engine(generator, source, [sink], clock, lookahead_s=lookahead_s,
                    duration_s=duration_s, warmup_chunks=warmup_chunks)
    stats = engine.run()
    if sink.n_chunks != stats.n_chunks:  # the sink is the ground truth of what went out
        raise RuntimeError(f"bench: sink saw {sink.n_chunks} chunks, engine {stats.n_chunks}")
    report = stats.as_dict()
    report.update(bin_s=generator.bin_s, bins_per_chunk=generator.bins_per_chunk,
                  n_neurons=len(generator.meta_neuron_ids), duration_s=duration_s,
                  peak_rss_mb=peak_rss_mb())
    return report


class RoundRobinGenerator(ChunkGenerator):
    """``n`` generators stepped in turn, one chunk each, their neurons side by side.

    All must share ``bin_s``, ``bins_per_chunk`` and ``condition_names``; each gets the same
    condition. The chunk's neurons are the streams' neurons concatenated.
    """

    def __init__(self, generators: Sequence[ChunkGenerator]) -> None:
        first = generators[0]
        for g in generators[1:]:
            if (g.bin_s, g.bins_per_chunk, tuple(g.condition_names)) != (
                    first.bin_s, first.bins_per_chunk, tuple(first.condition_names)):
                raise ConfigError("RoundRobinGenerator: generators differ in bin_s, "
                                  "bins_per_chunk or condition_names")
        self.generators = list(generators)
        self.bin_s, self.bins_per_chunk = first.bin_s, first.bins_per_chunk
        self.condition_names = tuple(first.condition_names)
        self.n_latents = sum(g.n_latents for g in generators)
        self.meta_neuron_ids = tuple(f"s{i}:{u}" for i, g in enumerate(generators)
                                     for u in g.meta_neuron_ids)

    def next_chunk(self, condition: np.ndarray) -> Chunk:
        chunks = [g.next_chunk(condition) for g in self.generators]
        return Chunk(seq=chunks[0].seq, first_bin=chunks[0].first_bin,
                     counts=np.concatenate([c.counts for c in chunks], axis=1),
                     rates_hz=np.concatenate([c.rates_hz for c in chunks], axis=1),
                     latents=np.concatenate([c.latents for c in chunks], axis=1),
                     condition=chunks[0].condition)


def run_scaling(generator_factory: Callable[[], ChunkGenerator], n_streams: int,
                duration_s: float, clock: Clock) -> dict[str, float | int]:
    """Run ``n_streams`` generators round robin in one engine and report cost per stream.

    Returns
    -------
    dict
        ``run_bench``'s report for the combined stream plus ``n_streams``,
        ``latency_p50_per_stream_s`` and ``max_streams_estimate`` (how many such streams
        would fit in one chunk period at the measured median cost; ``inf`` on a
        ``ManualClock``).
    """
    if n_streams < 1:
        raise ConfigError(f"run_scaling: n_streams must be >= 1, got {n_streams}")
    report = run_bench(lambda: RoundRobinGenerator([generator_factory()
                                                    for _ in range(n_streams)]),
                       duration_s, clock)
    per_stream_s = report["latency_p50_s"] / n_streams
    chunk_s = report["bin_s"] * report["bins_per_chunk"]
    report.update(n_streams=n_streams, latency_p50_per_stream_s=per_stream_s,
                  max_streams_estimate=chunk_s / per_stream_s if per_stream_s > 0
                  else float("inf"))
    return report
