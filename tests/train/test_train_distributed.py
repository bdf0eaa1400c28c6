"""Training under torchrun: two CPU processes, DistributedDataParallel over gloo on loopback."""

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ldns_sim.bundle import load_bundle
from ldns_sim.data.npz_io import save_npz
from ldns_sim.data.tuning import make_tuning_data


@pytest.mark.distributed
def test_torchrun_two_processes_train_one_bundle(tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    assert torchrun, "torchrun comes with torch and must be on the venv's PATH"
    data = save_npz(make_tuning_data(n_trials=40, n_neurons=12, n_bins=40, seed=0),
                    tmp_path / "d.npz")
    out = tmp_path / "bundle"
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "OMP_NUM_THREADS": "1"}
    with socket.socket() as s:  # a free loopback port for the rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = subprocess.run(
        [torchrun, "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port",
         str(port),
         "-m", "ldns_sim", "train", str(data), "--out", str(out), "--preset", "tiny",
         "--epochs-ae", "3", "--epochs-diffusion", "15", "--quiet"],
        capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    bundle = load_bundle(out)
    assert bundle.meta.ae.n_neurons == 12
    # both ranks trained the same replica: the saved weights are finite and were updated
    assert all(torch.isfinite(p).all() for p in bundle.denoiser.parameters())
    assert bundle.meta.metrics["causal_denoiser_val_loss"] < \
        bundle.meta.metrics["causal_denoiser_first_epoch_loss"]
