"""Hand-built stream metadata and stamped chunks for the sink tests (numpy only)."""

from __future__ import annotations

import time
import uuid

import numpy as np
import pytest

from ldns_sim.core import Chunk, StreamMeta

BIN_S = 0.02


def make_meta(n_neurons: int = 6, n_latents: int = 3, source_id: str | None = None,
              bin_s: float = BIN_S) -> StreamMeta:
    return StreamMeta(
        model_name="tiny-test",
        model_sha256="ab" * 32,
        seed=1234,
        bin_s=bin_s,
        neuron_ids=tuple(f"unit{i}" for i in range(n_neurons)),
        n_latents=n_latents,
        condition_names=("vel_x", "vel_y"),
        condition_source="script:center-out",
        source_id=source_id or f"ldns-test-{uuid.uuid4().hex[:8]}",
        sampler="4 DDIM steps per bin (trailing), guidance 1.5",
    )


def make_chunks(meta: StreamMeta, n_chunks: int, bins_per_chunk: int = 5,
                t0_s: float = 1000.0, seed: int = 0) -> list[Chunk]:
    """Consecutive stamped chunks; bin i ends at ``t0_s + (i + 1) * bin_s`` (LSL clock).

    The monotonic stamps are ``time.monotonic()`` now plus the same offsets, as the engine's.
    """
    mono_offset_s = time.monotonic() - t0_s
    rng = np.random.default_rng(seed)
    chunks = []
    for seq in range(n_chunks):
        first = seq * bins_per_chunk
        rates = rng.uniform(5, 60, (bins_per_chunk, meta.n_neurons)).astype(np.float32)
        counts = rng.poisson(rates * meta.bin_s * 3).astype(np.int16)
        ends = t0_s + (first + 1 + np.arange(bins_per_chunk)) * meta.bin_s
        chunk = Chunk(
            seq=seq, first_bin=first, counts=counts, rates_hz=rates,
            latents=rng.standard_normal((bins_per_chunk, meta.n_latents)).astype(np.float32),
            condition=rng.standard_normal((bins_per_chunk, 2)).astype(np.float32),
        )
        chunks.append(chunk.stamped(ends, ends + mono_offset_s))
    return chunks


@pytest.fixture
def meta() -> StreamMeta:
    return make_meta()


@pytest.fixture(name="make_meta")
def _make_meta_fixture():
    return make_meta


@pytest.fixture(name="make_chunks")
def _make_chunks_fixture():
    return make_chunks
