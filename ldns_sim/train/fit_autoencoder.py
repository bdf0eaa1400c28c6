"""Autoencoder training: one explicit loop (Poisson NLL under coordinated dropout + latent
penalties, AdamW, stretched cosine LR, gradient clipping), keeping the weights of the epoch
with the best validation Poisson loss, as the reference picks its monkey checkpoint."""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import torch
from torch.nn import functional as F
from tqdm import tqdm

from ldns_sim.nn.autoencoder import AutoEncoder, AutoEncoderConfig
from ldns_sim.train.config import AutoEncoderTrain
from ldns_sim.train.loop import (
    SINGLE_PROCESS,
    DistInfo,
    build_seeded,
    cosine_with_warmup,
    load_resume_state,
    minibatches,
    save_resume_state,
    wrap_ddp,
)
from ldns_sim.train.losses import coordinated_dropout, latent_penalty, masked_poisson_nll

log = logging.getLogger(__name__)


@torch.no_grad()
def poisson_loss(model: AutoEncoder, counts: torch.Tensor, batch: int = 256) -> float:
    """Mean Poisson NLL of unmasked reconstruction over counts (W, N, L)."""
    total = 0.0
    for i in range(0, len(counts), batch):
        rates, _ = model(counts[i:i + batch])
        total += F.poisson_nll_loss(rates, counts[i:i + batch], log_input=False, full=True,
                                    reduction="sum").item()
    return total / counts.numel()


class _RateReadout(torch.nn.Module):
    """AE plus a linear read-out of behaviour from its rates, trained together (the read-out
    is discarded after training: the bundle holds the autoencoder only)."""

    def __init__(self, ae: AutoEncoder, n_behaviour: int):
        super().__init__()
        self.ae = ae
        self.readout = torch.nn.Conv1d(ae.cfg.n_neurons, n_behaviour, 1)

    def forward(self, counts):
        rates, latents = self.ae(counts)
        return rates, latents, self.readout(rates)  # (B, n_behaviour, L)


def fit_autoencoder(cfg: AutoEncoderTrain, train_counts: torch.Tensor, val_counts: torch.Tensor,
                    generator: torch.Generator, dist: DistInfo = SINGLE_PROCESS,
                    resume_path: Path | None = None, show_progress: bool = True,
                    run_tag: str = "", train_behaviour: torch.Tensor | None = None):
    """Train on windows (W, N, L); return (model with the best-validation weights, report).

    ``train_behaviour`` (W, n_behaviour, L), normalised, is used when ``cfg.behaviour_beta``
    is > 0: the rates must then also give the behaviour through a linear read-out.
    """
    n_neurons = train_counts.shape[1]
    model = build_seeded(lambda: AutoEncoder(AutoEncoderConfig(
        n_neurons=n_neurons, n_latents=cfg.n_latents, n_hidden=cfg.n_hidden,
        n_blocks=cfg.n_blocks, n_state=cfg.n_state, causal=cfg.causal_encoder,
    ), generator=generator), generator)
    readout = None
    if cfg.behaviour_beta > 0 and train_behaviour is not None:
        readout = build_seeded(lambda: _RateReadout(model, train_behaviour.shape[1]), generator)
    trained = model if readout is None else readout
    opt = torch.optim.AdamW(trained.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = max(1, len(train_counts) // cfg.batch_size)
    n_total = cfg.epochs * steps_per_epoch
    sched = cosine_with_warmup(opt, int(cfg.warmup_frac * n_total), n_total)
    start_epoch, best = 0, (float("inf"), -1, None)
    seed = generator.initial_seed()
    state = load_resume_state(resume_path, "autoencoder", run_tag) if resume_path else None
    if state is not None:
        trained.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        start_epoch = state["epoch"] + 1
        extra = state["extra"]
        best_weights = {k[5:]: v for k, v in extra.items() if k.startswith("best.")}
        best = (float(extra["best_val"]), int(extra["best_epoch"]), best_weights)
        # not bit-identical to an uninterrupted run: the shuffling stream restarts here
        generator.manual_seed(int(extra["seed"]) + start_epoch)
    net = wrap_ddp(trained, dist)
    history = []
    bar = tqdm(range(start_epoch, cfg.epochs), desc="autoencoder", unit="epoch",
               disable=not (show_progress and dist.is_main))
    for epoch in bar:
        model.train()
        for idx in minibatches(len(train_counts), cfg.batch_size, generator, dist):
            counts = train_counts[idx]  # (B, N, L)
            masked, loss_mask = coordinated_dropout(counts, cfg.cd_prob, generator)
            rates, latents, *read = net(masked)
            loss = masked_poisson_nll(rates, counts, loss_mask) + latent_penalty(
                latents, counts.numel(), cfg.l2_beta, cfg.smooth_beta)
            if read:
                loss = loss + cfg.behaviour_beta * F.mse_loss(read[0], train_behaviour[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            # the autoencoder's gradients (the read-out's 2 x N weights are not clipped)
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()
        model.eval()
        val = poisson_loss(model, val_counts)
        history.append(val)
        if val < best[0]:
            best = (val, epoch, copy.deepcopy(model.state_dict()))
        bar.set_postfix(val_poisson=f"{val:.4f}", best_epoch=best[1])
        if resume_path is not None and dist.is_main:
            extra = {f"best.{k}": v for k, v in best[2].items()}
            extra |= {"seed": torch.tensor(seed), "best_val": torch.tensor(best[0]),
                      "best_epoch": torch.tensor(best[1])}
            save_resume_state(resume_path, "autoencoder", epoch, trained, opt, sched, extra,
                              run_tag)
    if best[2] is not None:
        model.load_state_dict(best[2])
    model.eval()
    report = {"ae_best_epoch": best[1], "ae_val_poisson_nll": best[0],
              "ae_first_epoch_val_poisson_nll": history[0] if history else float("nan"),
              "ae_train_poisson_nll": poisson_loss(model, train_counts),
              "ae_epochs": cfg.epochs}
    return model, report
