"""Pieces the training loops share: LR schedule, EMA, mini-batches, resumable checkpoints,
and DistributedDataParallel set-up under ``torchrun`` (gloo on CPU, nccl on GPU)."""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)


def build_seeded(factory, generator: torch.Generator):
    """Build a module whose default initialisations draw from ``generator``'s stream.

    torch's layers initialise from the global generator; forking it here keeps training
    reproducible from the run's seed without changing the caller's global random state.
    """
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory()


def cosine_with_warmup(optimizer, n_warmup: int, n_total: int, stretch: float = 1.1):
    """Linear warm-up, then cosine decay over ``stretch * n_total`` steps (LR never reaches 0,
    as the reference's stretched schedule)."""
    horizon = max(1, int(stretch * n_total))

    def factor(step: int) -> float:
        if step < n_warmup:
            return (step + 1) / max(1, n_warmup)
        progress = (step - n_warmup) / max(1, horizon - n_warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class Ema:
    """Exponential moving average of weights with the warm-up decay 1 - (1 + step)^(-2/3),
    capped at ``max_decay`` (the reference's EMAModel defaults)."""

    def __init__(self, model: nn.Module, max_decay: float = 0.9999):
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.max_decay = max_decay
        self.n_updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.n_updates += 1
        decay = min(self.max_decay, 1.0 - (1.0 + self.n_updates) ** (-2.0 / 3.0))
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].mul_(decay).add_(v.detach(), alpha=1.0 - decay)
            else:
                self.shadow[k].copy_(v)

    def copy_to(self, model: nn.Module) -> None:
        model.load_state_dict(self.shadow)


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE_PROCESS = DistInfo()


def init_distributed() -> DistInfo:
    """Join the process group when launched by ``torchrun`` (WORLD_SIZE > 1), else no-op."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size())


def wrap_ddp(model: nn.Module, dist_info: DistInfo) -> nn.Module:
    if dist_info.world_size <= 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model)


def minibatches(n_items: int, batch_size: int, generator: torch.Generator, dist_info: DistInfo):
    """Shuffled index batches; every rank draws the same permutation and takes its share."""
    order = torch.randperm(n_items, generator=generator)
    per_rank = max(1, batch_size // dist_info.world_size)
    step = per_rank * dist_info.world_size
    for start in range(0, n_items - step + 1 if n_items >= step else 1, step):
        chunk = order[start:start + step]
        mine = chunk[dist_info.rank * per_rank:(dist_info.rank + 1) * per_rank]
        if len(mine):
            yield mine


def save_resume_state(path: Path, stage: str, epoch: int, model: nn.Module, optimizer,
                      scheduler, extra: dict[str, torch.Tensor] | None = None,
                      run_tag: str = "") -> None:
    """Atomically write a resumable training state (tensors and plain numbers only).

    ``run_tag`` identifies the data and configuration; a state with another tag is not resumed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"stage": stage, "run_tag": run_tag, "epoch": epoch, "model": model.state_dict(),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "extra": extra or {}}, tmp)
    os.replace(tmp, path)


def load_resume_state(path: Path, stage: str, run_tag: str = "") -> dict | None:
    """The saved state of ``stage``, loaded with ``weights_only=True`` (never unpickles objects).

    None when there is none, or when it belongs to another run (other data or settings).
    """
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated file from a killed run: start the stage afresh
        log.warning("ignoring unreadable training state %s (%s)", path, e)
        return None
    if state.get("stage") != stage or state.get("run_tag", "") != run_tag:
        log.info("not resuming from %s: it belongs to another run", path)
        return None
    log.info("resuming %s from epoch %d (%s)", stage, state["epoch"] + 1, path)
    return state
