"""Matplotlib figures of real against generated spikes (Agg backend, nothing shown)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from ldns_sim.core import SpikeData  # noqa: E402
from ldns_sim.evaluation.decoding import fit_ridge  # noqa: E402
from ldns_sim.evaluation.isi import isi_stats  # noqa: E402
from ldns_sim.evaluation.ldns_errors import unique_pairs  # noqa: E402
from ldns_sim.evaluation.psth import NO_CONDITION, condition_ids, psth  # noqa: E402
from ldns_sim.evaluation.spike_stats import (  # noqa: E402
    firing_rate_hz,
    population_count_density,
    population_count_histogram,
    spike_count_correlation,
)

REAL_COLOUR = "black"


def _grid(n_panels: int, width: float = 3.2, height: float = 3.0, n_rows: int = 1):
    n_cols = int(np.ceil(n_panels / n_rows))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(width * n_cols, height * n_rows),
                             squeeze=False, layout="constrained")
    return fig, axes


def raster(real: SpikeData, candidates: dict[str, SpikeData], max_s: float = 2.0) -> Figure:
    """Counts of the first trials (up to ``max_s`` seconds), neurons by time, per set."""
    sets = {"real": real, **candidates}
    fig, axes = _grid(len(sets), width=4.0, height=3.0, n_rows=len(sets))
    for ax, (name, s) in zip(axes[:, 0], sets.items()):
        n_bins = int(max_s / s.bin_s)
        x = np.concatenate(s.counts)[:n_bins]
        ax.imshow(x.T, aspect="auto", cmap="Greys", interpolation="nearest",
                  extent=(0, len(x) * s.bin_s, s.n_neurons, 0), vmin=0, vmax=max(1, x.max()))
        ax.set(title=name, ylabel="neuron")
    axes[-1, 0].set_xlabel("time (s), trials back to back")
    fig.set_size_inches(9, 1.8 * len(sets) + 0.5)
    return fig


def population_counts(real: SpikeData, candidates: dict[str, SpikeData],
                      max_count: int) -> Figure:
    """Population spike-count histograms (bars: real) and KDE densities (lines)."""
    fig, axes = _grid(len(candidates), width=4.0, n_rows=int(np.ceil(len(candidates) / 4)))
    for ax in axes.ravel()[len(candidates):]:
        ax.set_visible(False)
    support = np.arange(max_count + 1)
    real_hist = population_count_histogram(real.counts, max_count)
    real_kde = population_count_density(real.counts, max_count)
    for ax, (name, s) in zip(axes.ravel(), candidates.items()):
        ax.bar(support, real_hist, width=1.0, color="0.8", label="real (histogram)")
        ax.plot(support, real_kde, color=REAL_COLOUR, label="real (KDE)")
        ax.plot(support, population_count_density(s.counts, max_count), color="C1",
                label=f"{name} (KDE)")
        ax.set(title=name, xlabel="spikes per bin, all neurons", ylabel="probability")
        ax.legend(fontsize=7)
    return fig


def _scatter(ax, x, y, xlabel: str, ylabel: str, title: str) -> None:
    keep = np.isfinite(x) & np.isfinite(y)
    ax.scatter(x[keep], y[keep], s=6, alpha=0.6, color="C0", edgecolors="none")
    if keep.any():
        lo, hi = min(x[keep].min(), y[keep].min()), max(x[keep].max(), y[keep].max())
        ax.plot([lo, hi], [lo, hi], color="0.5", lw=0.8, ls="--")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)


def scatter_statistic(real: SpikeData, candidates: dict[str, SpikeData], which: str) -> Figure:
    """Real against generated statistic, ``which`` = ``correlation``, ``isi`` or ``rate``."""
    n_rows = 2 if which == "isi" else 1
    fig, axes = plt.subplots(n_rows, len(candidates), figsize=(3.2 * len(candidates), 3 * n_rows),
                             squeeze=False, layout="constrained")
    for col, (name, s) in enumerate(candidates.items()):
        if which == "correlation":
            _scatter(axes[0, col], unique_pairs(spike_count_correlation(real.counts)),
                     unique_pairs(spike_count_correlation(s.counts)), "real correlation",
                     "generated correlation", f"{name}: pairwise correlations")
        elif which == "rate":
            _scatter(axes[0, col], firing_rate_hz(real.counts, real.bin_s),
                     firing_rate_hz(s.counts, s.bin_s), "real rate (Hz)", "generated rate (Hz)",
                     f"{name}: firing rates")
        else:
            real_mean, real_sd = isi_stats(real.counts, real.bin_s)
            gen_mean, gen_sd = isi_stats(s.counts, s.bin_s)
            _scatter(axes[0, col], real_mean, gen_mean, "real mean ISI (s)",
                     "generated mean ISI (s)", f"{name}: mean ISI")
            _scatter(axes[1, col], real_sd, gen_sd, "real ISI std (s)", "generated ISI std (s)",
                     f"{name}: ISI std")
    return fig


def psths(real: SpikeData, candidates: dict[str, SpikeData], n_bins: int,
          smooth_s: float = 0.02, n_neurons: int = 4) -> Figure:
    """PSTHs of the most condition-modulated neurons: rows = sets, columns = neurons."""
    ids, angles = condition_ids(real.direction_rad, real.n_trials)
    real_psth = psth(real.counts, real.bin_s, ids, len(angles), n_bins, smooth_s)
    spread = np.nan_to_num(np.nanvar(real_psth, axis=(0, 1)))
    chosen = np.argsort(spread)[::-1][:n_neurons]
    sets = {"real": real, **candidates}
    fig, axes = plt.subplots(len(sets), len(chosen), figsize=(2.8 * len(chosen),
                             2.0 * len(sets) + 0.4), squeeze=False, sharex=True,
                             layout="constrained")
    colours = plt.cm.hsv(np.linspace(0, 1, len(angles), endpoint=False))
    time_s = np.arange(n_bins) * real.bin_s
    for row, (name, s) in enumerate(sets.items()):
        ref = None if np.isnan(angles).all() else angles
        s_ids = ids if s is real else condition_ids(
            s.direction_rad if ref is not None else None, s.n_trials, reference_rad=ref)[0]
        p = psth(s.counts, s.bin_s, s_ids, len(angles), n_bins, smooth_s)
        for col, neuron in enumerate(chosen):
            ax = axes[row, col]
            for k in range(len(angles)):
                if np.any(s_ids == k) and k != NO_CONDITION:
                    ax.plot(time_s, p[k, :, neuron], color=colours[k], lw=0.9)
            ax.set_title(f"{name}: {real.neuron_ids[neuron]}", fontsize=8)
            if col == 0:
                ax.set_ylabel("rate (Hz)")
    for ax in axes[-1]:
        ax.set_xlabel("time from trial start (s)")
    return fig


def decoded_trajectories(real: SpikeData, candidates: dict[str, SpikeData], alpha: float,
                         smooth_s: float, n_trials: int = 40) -> Figure:
    """Cumulative sums of behaviour decoded by a ridge decoder fitted on the real set.

    Solid: integrated conditioning behaviour; dashed: integrated decoded behaviour. The first
    two behaviour channels are taken as x and y velocity.
    """
    decoder = fit_ridge(real.counts, real.behaviour, alpha, 0, smooth_s / real.bin_s)
    sets = {"real": real, **candidates}
    fig, axes = _grid(len(sets), width=3.4, height=3.4, n_rows=int(np.ceil(len(sets) / 4)))
    for ax in axes.ravel()[len(sets):]:
        ax.set_visible(False)
    _, angles = condition_ids(real.direction_rad, real.n_trials)
    colours = plt.cm.hsv(np.linspace(0, 1, max(len(angles), 1), endpoint=False))
    for ax, (name, s) in zip(axes.ravel(), sets.items()):
        if s.behaviour is None:
            ax.set_title(f"{name}: no behaviour")
            continue
        s_ids = condition_ids(s.direction_rad, s.n_trials, reference_rad=angles)[0] \
            if s.direction_rad is not None and not np.isnan(angles).all() \
            else np.zeros(s.n_trials, dtype=int)
        decoded = decoder.predict(s.counts[:n_trials])
        for i, (true, dec) in enumerate(zip(s.behaviour[:n_trials], decoded)):
            colour = colours[max(int(s_ids[i]), 0) % len(colours)]
            true_pos = np.cumsum(true, axis=0) * s.bin_s
            dec_pos = np.cumsum(dec, axis=0) * s.bin_s
            y_col = 1 if true.shape[1] > 1 else 0
            ax.plot(true_pos[:, 0], true_pos[:, y_col], color=colour, lw=0.8, alpha=0.5)
            ax.plot(dec_pos[:, 0], dec_pos[:, y_col], color=colour, lw=0.8, ls="--")
        names = s.behaviour_names or ("b0", "b1")
        ax.set(title=f"{name}: solid true, dashed decoded", xlabel=f"cumsum {names[0]} * s",
               ylabel=f"cumsum {names[min(1, len(names) - 1)]} * s")
        ax.title.set_fontsize(8)
    return fig
