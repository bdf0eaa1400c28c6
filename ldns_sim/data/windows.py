"""Fixed-length windows over SpikeData, and behaviour statistics (numpy only)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ldns_sim.core import SpikeData
from ldns_sim.errors import DataError


def make_windows(data: SpikeData, n_bins: int, stride_bins: int
                 ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Cut every trial into windows of ``n_bins`` bins, starting every ``stride_bins`` bins.

    Trials shorter than ``n_bins`` are skipped; a trial's tail that does not fill a window
    is left out.

    Parameters
    ----------
    data
        The recording.
    n_bins
        Window length in bins.
    stride_bins
        Bins between the starts of consecutive windows of one trial.

    Returns
    -------
    counts
        ``(n_windows, n_bins, n_neurons)`` float32.
    behaviour
        ``(n_windows, n_bins, n_behaviour)`` float32, or None without behaviour.
    direction
        ``(n_windows,)`` direction (rad) of each window's trial, or None.
    """
    if n_bins < 1 or stride_bins < 1:
        raise DataError(f"{data.source}: window n_bins ({n_bins}) and stride_bins "
                        f"({stride_bins}) must be at least 1")
    trial_of, start_of = window_index([len(c) for c in data.counts], n_bins, stride_bins)
    if not trial_of:
        longest = max(len(c) for c in data.counts)
        raise DataError(f"{data.source}: no trial holds a window of {n_bins} bins "
                        f"(longest trial: {longest} bins of {data.bin_s} s)")
    counts = cut_windows(data.counts, trial_of, start_of, n_bins)  # (W, n_bins, N)
    behaviour = None
    if data.behaviour is not None:
        behaviour = cut_windows(data.behaviour, trial_of, start_of, n_bins)  # (W, n_bins, B)
    direction = None if data.direction_rad is None else np.asarray(data.direction_rad)[trial_of]
    return counts, behaviour, direction


def laid_end_to_end(data: SpikeData) -> SpikeData:
    """All trials as one sequence, in their order (behaviour and true rates likewise).

    For a model that streams for hours: windows cut from it also span the junctions between
    trials (the end of one reach, the hold and the start of the next), as a continuous stream
    does. Per-trial directions and alignment events do not survive and are dropped.
    """
    def joined(seq):
        return None if seq is None else (np.concatenate(seq),)

    return replace(data, counts=joined(data.counts), behaviour=joined(data.behaviour),
                   true_rates=joined(data.true_rates), split=np.asarray(data.split[:1]),
                   direction_rad=None, align_bin=None)


def window_index(lengths: list[int], n_bins: int, stride_bins: int
                 ) -> tuple[list[int], list[int]]:
    """(trial of each window, its first bin), in the order ``make_windows`` cuts them."""
    trial_of, start_of = [], []
    for i, length in enumerate(lengths):
        starts = range(0, length - n_bins + 1, stride_bins)
        trial_of.extend([i] * len(starts))
        start_of.extend(starts)
    return trial_of, start_of


def cut_windows(sequences, trial_of: list[int], start_of: list[int], n_bins: int
                ) -> np.ndarray:
    """Stack ``sequences[i][s:s + n_bins]`` for every window: (W, n_bins, channels) float32."""
    return np.stack([sequences[i][s:s + n_bins] for i, s in zip(trial_of, start_of)]
                    ).astype(np.float32)


def behaviour_stats(data: SpikeData) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of the behaviour over all bins.

    Returns
    -------
    mean, std
        ``(n_behaviour,)`` float32 each; a channel that never varies gets std 1, so
        ``(x - mean) / std`` is always defined.
    """
    if data.behaviour is None:
        raise DataError(f"{data.source}: has no behaviour to compute statistics of")
    flat = np.concatenate(data.behaviour).astype(np.float64)  # (n_bins_total, B)
    mean, std = flat.mean(axis=0), flat.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return mean.astype(np.float32), std.astype(np.float32)
