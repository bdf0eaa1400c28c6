"""The sink contract: where stamped chunks, markers and telemetry go.

Sinks never import torch and never block the generator for long: a sink that cannot keep
up drops (and counts) rather than stall the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ldns_sim.core import Chunk, StreamMeta, Telemetry


class Sink:
    """Base class with the lifecycle every sink follows: ``open`` -> writes -> ``close``.

    ``close`` is idempotent. Subclasses override the ``write_*`` methods they support.
    """

    name = "sink"

    def open(self, meta: StreamMeta) -> Sink:
        return self

    def write_chunk(self, chunk: Chunk) -> None:
        """Publish one stamped chunk (``chunk.bin_end_s`` is set)."""

    def write_marker(self, text: str, timestamp_s: float) -> None:
        """Publish one marker string stamped on the LSL clock."""

    def write_telemetry(self, telemetry: Telemetry) -> None:
        """Publish one chunk's telemetry."""

    def close(self) -> None:
        """Flush and release; safe to call twice."""

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class MemorySink(Sink):
    """Keeps everything in lists: for tests, notebooks and offline sampling."""

    name: str = "memory"
    meta: StreamMeta | None = None
    chunks: list[Chunk] = field(default_factory=list)
    markers: list[tuple[str, float]] = field(default_factory=list)
    telemetry: list[Telemetry] = field(default_factory=list)
    closed: bool = False

    def open(self, meta: StreamMeta) -> MemorySink:
        self.meta = meta
        return self

    def write_chunk(self, chunk: Chunk) -> None:
        self.chunks.append(chunk)

    def write_marker(self, text: str, timestamp_s: float) -> None:
        self.markers.append((text, timestamp_s))

    def write_telemetry(self, telemetry: Telemetry) -> None:
        self.telemetry.append(telemetry)

    def close(self) -> None:
        self.closed = True
