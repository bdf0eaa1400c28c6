"""Hyperparameters of one training run, as frozen dataclasses (validated by pydantic at the CLI).

Presets: ``default`` sizes models for minutes of CPU training on ~100 neurons at 50 ms bins
(the shipped M1 model); ``lorenz`` follows the reference's Lorenz sizes where CPU time allows;
``tiny`` is for tests. Every departure from the reference is named in its field's comment.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class AutoEncoderTrain:
    n_latents: int = 24
    n_hidden: int = 96
    n_blocks: int = 2
    n_state: int = 32
    causal_encoder: bool = False
    window_bins: int = 48
    """As long as the diffusion windows, whose latents it encodes: the bidirectional encoder does
    not carry over to longer windows (M1: trained on 32 bins, the mean rate of each neuron
    decoded from 32 / 48 / 64-bin windows was off by 0.55 / 1.15 / 1.72 Hz RMS)."""
    stride_bins: int = 8
    batch_size: int = 64
    epochs: int = 120
    lr: float = 1e-3
    weight_decay: float = 0.01
    cd_prob: float = 0.3
    """Reference: 0.5 for MC_Maze at 5 ms bins. At 50 ms bins (M1 centre-out) 0.3 with a weak
    smoothness penalty let the rates keep the velocity tuning: a decoder fitted on real spikes
    read velocity from Poisson draws of the rates with R^2 0.43 vs -0.02 (val, 0.5 / 0.2)."""
    l2_beta: float = 0.001
    smooth_beta: float = 0.01
    """Reference 0.2 (monkey, 5 ms bins); 50 ms bins change faster relative to a bin."""
    grad_clip: float = 2.0
    warmup_frac: float = 0.05
    behaviour_beta: float = 0.01
    """Velocity models: weight of a behaviour read-out loss, the mean squared error of a linear
    map from the rates to the normalised behaviour, trained with the autoencoder and then
    discarded (not in the reference, whose autoencoder sees no behaviour). Without it the rates
    lose velocity tuning that the spikes have: on M1 (val split), a ridge decoder fitted on real
    spikes read the velocity from Poisson draws of the reconstructed rates with R^2 0.39
    against 0.70 from the real spikes (more latents or less smoothing: 0.42-0.43); with
    beta 0.005 / 0.01 / 0.02 / 0.1: 0.56 / 0.58 / 0.58 / 0.54, at a validation Poisson NLL of
    0.7670 / 0.7678 / 0.7693 / 0.7821 against 0.7654 (docs/design.md item 9). Not used for
    direction models: one M1 direction model trained with it sampled a population-count
    distribution further from the test trials (KL 0.043) than one without (0.033)."""


@dataclass(frozen=True)
class DiffusionTrain:
    n_hidden: int = 64
    n_blocks: int = 3
    n_state: int = 32
    window_bins: int = 48
    """Training windows; the streaming denoiser's memory is made to fade within them."""
    stride_bins: int = 8
    concatenate_trials: bool = True
    """Cut the training windows from the train trials laid end to end (velocity and
    unconditioned models), so that windows also span the junctions between trials as a
    continuous stream does; direction models keep per-trial windows (one angle per window).
    Cut from single trials, every window began at or near a trial's start: the model learned
    the trial-time course and, streamed past one window, stayed in the late-trial regime
    (M1: latent mean -0.3, std 1.5 in a long stream)."""
    direction_window_bins: int | None = 64
    """Direction models: train the diffusion on one window per train trial, its first
    ``direction_window_bins`` bins (shorter trials are left out), so that the empty context
    every generated direction trial starts from means "trial start"; None: windows every
    ``stride_bins`` from each trial, as for the other conditions (the recipe until session 6).
    M1 val trials, 4 trailing steps, two training seeds each: population-count KL 0.019 /
    0.026 and correlation RMSE 0.035 / 0.038 from trial starts, against 0.0094 / 0.028 and
    0.046 / 0.050 with windows every 8 bins (PSTH-Poisson: 0.024 and 0.040;
    docs/benchmarks.md 1.2)."""
    direction_epochs: int = 1000
    """Epochs of a direction model trained from trial starts: its ~170 windows (M1) make about
    2,000 optimizer steps, as 150 epochs of the ~1,900 windows of a velocity model do."""
    batch_size: int = 128
    epochs: int = 150
    lr: float = 1e-3
    weight_decay: float = 0.01
    loss_beta: float = 0.05
    """SmoothL1 beta (reference: 0.05 for conditioned monkey models); 0 means MSE (Lorenz)."""
    grad_clip: float = 1.0
    warmup_frac: float = 0.05
    train_window_denoiser: bool = False
    """Also train the published bidirectional whole-window denoiser (offline sampling only)."""
    cond_dropout: float = 0.1
    """Streaming denoiser: fraction of windows trained without behaviour, for classifier-free
    guidance (0: no guidance possible, as the reference). On M1 (val split, 5 steps), the
    velocity read from sampled latents by a decoder fitted on real latents went from R^2 0.36
    (no guidance) to 0.62-0.64 with guidance 2-3, against 0.64 on real latents."""
    guidance: float = 1.5
    """Default guidance weight recorded in the model (used when sampling; it does not change
    training). Chosen on the M1 val split for this recipe (with the autoencoder's velocity
    read-out), w = 1 / 1.5 / 2 / 3: population-count KL 0.027 / 0.009 / 0.023 / 0.096, pairwise
    correlation RMSE 0.031 / 0.030 / 0.033 / 0.041, decode R^2 0.43 / 0.55 / 0.56 / 0.42
    (docs/benchmarks.md 1.2). The earlier recipe's val choice was 3."""
    context_noise_max: int = 999
    """Streaming denoiser: contexts noised to a random level up to this timestep in training
    (without it, the latent measure above stayed at 0.18-0.33 even with guidance). Noisier
    contexts make the model lean on the behaviour rather than on its own past: M1 test trials,
    velocity decoded from the sampled spikes (plain conditional model, w = 1): R^2 -0.04 / 0.20
    / 0.28 for a maximum of 200 / 600 / 999."""
    context_noise_t: int = 300
    """Default context noise level at sampling, recorded in the model: each emitted latent
    enters the context re-noised to this timestep. With a clean context (0) a long M1 stream
    settled within 100 bins into a corner of latent space, the same for every seed (per-latent
    means 0.7 SD from the real ones, population rate 0.8 Hz low) and stayed there; re-noised
    at 300 it follows the real latents (0.17 SD) and the real rate. M1 val trials, velocity
    model, w = 1.5, 0 / 300 / 400 / 500: count KL 0.0086 / 0.0080 / 0.0098 / 0.0089, correlation
    RMSE 0.031 / 0.032 / 0.032 / 0.033, rate RMSE 1.02 / 0.69 / 0.68 / 0.67 Hz, decode R^2
    0.57 / 0.62 / 0.62 / 0.63 (docs/benchmarks.md 1.2; the long streams: 2.3). Direction
    models, whose windows are single trials, record 0: on val 200 and 400 raised their count KL
    from 0.033 to 0.064 and 0.157."""


@dataclass(frozen=True)
class HistoryTrain:
    n_history: int = 5
    iterations: int = 100
    """Maximum L-BFGS iterations (full batch)."""
    max_count: int = 20
    dispersion: bool = True
    """Fit a per-neuron count dispersion (truncated COM-Poisson) rather than Poisson counts. On
    M1 (50 ms bins), held-out test trials: Fano factor of counts drawn from the autoencoder's
    rates 1.19 (Poisson) vs 0.91 (dispersion) against 0.91 real; NLL 0.780 vs 0.737 per entry;
    velocity read from the draws by a ridge decoder fitted on real spikes R^2 0.39 vs 0.47."""


@dataclass(frozen=True)
class CalibrationTrain:
    conditions: tuple[str, ...] = ("direction",)
    """Models whose observation intercept is refitted after training so that their samples on
    the train trials' conditions have the train trials' per-neuron mean counts
    (``ldns_sim.train.calibrate_rates``). M1 test trials, 5 generated per real trial, four
    direction training runs without / with it: population-count KL 0.016 / 0.015, 0.036 /
    0.012, 0.014 / 0.015, 0.060 / 0.029 (PSTH-Poisson 0.021), per-neuron rate RMSE 1.1-1.9 Hz
    without, 0.30-0.46 Hz with (six runs; docs/benchmarks.md 1.2). Velocity models are left as
    they are for now (their samples' population rate was within 1 % of the data's;
    calibrated by hand, ``m1-velocity`` was the same or better on every val statistic, not
    yet measured on test)."""
    samples_per_trial: int = 5
    iterations: int = 10
    """Newton steps at most (each one pass of the observation model over the sampled rates)."""


@dataclass(frozen=True)
class TrainConfig:
    condition: str = "velocity"
    """velocity | direction | none."""
    seed: int = 0
    ae: AutoEncoderTrain = field(default_factory=AutoEncoderTrain)
    diffusion: DiffusionTrain = field(default_factory=DiffusionTrain)
    history: HistoryTrain = field(default_factory=HistoryTrain)
    calibration: CalibrationTrain = field(default_factory=CalibrationTrain)


def preset(name: str) -> TrainConfig:
    """A named preset: ``default``, ``lorenz`` or ``tiny``."""
    base = TrainConfig()
    if name == "default":
        return base
    if name == "lorenz":
        return replace(
            base, condition="none",
            ae=replace(base.ae, n_latents=8, n_hidden=128, window_bins=256, stride_bins=256,
                       batch_size=64, epochs=60, cd_prob=0.2, l2_beta=0.01, smooth_beta=0.01),
            diffusion=replace(base.diffusion, window_bins=256, stride_bins=256, batch_size=64,
                              epochs=150, loss_beta=0.0, train_window_denoiser=True,
                              cond_dropout=0.0, guidance=1.0, context_noise_max=0,
                              context_noise_t=0),
            history=replace(base.history, n_history=20),
        )
    if name == "tiny":
        return replace(
            base,
            ae=replace(base.ae, n_latents=4, n_hidden=32, n_blocks=1, n_state=8, window_bins=16,
                       stride_bins=8, epochs=30, batch_size=32),
            diffusion=replace(base.diffusion, n_hidden=32, n_blocks=2, n_state=8, window_bins=16,
                              stride_bins=8, epochs=30, batch_size=32, direction_window_bins=16,
                              direction_epochs=30),
            history=replace(base.history, iterations=30, n_history=3),
        )
    raise ValueError(f"unknown preset {name!r}; expected default, lorenz or tiny")
