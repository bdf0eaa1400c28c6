"""Real, small building blocks for tests, docs and demos (no torch).

``TuningCurveGenerator`` is a complete ``ChunkGenerator``: a population of cosine
velocity-tuned Poisson neurons (Georgopoulos et al. 1982). It drives the engine in tests and
benchmarks and is the fallback demo when no trained model is at hand.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ldns_sim.core import Chunk, ChunkGenerator, StreamMeta
from ldns_sim.errors import ConfigError

VELOCITY_NAMES = ("vel_x", "vel_y")


class TuningCurveGenerator(ChunkGenerator):
    """Cosine velocity tuning with Poisson spiking, chunk by chunk.

    Neuron ``i`` fires at ``rate_i = max(0, baseline_i + depth_i * (v . u_i))`` Hz, where ``v``
    is the 2-D velocity condition (arbitrary units, ~1 for a fast reach) and ``u_i`` the unit
    vector of the neuron's preferred direction; counts are Poisson with mean ``rate_i * bin_s``.
    The latents are the velocity itself (``n_latents = 2``): what produced the rates.

    Parameters
    ----------
    n_neurons
        Population size.
    bin_s
        Bin width in seconds.
    bins_per_chunk
        Bins per ``next_chunk`` call.
    rng
        Draws the tuning parameters (at construction) and the spikes.
    baseline_hz, depth_hz
        ``(low, high)`` ranges of the uniform baseline rate and modulation depth, in Hz.
    """

    condition_names = VELOCITY_NAMES
    n_latents = 2

    def __init__(self, n_neurons: int, bin_s: float, bins_per_chunk: int,
                 rng: np.random.Generator, baseline_hz: tuple[float, float] = (5.0, 20.0),
                 depth_hz: tuple[float, float] = (5.0, 30.0)) -> None:
        if n_neurons < 1 or bins_per_chunk < 1 or not bin_s > 0:
            raise ConfigError(f"TuningCurveGenerator: needs n_neurons >= 1, bins_per_chunk >= 1"
                              f" and bin_s > 0, got {n_neurons}, {bins_per_chunk}, {bin_s}")
        self.bin_s = float(bin_s)
        self.bins_per_chunk = int(bins_per_chunk)
        self.meta_neuron_ids = tuple(f"unit{i:03d}" for i in range(n_neurons))
        self.rng = rng
        preferred_rad = rng.uniform(0, 2 * np.pi, n_neurons)
        self.baseline_hz = rng.uniform(*baseline_hz, n_neurons).astype(np.float32)  # (N,)
        depth = rng.uniform(*depth_hz, n_neurons)
        # (2, N): velocity -> rate modulation in Hz, depth times preferred unit vector
        self.tuning_hz = np.stack([depth * np.cos(preferred_rad),
                                   depth * np.sin(preferred_rad)]).astype(np.float32)
        self._n_chunks = 0

    def rates_hz(self, velocity: np.ndarray) -> np.ndarray:
        """``(n_bins, n_neurons)`` float32 firing rates in Hz for ``(n_bins, 2)`` velocity."""
        return np.maximum(self.baseline_hz + velocity @ self.tuning_hz, 0).astype(np.float32)

    def next_chunk(self, condition: np.ndarray) -> Chunk:
        velocity = np.asarray(condition, dtype=np.float32)  # (n_bins, 2)
        if velocity.shape != (self.bins_per_chunk, 2):
            raise ConfigError(f"TuningCurveGenerator: condition of shape {velocity.shape}, "
                              f"expected ({self.bins_per_chunk}, 2)")
        rates_hz = self.rates_hz(velocity)  # (n_bins, N)
        counts = self.rng.poisson(rates_hz * self.bin_s)
        chunk = Chunk(seq=self._n_chunks, first_bin=self._n_chunks * self.bins_per_chunk,
                      counts=np.minimum(counts, np.iinfo(np.int16).max).astype(np.int16),
                      rates_hz=rates_hz, latents=velocity.copy(), condition=velocity.copy())
        self._n_chunks += 1
        return chunk

    def __repr__(self) -> str:
        return (f"<TuningCurveGenerator | {len(self.meta_neuron_ids)} neurons | "
                f"{self.bins_per_chunk}x{self.bin_s * 1e3:g} ms bins>")


def make_stream_meta(generator: ChunkGenerator | None = None, *, n_neurons: int = 8,
                     bin_s: float = 0.02, condition_names: Sequence[str] = VELOCITY_NAMES,
                     n_latents: int = 2, seed: int = 0, condition_source: str = "none",
                     source_id: str = "ldns-sim-test") -> StreamMeta:
    """A ``StreamMeta`` for tests: from ``generator`` if given, else from the keywords.

    The model name is ``"test"`` and its sha256 is 64 zeros (no model file exists).
    """
    if generator is not None:
        neuron_ids, bin_s = generator.meta_neuron_ids, generator.bin_s
        condition_names, n_latents = generator.condition_names, generator.n_latents
    else:
        neuron_ids = tuple(f"unit{i:03d}" for i in range(n_neurons))
    return StreamMeta(model_name="test", model_sha256="0" * 64, seed=seed, bin_s=bin_s,
                      neuron_ids=tuple(neuron_ids), n_latents=n_latents,
                      condition_names=tuple(condition_names),
                      condition_source=condition_source, source_id=source_id)
