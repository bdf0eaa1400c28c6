"""One compute thread for the per-bin work: torch's pool and numpy's BLAS pool."""

import torch
from threadpoolctl import threadpool_info

from ldns_sim.threads import one_thread


def _blas_threads():
    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]


def test_one_thread_limits_torch_and_blas_and_restores_them():
    torch_before, blas_before = torch.get_num_threads(), _blas_threads()
    with one_thread():
        assert torch.get_num_threads() == 1
        assert _blas_threads() and all(n == 1 for n in _blas_threads())
    assert torch.get_num_threads() == torch_before
    assert _blas_threads() == blas_before
