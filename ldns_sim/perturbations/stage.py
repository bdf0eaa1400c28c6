"""Perturbations on a live stream: every sink gets the same perturbed chunks and the markers.

``ldns-sim stream`` runs the engine unchanged (it knows no perturbations) and wraps each sink
in a ``PerturbedSink``. All wrappers share one ``PerturbationStage``, which perturbs each
stamped chunk once (the first wrapper to see it does the work; the others get the cached
result), so LSL, ZMQ and the NWB recorder carry identical counts, and a sink the engine drops
for failing costs the others nothing.

Times. Session time is the stream's own: bin ``b`` (``chunk.first_bin + i``) starts at
``b * bin_s`` seconds after the engine's ``start`` marker, so ``dropout:0.3@60-120`` acts on
the bins that start in ``[60, 120)`` s of streaming. Onset and offset markers
(``perturbation_start:dropout:0.3`` / ``perturbation_stop:dropout:0.3``) are stamped on the
LSL clock at the start of the first bin in (or out of) the window, and written before that
bin's chunk. A perturbation still active when the stream stops gets its stop marker, stamped
at the end of the last bin, just before the engine's ``stop`` marker.

What changes. Only the counts (and so the spikes of every transport and the NWB Units table).
The ground truth (``rates``, ``latents``, ``condition``) stays the model's own, unperturbed:
it is what the simulated brain did, not what the damaged array recorded, and ``gain`` or
``noise`` have no rate of their own to report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from ldns_sim.core import Chunk, StreamMeta, Telemetry
from ldns_sim.perturbations.schedule import PerturbationSchedule
from ldns_sim.sinks.base import Sink

_INT16_MAX = np.iinfo(np.int16).max


class PerturbationStage:
    """Perturbs each stamped chunk once and says which markers go before it.

    Parameters
    ----------
    schedule
        The perturbations, their fixed draws and the RNG of the spikes they add or remove.
    """

    def __init__(self, schedule: PerturbationSchedule) -> None:
        self.schedule = schedule
        self.bin_s = schedule.bin_s
        self._last: tuple[int, Chunk, list[tuple[str, float]]] | None = None
        self._last_bin_end_s: float | None = None
        self._closing: list[tuple[str, float]] | None = None

    def apply(self, chunk: Chunk) -> tuple[Chunk, list[tuple[str, float]]]:
        """``(perturbed chunk, [(marker, LSL time), ...])`` for a stamped chunk.

        Called by every wrapper with the same chunk; only the first call per ``chunk.seq``
        draws random numbers.
        """
        if self._last is not None and self._last[0] == chunk.seq:
            return self._last[1], self._last[2]
        if chunk.bin_end_s is None:
            raise ValueError(f"chunk {chunk.seq} reached the perturbation stage unstamped")
        counts = np.empty(chunk.counts.shape, dtype=np.int16)
        markers: list[tuple[str, float]] = []
        rate_per_bin = np.asarray(chunk.rates_hz, dtype=np.float64) * self.bin_s
        for i in range(chunk.n_bins):
            t_s = (chunk.first_bin + i) * self.bin_s
            start_lsl_s = float(chunk.bin_end_s[i]) - self.bin_s
            markers += [(text, start_lsl_s) for text in self.schedule.events(t_s)]
            row = self.schedule.apply(chunk.counts[i], rate_per_bin[i], t_s)
            counts[i] = np.minimum(row, _INT16_MAX)
        out = replace(chunk, counts=counts)
        self._last = (chunk.seq, out, markers)
        self._last_bin_end_s = float(chunk.bin_end_s[-1])
        return out, markers

    def closing_markers(self) -> list[tuple[str, float]]:
        """Stop markers of the perturbations still active, at the last bin's end (once)."""
        if self._closing is None:
            if self._last_bin_end_s is None:
                self._closing = []
            else:
                t_s = self._last_bin_end_s
                self._closing = [(text, t_s) for text in self.schedule.events(np.inf)]
        return self._closing


class PerturbedSink(Sink):
    """A sink that receives the perturbed stream of a shared ``PerturbationStage``.

    ``open``, ``write_telemetry`` and ``close`` pass through; the engine's ``stop`` marker is
    preceded by the stop markers of perturbations still active.
    """

    def __init__(self, inner: Sink, stage: PerturbationStage) -> None:
        self.inner, self.stage = inner, stage
        self.name = inner.name

    def __repr__(self) -> str:
        return f"{self.inner!r} (perturbed)"

    def open(self, meta: StreamMeta) -> PerturbedSink:
        self.inner.open(meta)
        return self

    def write_chunk(self, chunk: Chunk) -> None:
        out, markers = self.stage.apply(chunk)
        for text, t_s in markers:
            self.inner.write_marker(text, t_s)
        self.inner.write_chunk(out)

    def write_marker(self, text: str, timestamp_s: float) -> None:
        if text == "stop":
            for closing, t_s in self.stage.closing_markers():
                self.inner.write_marker(closing, t_s)
        self.inner.write_marker(text, timestamp_s)

    def write_telemetry(self, telemetry: Telemetry) -> None:
        self.inner.write_telemetry(telemetry)

    def close(self) -> None:
        self.inner.close()


def perturb_sinks(sinks: Sequence[Sink], schedule: PerturbationSchedule) -> list[Sink]:
    """``sinks`` wrapped to share one stage of ``schedule`` (unchanged if it is empty)."""
    if not schedule.perturbations:
        return list(sinks)
    stage = PerturbationStage(schedule)
    return [PerturbedSink(sink, stage) for sink in sinks]
