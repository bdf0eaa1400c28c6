"""What every transport publishes, in one place: kinds, channel labels and units, conventions.

The LSL outlets, the ZMQ publisher and the NWB recorder all describe the same streams;
they take their channel lists, metadata and spike-time convention from here so they
cannot disagree. numpy only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ldns_sim.core import StreamMeta, Telemetry

SCHEMA_VERSION = 1
"""Version of the wire contract (LSL desc fields, ZMQ header, journal layout)."""

TELEMETRY_CHANNELS: tuple[tuple[str, str], ...] = (
    ("seq", "count"),
    ("generation_latency_s", "s"),
    ("queue_depth", "count"),
    ("n_late_total", "count"),
    ("late", "bool"),
    ("emitted_at_s", "s"),
    ("condition_age_s", "s"),
)
"""``(label, unit)`` of each telemetry channel, in order (float64 on the wire)."""


@dataclass(frozen=True)
class ChannelSpec:
    """One published kind: its channel labels, unit and numpy dtype."""

    kind: str
    labels: tuple[str, ...]
    unit: str
    dtype: str
    """numpy dtype string, little-endian, e.g. ``"<i2"``."""

    @property
    def n_channels(self) -> int:
        return len(self.labels)


def latent_labels(n_latents: int) -> tuple[str, ...]:
    """``("latent_0", ...)``: labels of the latent channels."""
    return tuple(f"latent_{i}" for i in range(n_latents))


def channel_specs(meta: StreamMeta) -> dict[str, ChannelSpec]:
    """The binned kinds of a stream: ``spikes``, ``rates``, ``latents``, ``condition``.

    Kinds with no channels (no latents, no condition) are left out.
    """
    specs = [
        ChannelSpec("spikes", meta.neuron_ids, "count", "<i2"),
        ChannelSpec("rates", meta.neuron_ids, "Hz", "<f4"),
        ChannelSpec("latents", latent_labels(meta.n_latents), "a.u.", "<f4"),
        ChannelSpec("condition", tuple(meta.condition_names), "a.u.", "<f4"),
    ]
    return {s.kind: s for s in specs if s.n_channels > 0}


def meta_dict(meta: StreamMeta) -> dict:
    """``meta`` as a JSON-ready dict, plus ``schema_version``."""
    d = asdict(meta)
    d["neuron_ids"] = list(meta.neuron_ids)
    d["condition_names"] = list(meta.condition_names)
    d["schema_version"] = SCHEMA_VERSION
    return d


def meta_from_dict(d: dict) -> StreamMeta:
    """Inverse of :func:`meta_dict` (``schema_version`` is dropped)."""
    fields = {k: v for k, v in d.items() if k != "schema_version"}
    fields["neuron_ids"] = tuple(fields["neuron_ids"])
    fields["condition_names"] = tuple(fields["condition_names"])
    return StreamMeta(**fields)


def telemetry_row(t: Telemetry) -> np.ndarray:
    """``(1, len(TELEMETRY_CHANNELS))`` float64 row of one chunk's telemetry."""
    return np.array([[t.seq, t.generation_latency_s, t.queue_depth, t.n_late_total,
                      float(t.late), t.emitted_at_s, t.condition_age_s]], dtype=np.float64)


def spread_spike_times(
    counts: np.ndarray, bin_start_s: np.ndarray, bin_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Spike times from binned counts: the k spikes of a bin spread evenly inside it.

    Spike j (0-based) of k in the bin ``[start, start + bin_s)`` is placed at
    ``start + (j + 0.5) * bin_s / k``: never on a bin edge, so re-binning with the same
    edges gives back exactly the same counts. This is the documented convention of the
    LSL ``SpikeEvents`` stream and the NWB Units table.

    Parameters
    ----------
    counts
        ``(n_bins, n_neurons)`` non-negative integer counts.
    bin_start_s
        ``(n_bins,)`` start time of each bin in seconds.
    bin_s
        Bin width in seconds.

    Returns
    -------
    unit_index
        ``(n_spikes,)`` int32 neuron index of each spike.
    times_s
        ``(n_spikes,)`` float64 spike times; ordered by bin, then by neuron.
    """
    counts = np.asarray(counts)
    bins, units = np.nonzero(counts)  # row-major: bin order, then neuron order
    k = counts[bins, units].astype(np.int64)
    n_total = int(k.sum())
    if n_total == 0:
        return np.zeros(0, np.int32), np.zeros(0, np.float64)
    first = np.cumsum(k) - k  # index of each (bin, unit) group's first spike
    within = np.arange(n_total) - np.repeat(first, k)
    k_rep = np.repeat(k, k)
    times = np.repeat(np.asarray(bin_start_s, np.float64)[bins], k) + (
        (within + 0.5) / k_rep * bin_s
    )
    return np.repeat(units, k).astype(np.int32), times
