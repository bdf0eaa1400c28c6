"""Playing a real recording through the streaming contract.

``RecordingReplayer`` is a ``ChunkGenerator`` that emits a recording's own spike counts, so
``ldns-sim replay DATA`` publishes real data exactly as ``ldns-sim stream`` publishes
synthetic data: a rig can score its decoder on both through the same inlet.
``ReplaySource`` is a ``ConditionSource`` that plays a recording's behaviour on the engine
clock, to drive a model with real movements.

Trials are concatenated in their stored order; with ``loop=True`` playback starts over at
the end.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from scipy.ndimage import gaussian_filter1d

from ldns_sim.core import Chunk, ChunkGenerator, SpikeData
from ldns_sim.errors import ConfigError, DataError
from ldns_sim.realtime.clock import Clock
from ldns_sim.realtime.condition import ConditionReading, ConditionSource

logger = logging.getLogger(__name__)


def behaviour_names(data: SpikeData) -> tuple[str, ...]:
    """Channel names of ``data.behaviour`` (``behaviour_0, ...`` if the recording has none)."""
    if data.behaviour is None:
        return ()
    if not data.behaviour_names:
        return tuple(f"behaviour_{i}" for i in range(data.n_behaviour))
    if len(data.behaviour_names) != data.n_behaviour:
        raise DataError(f"{data.source}: {len(data.behaviour_names)} behaviour names "
                        f"{data.behaviour_names} for {data.n_behaviour} behaviour channels")
    return tuple(data.behaviour_names)


def _concat_behaviour(data: SpikeData) -> np.ndarray:
    """``(n_bins_total, n_behaviour)`` float32, all trials in order (0 columns if none)."""
    if data.behaviour is None:
        return np.zeros((data.n_bins_total, 0), dtype=np.float32)
    return np.concatenate(data.behaviour).astype(np.float32)


class RecordingReplayer(ChunkGenerator):
    """Emits a recording's binned counts bin after bin, trials concatenated.

    ``next_chunk`` ignores the condition it is given: the chunk's ``condition`` is the
    recording's own behaviour for those bins (what the animal actually did). ``rates_hz`` is
    an estimate, not ground truth: the counts smoothed per trial with a Gaussian of
    ``smoothing_s`` standard deviation, divided by ``bin_s`` (finite everywhere, never NaN).
    ``latents`` is empty (``n_latents = 0``). To stream it, pair it with
    ``ConstantSource.zeros(replayer.condition_names)``.

    Parameters
    ----------
    data
        The recording.
    bins_per_chunk
        Bins per chunk.
    loop
        Start over after the last bin; if ``False``, ``next_chunk`` raises ``StopIteration``
        once fewer than ``bins_per_chunk`` bins are left (the engine then ends the stream).
    smoothing_s
        Standard deviation of the Gaussian rate estimate, seconds (0: raw counts / bin_s).
    """

    n_latents = 0

    def __init__(self, data: SpikeData, bins_per_chunk: int = 1, loop: bool = True,
                 smoothing_s: float = 0.05) -> None:
        if bins_per_chunk < 1 or not smoothing_s >= 0:
            raise ConfigError(f"RecordingReplayer: needs bins_per_chunk >= 1 and smoothing_s "
                              f">= 0, got {bins_per_chunk} and {smoothing_s}")
        if not loop and data.n_bins_total < bins_per_chunk:
            raise DataError(f"{data.source}: {data.n_bins_total} bins, fewer than one chunk "
                            f"of {bins_per_chunk}")
        self.source = data.source
        self.bin_s = float(data.bin_s)
        self.bins_per_chunk = int(bins_per_chunk)
        self.loop = loop
        self.meta_neuron_ids = tuple(data.neuron_ids)
        self.condition_names = behaviour_names(data)
        self.counts = np.concatenate(data.counts).astype(np.int16)  # (n_bins_total, N)
        self.behaviour = _concat_behaviour(data)  # (n_bins_total, n_behaviour)
        sigma_bins = smoothing_s / self.bin_s
        self.rates_hz = np.concatenate([  # (n_bins_total, N)
            gaussian_filter1d(c.astype(np.float32), sigma_bins, axis=0, mode="nearest")
            if sigma_bins > 0 else c.astype(np.float32) for c in data.counts
        ]) / np.float32(self.bin_s)
        self._next_bin = 0
        self._n_chunks = 0

    @property
    def n_bins_total(self) -> int:
        return len(self.counts)

    def next_chunk(self, condition: np.ndarray | None = None) -> Chunk:
        n = self.bins_per_chunk
        if not self.loop and self._next_bin + n > self.n_bins_total:
            logger.info("%s: end of recording (%d trailing bins not played)", self.source,
                        self.n_bins_total - self._next_bin)
            raise StopIteration
        idx = (self._next_bin + np.arange(n)) % self.n_bins_total  # (n,)
        chunk = Chunk(seq=self._n_chunks, first_bin=self._n_chunks * n,
                      counts=self.counts[idx], rates_hz=self.rates_hz[idx],
                      latents=np.zeros((n, 0), dtype=np.float32),
                      condition=self.behaviour[idx])
        self._next_bin += n
        self._n_chunks += 1
        return chunk

    def __repr__(self) -> str:
        return (f"<RecordingReplayer | {self.source} | bin {self._next_bin} of "
                f"{self.n_bins_total} | loop={self.loop}>")


class ReplaySource(ConditionSource):
    """A recording's behaviour as a live condition, played on the engine clock.

    At time ``t`` the sample is the behaviour of the bin covering ``t - t_start``
    (bin ``b`` covers ``[b * bin_s, (b + 1) * bin_s)``, trials concatenated, looping), and
    its ``sample_time_s`` is that bin's start, ``t_start + b * bin_s``. ``t_start`` is the
    clock time of ``start()``.

    Parameters
    ----------
    data
        A recording with behaviour.
    clock
        The engine's clock.
    """

    name = "replay"

    def __init__(self, data: SpikeData, clock: Clock) -> None:
        if data.behaviour is None:
            raise DataError(f"{data.source}: no behaviour to replay as a condition")
        self.source = data.source
        self.channel_names = behaviour_names(data)
        self.bin_s = float(data.bin_s)
        self.behaviour = _concat_behaviour(data)  # (n_bins_total, n_behaviour)
        self.clock = clock
        self.t_start_s: float | None = None

    def start(self) -> ReplaySource:
        if self.t_start_s is None:
            self.t_start_s = self.clock.now()
        return self

    def read(self, now_s: float) -> ConditionReading:
        if self.t_start_s is None:
            raise RuntimeError(f"ReplaySource({self.source}): read() before start()")
        b = max(0, math.floor((now_s - self.t_start_s) / self.bin_s))
        sample_time_s = self.t_start_s + b * self.bin_s
        return ConditionReading(self.behaviour[b % len(self.behaviour)], sample_time_s,
                                sample_time_s, True)

    def __repr__(self) -> str:
        state = "idle" if self.t_start_s is None else f"started at {self.t_start_s:.3f} s"
        return f"<ReplaySource | {self.source} | {self.channel_names} | {state}>"
