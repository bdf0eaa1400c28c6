"""One compute thread for the per-bin work: torch's intra-op pool and numpy's BLAS pool.

A streamed bin is hundreds of tiny ops (batch 1-2, 64 channels). Thread pools only add
hand-off and spinning to them: two torch threads ran the sampling loops 20-25x slower than one
on a 2-core machine, and OpenBLAS's pool (numpy's small matrix products in the numpy streaming
step) made a bin 1.6x slower (2.19 vs 1.40 ms back to back, docs/benchmarks.md 2.2).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from threadpoolctl import threadpool_limits


def use_one_thread() -> None:
    """For the rest of the process (a streaming command): one torch and one BLAS thread."""
    torch.set_num_threads(1)
    threadpool_limits(limits=1, user_api="blas")


@contextmanager
def one_thread() -> Iterator[None]:
    """One torch and one BLAS thread within the block; the previous counts after it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(before)
