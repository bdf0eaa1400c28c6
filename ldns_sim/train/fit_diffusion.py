"""Denoiser training over normalised autoencoder latents: epsilon prediction, EMA weights.

Two objectives, one loop:
* the streaming (causal) denoiser is trained with clean-past teacher forcing: every bin gets
  its own timestep, and its prediction is the one the recurrent sampler will make with the
  clean latents it already emitted as context (``Denoiser.forward_teacher_forced``);
* the published whole-window (bidirectional) denoiser gets one timestep per window.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch
from tqdm import tqdm

from ldns_sim.diffusion.schedule import NoiseSchedule
from ldns_sim.nn.denoiser import Denoiser, DenoiserConfig, smooth_l1_or_mse
from ldns_sim.train.config import DiffusionTrain
from ldns_sim.train.loop import (
    SINGLE_PROCESS,
    DistInfo,
    Ema,
    build_seeded,
    cosine_with_warmup,
    load_resume_state,
    minibatches,
    save_resume_state,
    wrap_ddp,
)

log = logging.getLogger(__name__)


def with_presence(behaviour: torch.Tensor, drop_prob: float,
                  generator: torch.Generator) -> torch.Tensor:
    """Drop each window's behaviour with ``drop_prob`` and append the presence flag channel."""
    present = (torch.rand(behaviour.shape[0], generator=generator) >= drop_prob).float()
    present = present[:, None, None].expand(-1, 1, behaviour.shape[-1])  # (B, 1, L)
    return torch.cat([behaviour * present, present], dim=1)


def denoising_loss(net, model: Denoiser, schedule: NoiseSchedule, z0, behaviour, direction,
                   beta: float, generator: torch.Generator, cond_dropout: float = 0.0,
                   context_noise_max: int = 0) -> torch.Tensor:
    """Epsilon-prediction loss on a batch of clean normalised latents z0 (B, Z, L).

    Causal models: ``cond_dropout`` drops the behaviour of that fraction of windows (for
    classifier-free guidance); ``context_noise_max`` noises each window's context stream to a
    random level in [0, max] (noise augmentation against autoregressive drift).
    """
    n_batch, _, n_bins = z0.shape
    noise = torch.randn(z0.shape, generator=generator)
    if model.cfg.causal:
        if model.cfg.null_condition and behaviour is not None:
            behaviour = with_presence(behaviour, cond_dropout, generator)
        t = torch.randint(0, schedule.n_steps, (n_batch, n_bins), generator=generator)
        z_t = schedule.add_noise(z0, noise, t)
        t_ctx = torch.randint(0, context_noise_max + 1, (n_batch, 1), generator=generator)
        t_ctx = t_ctx.expand(n_batch, n_bins)
        z_ctx = z0
        if context_noise_max > 0:
            z_ctx = schedule.add_noise(z0, torch.randn(z0.shape, generator=generator), t_ctx)
        pred = net(z_ctx, z_t, t, behaviour, direction, t_ctx, teacher_forced=True)
    else:
        t = torch.randint(0, schedule.n_steps, (n_batch,), generator=generator)
        z_t = schedule.add_noise(z0, noise, t)
        pred = net(z_t, t, behaviour, direction)
    return smooth_l1_or_mse(pred, noise, beta).mean()


class _TrainView(torch.nn.Module):
    """Routes the two objectives through one ``forward`` so DDP sees every call."""

    def __init__(self, model: Denoiser):
        super().__init__()
        self.model = model

    def forward(self, *args, teacher_forced: bool = False):
        if teacher_forced:
            return self.model.forward_teacher_forced(*args)
        return self.model(*args)


def fit_denoiser(cfg: DiffusionTrain, model_cfg: DenoiserConfig, latents: torch.Tensor,
                 behaviour: torch.Tensor | None, direction: torch.Tensor | None,
                 val: tuple, generator: torch.Generator, dist: DistInfo = SINGLE_PROCESS,
                 resume_path: Path | None = None, show_progress: bool = True,
                 run_tag: str = ""):
    """Train a denoiser on latents (W, Z, L) (+ behaviour (W, B, L), direction (W, 2)).

    ``val`` is (latents, behaviour, direction) of validation windows. Returns the model with
    EMA weights and a report of the final training and validation losses.
    """
    schedule = NoiseSchedule()
    model = build_seeded(lambda: Denoiser(model_cfg, generator=generator), generator)
    net = wrap_ddp(_TrainView(model), dist)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = max(1, len(latents) // cfg.batch_size)
    n_total = cfg.epochs * steps_per_epoch
    sched = cosine_with_warmup(opt, int(cfg.warmup_frac * n_total), n_total, stretch=1.3)
    ema = Ema(model)
    stage = "causal_denoiser" if model_cfg.causal else "window_denoiser"
    t_start = time.perf_counter()
    start_epoch = 0
    state = load_resume_state(resume_path, stage, run_tag) if resume_path else None
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        ema.shadow = {k[4:]: v for k, v in state["extra"].items() if k.startswith("ema.")}
        ema.n_updates = int(state["extra"]["ema_n_updates"])
        start_epoch = state["epoch"] + 1

    def pick(x, idx):
        return None if x is None else x[idx]

    bar = tqdm(range(start_epoch, cfg.epochs), desc=stage.replace("_", " "), unit="epoch",
               disable=not (show_progress and dist.is_main))
    running = float("nan")
    first_epoch_loss = float("nan")
    for epoch in bar:
        model.train()
        for idx in minibatches(len(latents), cfg.batch_size, generator, dist):
            loss = denoising_loss(net, model, schedule, latents[idx], pick(behaviour, idx),
                                  pick(direction, idx), cfg.loss_beta, generator,
                                  cfg.cond_dropout, cfg.context_noise_max)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()
            ema.update(model)
            running = loss.item() if running != running else 0.95 * running + 0.05 * loss.item()
        bar.set_postfix(loss=f"{running:.4f}")
        if epoch == 0:
            first_epoch_loss = running
        last = epoch == cfg.epochs - 1
        if resume_path is not None and dist.is_main and (epoch % 10 == 9 or last):
            extra = {f"ema.{k}": v for k, v in ema.shadow.items()}
            extra["ema_n_updates"] = torch.tensor(ema.n_updates)
            save_resume_state(resume_path, stage, epoch, model, opt, sched, extra, run_tag)
    ema.copy_to(model)
    model.eval()
    with torch.no_grad():
        g = torch.Generator().manual_seed(1234)
        view = _TrainView(model)
        val_loss = denoising_loss(view, model, schedule, *val, cfg.loss_beta, g,
                                  cfg.cond_dropout, cfg.context_noise_max).item()
        sub_idx = torch.arange(min(len(latents), 512))
        train_loss = denoising_loss(view, model, schedule, latents[sub_idx],
                                    pick(behaviour, sub_idx), pick(direction, sub_idx),
                                    cfg.loss_beta, g, cfg.cond_dropout,
                                    cfg.context_noise_max).item()
    report = {f"{stage}_train_loss": train_loss, f"{stage}_val_loss": val_loss,
              f"{stage}_first_epoch_loss": first_epoch_loss,
              f"train_seconds_{stage}": time.perf_counter() - t_start,
              f"{stage}_epochs": cfg.epochs}
    return model, report
