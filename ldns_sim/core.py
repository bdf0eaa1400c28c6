"""The objects every stage passes around: recordings, generated chunks, stream metadata.

numpy only: sinks, sources and the engine import this module and never torch.
Arrays at these edges are ``(samples, channels)``: bins along axis 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from ldns_sim.errors import DataError

SPLITS = ("train", "val", "test")


DEFAULT_STEPS = 4
"""Denoising steps per bin of the commands (stream, sample, evaluate, bench, closed-loop).
On the M1 validation trials 4 steps sampled as well as 5 (population-count KL 0.0086 vs 0.0088,
correlation RMSE 0.031 vs 0.030, decoding R² 0.57 vs 0.55), and 5 as well as 10 to 1000
(docs/benchmarks.md 1.2), with 5 denoiser passes per bin instead of 6 (3 steps: KL 0.016).
Those figures are with the "leading" step spacing of sessions 1-5; see ``STEP_SPACINGS``."""

STEP_SPACINGS = ("trailing", "leading")
"""How a few-step sampler places its steps among the training timesteps, default first
(``NoiseSchedule.sampling_timesteps``)."""
DEFAULT_STEP_SPACING = STEP_SPACINGS[0]

@dataclass(frozen=True)
class SpikeData:
    """Binned spike counts of one recording, trial by trial (or one segment per trial).

    Attributes
    ----------
    counts
        One ``(n_bins_i, n_neurons)`` integer array per trial; trials may differ in length.
    bin_s
        Bin width in seconds.
    neuron_ids
        One label per neuron (e.g. ``"elec12_unit1"``).
    behaviour
        One ``(n_bins_i, n_behaviour)`` float32 array per trial, aligned bin for bin with
        ``counts`` (any behaviour lag already applied), or ``None``.
    behaviour_names
        Channel names of ``behaviour``, e.g. ``("vel_x", "vel_y")``.
    direction_rad
        ``(n_trials,)`` reach angle per trial in radians, or ``None``.
    split
        ``(n_trials,)`` array of ``"train" | "val" | "test"``.
    source
        Where the data came from (a file path or a generator name), for error messages
        and the model's training-data fingerprint.
    align_bin
        ``(n_trials,)`` bin index of an alignment event (e.g. movement onset), or ``None``.
    """

    counts: tuple[np.ndarray, ...]
    bin_s: float
    neuron_ids: tuple[str, ...]
    split: np.ndarray
    source: str
    behaviour: tuple[np.ndarray, ...] | None = None
    behaviour_names: tuple[str, ...] = ()
    direction_rad: np.ndarray | None = None
    align_bin: np.ndarray | None = None
    true_rates: tuple[np.ndarray, ...] | None = field(default=None, repr=False)
    """Ground-truth rates (counts per bin) when the data are synthetic, else ``None``."""

    def __post_init__(self) -> None:
        if len(self.counts) == 0:
            raise DataError(f"{self.source}: no trials")
        n_neurons = self.counts[0].shape[1]
        if len(self.neuron_ids) != n_neurons:
            raise DataError(
                f"{self.source}: {len(self.neuron_ids)} neuron ids for {n_neurons} neurons"
            )
        if not (self.bin_s > 0 and np.isfinite(self.bin_s)):
            raise DataError(f"{self.source}: bin width must be a positive number, got {self.bin_s}")
        if len(self.split) != len(self.counts):
            raise DataError(f"{self.source}: {len(self.split)} split labels for "
                            f"{len(self.counts)} trials")
        for i, c in enumerate(self.counts):
            if c.ndim != 2 or c.shape[1] != n_neurons:
                raise DataError(f"{self.source}: trial {i} has counts of shape {c.shape}, "
                                f"expected (n_bins, {n_neurons})")
            if self.behaviour is not None and len(self.behaviour[i]) != len(c):
                raise DataError(f"{self.source}: trial {i} has {len(self.behaviour[i])} "
                                f"behaviour bins for {len(c)} spike bins")

    @property
    def n_trials(self) -> int:
        return len(self.counts)

    @property
    def n_neurons(self) -> int:
        return self.counts[0].shape[1]

    @property
    def n_behaviour(self) -> int:
        return 0 if self.behaviour is None else self.behaviour[0].shape[1]

    @property
    def n_bins_total(self) -> int:
        return int(sum(len(c) for c in self.counts))

    def take(self, indices: Sequence[int] | np.ndarray) -> SpikeData:
        """The trials at ``indices``, in that order."""
        idx = np.asarray(indices, dtype=int)

        def pick(seq):
            return None if seq is None else tuple(seq[i] for i in idx)

        def pick_arr(arr):
            return None if arr is None else np.asarray(arr)[idx]

        if len(idx) == 0:
            raise DataError(f"{self.source}: selection is empty")
        return replace(
            self,
            counts=pick(self.counts),
            behaviour=pick(self.behaviour),
            true_rates=pick(self.true_rates),
            split=np.asarray(self.split)[idx],
            direction_rad=pick_arr(self.direction_rad),
            align_bin=pick_arr(self.align_bin),
        )

    def select(self, split: str) -> SpikeData:
        """The trials of one split; a clear error if it is empty."""
        if split not in SPLITS:
            raise DataError(f"unknown split {split!r}; expected one of {SPLITS}")
        idx = np.flatnonzero(np.asarray(self.split) == split)
        if len(idx) == 0:
            raise DataError(f"{self.source}: the {split!r} split is empty "
                            f"({self.n_trials} trials, splits present: "
                            f"{sorted(set(np.asarray(self.split).tolist()))})")
        return self.take(idx)

    def mean_rate_hz(self) -> np.ndarray:
        """``(n_neurons,)`` mean firing rate over all bins, in Hz."""
        total = np.sum([c.sum(axis=0) for c in self.counts], axis=0)
        return total / (self.n_bins_total * self.bin_s)


@dataclass(frozen=True)
class StreamMeta:
    """What a stream carries, fixed at start: every sink writes it into its headers."""

    model_name: str
    model_sha256: str
    seed: int
    bin_s: float
    neuron_ids: tuple[str, ...]
    n_latents: int
    condition_names: tuple[str, ...]
    condition_source: str
    source_id: str = "ldns-sim"
    """Unique per stream session; LSL ``source_id`` and ZMQ header field."""
    sampler: str = ""
    """How the spikes were sampled (steps and their spacing, guidance, context noise,
    observation model, backend): with the model's sha256, the seed and the condition log,
    what reproduces the stream. Empty for a replayed recording."""

    @property
    def n_neurons(self) -> int:
        return len(self.neuron_ids)


@dataclass(frozen=True)
class Chunk:
    """A run of consecutive generated bins, as it leaves the simulator.

    The simulator fills everything but the timestamps; the engine stamps them.

    Attributes
    ----------
    seq
        Chunk sequence number, 0, 1, 2, ... in emission order.
    first_bin
        Index of the chunk's first bin since the stream started.
    counts
        ``(n_bins, n_neurons)`` int16 spike counts.
    rates_hz
        ``(n_bins, n_neurons)`` float32 ground-truth firing rates in Hz.
    latents
        ``(n_bins, n_latents)`` float32 latents (un-normalised) that produced the rates.
    condition
        ``(n_bins, n_condition)`` float32 condition actually used for each bin.
    bin_end_s
        ``(n_bins,)`` float64 LSL-clock time of each bin's end, or ``None`` before stamping.
    bin_end_monotonic_s
        ``(n_bins,)`` float64 ``time.monotonic()`` of each bin's end, or ``None``.
    """

    seq: int
    first_bin: int
    counts: np.ndarray
    rates_hz: np.ndarray
    latents: np.ndarray
    condition: np.ndarray
    bin_end_s: np.ndarray | None = None
    bin_end_monotonic_s: np.ndarray | None = None

    @property
    def n_bins(self) -> int:
        return self.counts.shape[0]

    def stamped(self, bin_end_s: np.ndarray, bin_end_monotonic_s: np.ndarray) -> Chunk:
        return replace(self, bin_end_s=np.asarray(bin_end_s, dtype=np.float64),
                       bin_end_monotonic_s=np.asarray(bin_end_monotonic_s, dtype=np.float64))


@dataclass(frozen=True)
class Telemetry:
    """Per-chunk health of the real-time engine."""

    seq: int
    generation_latency_s: float
    queue_depth: int
    n_late_total: int
    late: bool
    emitted_at_s: float
    """LSL-clock time at which the chunk was handed to the sinks."""
    condition_age_s: float = float("nan")
    """Age of the newest condition sample the chunk used, at emission (seconds)."""


class ChunkGenerator:
    """What the real-time engine drives: anything that makes the next chunk from a condition.

    The engine knows nothing else about the model. Implementations: the LDNS streaming
    simulator (``ldns_sim.simulator``), a recording replayer, ``ldns_sim.testing``'s tuning
    model. Subclasses set the attributes and implement ``next_chunk``.
    """

    bin_s: float
    bins_per_chunk: int
    meta_neuron_ids: tuple[str, ...]
    n_latents: int
    condition_names: tuple[str, ...]

    def next_chunk(self, condition: np.ndarray) -> Chunk:
        """Generate the next ``bins_per_chunk`` bins.

        Parameters
        ----------
        condition
            ``(bins_per_chunk, len(condition_names))`` float32, the behaviour driving each
            bin (causal: row i is the newest sample at or before bin i's end).
        """
        raise NotImplementedError
