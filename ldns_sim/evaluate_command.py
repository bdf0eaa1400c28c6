"""``ldns-sim evaluate``: score a model, a samples file or a recorded session against a recording.

What is compared with what:

* The **real set** is the ``--split`` trials of ``--data`` (default ``test``).
* The **candidate** is one of
    - a model bundle (a shipped name or a directory with ``config.json``). It is sampled on
      the real trials' own conditions: one generated trial per real trial
      (``--samples-per-trial K``: K of them), with that trial's length and behaviour (velocity
      models) or direction (direction models). Two sets:
      ``LDNS (streamed)``, the causal bin-by-bin sampler that ``ldns-sim stream`` runs, and,
      when the bundle has one, ``LDNS (window)``, the published whole-window denoiser.
      Trial lengths are kept exactly. The streaming sampler, the decoder and the spike-history
      model are all causal, so all trials are sampled in one batch at the longest trial's
      length and each is cut to its own length: bin t never sees the padding after it, and the
      result is the same as sampling each length on its own. The window denoiser sees the
      whole window, so trials are grouped by length and each group is sampled on its own,
      at the trial's length (the S4 layers accept any length; the training windows were
      ``meta.window_bins`` long).
    - a samples file: ``.npz`` (SpikeData) or ``.nwb`` written by ``ldns-sim sample``. Its
      trials are compared as they are, except that when the lengths differ from the real
      trials', both sets are cut to a **common length** L (the shortest trial of either set,
      first L bins of every trial), so both cover the same part of a trial.
    - a session ``.nwb`` recorded by ``ldns-sim stream --record`` (continuous, read in 10 s
      segments by the ``ldns_session`` adapter). All its segments are used. The real trials
      are cut to their first L bins (L = the shortest real trial, or a segment if shorter)
      and the session is cut into consecutive L-bin pieces (a remainder shorter than L at the
      end of each segment is dropped).
* The **baselines**, fitted on the ``train`` split and generated on the real set's trials (same
  lengths, behaviour and directions; K per real trial with ``--samples-per-trial K``):
  PSTH-Poisson per direction, the real trials shuffled per neuron within condition, a
  dichotomized Gaussian and a homogeneous Poisson. GPFA is left out (minutes to fit, and an
  optional dependency).

Then :func:`ldns_sim.evaluation.evaluate_sets` (data floor and bootstrap intervals) prints a
table on stdout; ``--report DIR`` writes metrics.json, the PNGs and index.html. The choices
above and the time each stage took are stored in the result's settings (JSON and HTML).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import time
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ldns_sim.core import DEFAULT_STEP_SPACING, SpikeData
from ldns_sim.errors import ConfigError, DataError

if TYPE_CHECKING:  # the simulator imports torch: loaded only when a model is sampled
    from ldns_sim.simulator import SamplerSettings

log = logging.getLogger(__name__)

STREAMED = "LDNS (streamed)"
WINDOW = "LDNS (window)"
GPFA_NAME = "GPFA (elephant)"
BASELINE_NAMES = ("PSTH-Poisson", "trial-shuffled", "dichotomized Gaussian",
                  "homogeneous Poisson")


def run_evaluate(args: argparse.Namespace) -> int:
    """Run ``ldns-sim evaluate`` with parsed arguments; returns the exit code (0).

    Parameters
    ----------
    args
        From ``ldns_sim.cli.build_parser()``: ``candidate``, ``data``, ``adapter``, ``split``,
        ``report``, ``steps``, ``samples_per_trial``, ``n_boot``, ``seed``.

    Raises
    ------
    LdnsSimError
        A subclass naming the bad input (file, field, value) in one line.
    """
    from ldns_sim.data.load import load_spike_data
    from ldns_sim.evaluation import evaluate_sets, write_report

    _check_numbers(args)
    timing_s: dict[str, float] = {}
    clock = partial(_timed, timing_s)
    seeds = np.random.SeedSequence(args.seed).spawn(3)  # evaluation, baselines, sampling
    with clock("load"):
        data = load_spike_data(args.data, args.adapter)
        real, train = data.select(args.split), data.select("train")
    cands, real, notes = _candidate_sets(args, real, seeds[2], clock)
    with clock("baselines"):
        like = repeat_trials(real, args.samples_per_trial)
        sets = {**cands, **make_baselines(train, like, np.random.default_rng(seeds[1]))}
    with clock("metrics"):
        held_out = args.split != "train"
        result = evaluate_sets(real, sets, np.random.default_rng(seeds[0]), args.n_boot,
                               decoder_data=train if held_out else None)
    settings = {**result.settings, "candidate": args.candidate, "data": args.data,
                "split": args.split, "samples_per_trial": args.samples_per_trial, **notes,
                "baselines": f"fitted on the train split ({train.n_trials} trials), generated "
                             f"on the {args.split} trials' conditions", "seed": args.seed}
    result = replace(result, settings={**settings, "timing_s": timing_s})
    print_table(result.format_table())
    if held_out and result.settings["decode_r2_real"] is not None:
        print_table(f"decode_r2: ridge decoder fitted on the {train.n_trials} train trials; "
                    f"on the real {args.split} trials it gives R^2 "
                    f"{result.settings['decode_r2_real']:.3f}")
    if args.report:
        with clock("report"):
            write_report(result, real, sets, args.report,
                         title=f"ldns-sim evaluate: {Path(args.candidate).name} vs "
                               f"{Path(args.data).name} ({args.split} split)")
        log.info("report written to %s", Path(args.report) / "index.html")
    log.info("time per stage (s): %s", ", ".join(f"{k} {v:.1f}" for k, v in timing_s.items()))
    return 0


def print_table(text: str) -> None:
    """The result table goes to stdout (logging goes to stderr)."""
    print(text)  # noqa: T201


@contextmanager
def _timed(timing_s: dict[str, float], stage: str):
    """Add the block's duration (s) to ``timing_s[stage]``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - start
        timing_s[stage] = round(timing_s.get(stage, 0.0) + elapsed, 3)


def _check_numbers(args: argparse.Namespace) -> None:
    if args.steps < 1:
        raise ConfigError(f"--steps {args.steps}: expected at least 1 denoising step")
    if args.samples_per_trial < 1:
        raise ConfigError(f"--samples-per-trial {args.samples_per_trial}: expected at least 1")
    if args.n_boot < 0:
        raise ConfigError(f"--n-boot {args.n_boot}: expected 0 (no intervals) or more")


def _candidate_sets(args, real: SpikeData, seed: np.random.SeedSequence, clock
                    ) -> tuple[dict[str, SpikeData], SpikeData, dict[str, str]]:
    """``({name: generated set}, the real set as compared, notes for the settings)``."""
    from ldns_sim.data.load import load_spike_data

    path = Path(args.candidate)
    kind = _candidate_kind(path)
    if kind != "model" and args.samples_per_trial != 1:
        raise ConfigError(f"--samples-per-trial {args.samples_per_trial}: only a model can draw "
                          f"more trials; {path.name} is a {kind} file, compared as it is")
    if kind == "model":
        with clock("sampling"):
            sets, notes = sample_model(args.candidate,
                                       repeat_trials(real, args.samples_per_trial), args.steps,
                                       seed,
                                       guidance=args.guidance,
                                       context_noise_t=args.context_noise,
                                       step_spacing=args.step_spacing)
        return sets, real, {"candidate_kind": "model", **notes}
    with clock("load"):
        other = _compatible_behaviour(load_spike_data(path), real)
    if kind == "session":
        pieces, real, note = session_pieces(other, real)
        return {f"session ({path.name})": pieces}, real, {"candidate_kind": "session",
                                                          "trial_lengths": note}
    other, real, note = common_length(other, real)
    return {f"samples ({path.name})": other}, real, {"candidate_kind": "samples",
                                                     "trial_lengths": note}


def repeat_trials(real: SpikeData, k: int) -> SpikeData:
    """``real``'s trials ``k`` times over (all of them, then all again): the conditions and
    lengths on which generated sets draw ``k`` trials per real trial."""
    return real if k == 1 else real.take(np.tile(np.arange(real.n_trials), k))


def _candidate_kind(path: Path) -> str:
    """``"samples"``, ``"session"`` or ``"model"``; ConfigError for anything else."""
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".npz":
            return "samples"
        if suffix == ".nwb":
            from ldns_sim.data.nwb_trials_writer import is_trials_nwb

            return "samples" if is_trials_nwb(path) else "session"
        raise ConfigError(f"candidate {path}: unknown file type {path.suffix!r}; expected a "
                          f"samples .npz/.nwb, a session .nwb or a model bundle")
    if path.suffix.lower() in (".npz", ".nwb"):
        raise DataError(f"candidate {path}: no such file")
    return "model"


def _compatible_behaviour(other: SpikeData, real: SpikeData) -> SpikeData:
    """``other`` without behaviour when its channels cannot be scored against ``real``'s."""
    if other.behaviour is None or real.behaviour is None:
        return other
    if other.n_behaviour != real.n_behaviour:
        log.warning("%s: %d behaviour channels %s, the real data has %d %s; decode_r2 is "
                    "left out for it", other.source, other.n_behaviour, other.behaviour_names,
                    real.n_behaviour, real.behaviour_names)
        return replace(other, behaviour=None, behaviour_names=())
    return other


def _cut(data: SpikeData, n_bins: int) -> SpikeData:
    """The first ``n_bins`` bins of every trial (all trials must be at least that long)."""
    def first(seq):
        return None if seq is None else tuple(x[:n_bins] for x in seq)

    return replace(data, counts=first(data.counts), behaviour=first(data.behaviour),
                   true_rates=first(data.true_rates))


def _lengths(data: SpikeData) -> np.ndarray:
    return np.array([len(c) for c in data.counts])


def common_length(samples: SpikeData, real: SpikeData) -> tuple[SpikeData, SpikeData, str]:
    """Cut both sets to their shortest trial unless they have the same trial lengths.

    Returns
    -------
    ``(samples, real, note)``: the sets as compared and a sentence saying what was done.
    """
    lengths = np.concatenate([_lengths(samples), _lengths(real)])
    if np.array_equal(np.sort(_lengths(samples)), np.sort(_lengths(real))):
        return samples, real, "samples and real trials have the same lengths: compared whole"
    n_bins = int(lengths.min())
    note = (f"trial lengths differ (samples {_lengths(samples).min()}-"
            f"{_lengths(samples).max()} bins, real {_lengths(real).min()}-"
            f"{_lengths(real).max()}): both cut to their first {n_bins} bins "
            f"({n_bins * real.bin_s:g} s)")
    log.info(note)
    return _cut(samples, n_bins), _cut(real, n_bins), note


def session_pieces(session: SpikeData, real: SpikeData) -> tuple[SpikeData, SpikeData, str]:
    """Cut a continuous session's segments into pieces as long as the shortest real trial.

    Returns
    -------
    ``(pieces, real, note)``: the session as consecutive ``L``-bin pieces (all segments,
    whatever their split label), the real trials cut to their first ``L`` bins, and a
    sentence saying so. ``L`` is the shortest real trial, or the shortest segment if shorter.
    """
    n_bins = int(min(_lengths(real).min(), _lengths(session).min()))
    counts, behaviour, rates = [], [], []
    for i, c in enumerate(session.counts):
        for start in range(0, len(c) - n_bins + 1, n_bins):
            piece = slice(start, start + n_bins)
            counts.append(c[piece])
            if session.behaviour is not None:
                behaviour.append(session.behaviour[i][piece])
            if session.true_rates is not None:
                rates.append(session.true_rates[i][piece])
    pieces = replace(session, counts=tuple(counts), split=np.full(len(counts), "test"),
                     behaviour=tuple(behaviour) if behaviour else None,
                     true_rates=tuple(rates) if rates else None, direction_rad=None,
                     align_bin=None)
    note = (f"session cut into {len(counts)} consecutive pieces of {n_bins} bins "
            f"({n_bins * real.bin_s:g} s, the shortest real trial or segment); real trials cut "
            f"to their first {n_bins} bins")
    log.info(note)
    return pieces, _cut(real, n_bins), note


def make_baselines(train: SpikeData, like: SpikeData, rng: np.random.Generator
                   ) -> dict[str, SpikeData]:
    """The reference sets: fitted on ``train``, generated on ``like``'s trials.

    Each baseline draws from its own child of ``rng``, so one baseline's draws do not shift
    another's. The trial-shuffled set permutes ``like``'s own trials.
    """
    from ldns_sim.evaluation.baselines import (
        dichotomized_gaussian,
        homogeneous_poisson,
        psth_poisson,
        trial_shuffled,
    )

    r = rng.spawn(4)
    makers = (lambda g: psth_poisson(train, like, g), lambda g: trial_shuffled(like, g),
              lambda g: dichotomized_gaussian(train, like, g),
              lambda g: homogeneous_poisson(train, like, g))
    out = {}
    for name, make, g in zip(BASELINE_NAMES, makers, r):
        start = time.perf_counter()
        out[name] = make(g)
        log.info("baseline %s: %.1f s", name, time.perf_counter() - start)
    try:  # a latent-variable model from a maintained package, when it is installed
        import elephant  # noqa: F401
    except ImportError:
        log.info("GPFA baseline skipped: pip install 'ldns-sim[gpfa]' (elephant) to add it")
        return out
    from ldns_sim.evaluation.gpfa_baseline import gpfa

    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # elephant prints its progress
        out[GPFA_NAME] = gpfa(train, like, rng.spawn(1)[0], n_latents=8, em_max_iters=20)
    log.info("baseline %s: %.1f s (8 latents, 20 EM iterations)", GPFA_NAME,
             time.perf_counter() - start)
    return out


def sample_model(model: str, real: SpikeData, n_steps: int, seed: np.random.SeedSequence,
                 eta: float = 0.0, guidance: float | None = None,
                 context_noise_t: int | None = None, step_spacing: str = DEFAULT_STEP_SPACING
                 ) -> tuple[dict[str, SpikeData], dict[str, str]]:
    """Generate one trial per trial of ``real`` with a model bundle, on that trial's conditions
    (``repeat_trials(real, K)`` for K per real trial).

    Parameters
    ----------
    model
        Shipped model name or bundle directory.
    real
        The trials whose lengths, behaviour and directions the samples reproduce.
    n_steps
        Denoising steps (per bin for the streaming sampler, per window for the window one).
    seed
        Seeds the samplers (one torch generator each).
    eta
        0: deterministic DDIM; 1 with ``n_steps = 1000``: ancestral DDPM.
    guidance
        Classifier-free guidance weight of the streaming sampler (None: the model's default).
    context_noise_t
        Noise level at which the streaming sampler's emitted latents enter its context (None:
        the model's default).
    step_spacing
        Where the steps sit among the training timesteps (``NoiseSchedule.sampling_timesteps``).

    Returns
    -------
    ``({"LDNS (streamed)": ..., "LDNS (window)": ...}, notes)``; the window set only when the
    bundle has a whole-window denoiser. Each set carries ``real``'s behaviour, directions,
    split and alignment, and the model's rates (counts per bin) as ``true_rates``.
    """
    from ldns_sim.bundle import load_bundle
    from ldns_sim.pretrained import resolve_model
    from ldns_sim.simulator import SamplerSettings, describe_settings
    from ldns_sim.threads import one_thread

    bundle = load_bundle(resolve_model(model))
    behaviour, direction = _conditions(bundle, real, model)
    stream_seed, window_seed = (int(s.generate_state(1)[0]) for s in seed.spawn(2))
    settings = SamplerSettings(n_steps=n_steps, eta=eta, guidance=guidance,
                               context_noise_t=context_noise_t, step_spacing=step_spacing)
    with one_thread():  # many small ops: thread pools only slow them (ldns_sim.threads)
        sets = _sample_sets(bundle, real, behaviour, direction, settings,
                            (stream_seed, window_seed))
    notes = {"model": f"{bundle.meta.name} (sha256 {bundle.sha256[:12]})",
             "sampler": f"streamed: {describe_settings(bundle, settings)}",
             "trial_lengths": "generated trials have the real trials' lengths; streamed: one "
                              "batch at the longest length, each trial cut to its own (exact: "
                              "the sampler is causal)"}
    if bundle.window_denoiser is not None:
        notes["sampler"] += (f"; window: "
                             f"{describe_settings(bundle, replace(settings, mode='window'))}")
        notes["trial_lengths"] += ("; window: trials grouped by length, each sampled at its "
                                   f"length (trained on {bundle.meta.window_bins}-bin windows)")
    else:
        log.info("%s has no whole-window denoiser: only the streaming sampler is evaluated",
                 bundle.meta.name)
    return sets, notes


def _sample_sets(bundle, real: SpikeData, behaviour, direction, settings: SamplerSettings,
                 seeds: tuple[int, int]) -> dict[str, SpikeData]:
    """``settings``: the streaming sampler's; the window sampler takes its steps, eta and
    step spacing."""
    start = time.perf_counter()
    sets = {STREAMED: _sample_streamed(bundle, real, behaviour, direction, settings, seeds[0])}
    log.info("%s: %d trials in %.1f s", STREAMED, real.n_trials, time.perf_counter() - start)
    if bundle.window_denoiser is not None:
        start = time.perf_counter()
        sets[WINDOW] = _sample_window(bundle, real, behaviour, direction, settings.n_steps,
                                      seeds[1], settings.eta, settings.step_spacing)
        log.info("%s: %d trials in %.1f s", WINDOW, real.n_trials, time.perf_counter() - start)
    return sets


def _conditions(bundle, real: SpikeData, model: str
                ) -> tuple[list[np.ndarray] | None, np.ndarray | None]:
    """Per-trial behaviour (velocity models) and directions (direction models) of ``real``."""
    meta = bundle.meta
    if bundle.n_neurons != real.n_neurons:
        raise DataError(f"model {model!r} has {bundle.n_neurons} neurons, {real.source} has "
                        f"{real.n_neurons}; evaluate a model on the data it was trained on")
    if not np.isclose(meta.bin_s, real.bin_s):
        raise DataError(f"model {model!r} uses {meta.bin_s * 1e3:g} ms bins, {real.source} has "
                        f"{real.bin_s * 1e3:g} ms bins")
    behaviour = direction = None
    if meta.condition == "velocity":
        n_model = len(bundle.behaviour_scale)
        if real.behaviour is None or real.n_behaviour != n_model:
            raise DataError(f"model {model!r} is conditioned on {n_model} behaviour channels "
                            f"{tuple(meta.behaviour_names)}, {real.source} has "
                            f"{real.n_behaviour} {real.behaviour_names}")
        behaviour = [np.asarray(b, dtype=np.float32) for b in real.behaviour]
    elif meta.condition == "direction":
        if real.direction_rad is None or not np.isfinite(real.direction_rad).all():
            raise DataError(f"model {model!r} is conditioned on reach direction; {real.source} "
                            f"has trials without a direction")
        direction = np.asarray(real.direction_rad, dtype=float)
    return behaviour, direction


def _as_set(real: SpikeData, counts: list[np.ndarray], rates: list[np.ndarray], name: str
            ) -> SpikeData:
    return replace(real, counts=tuple(counts), true_rates=tuple(rates),
                   source=f"{name} sampled on {real.source}")


def _sample_streamed(bundle, real: SpikeData, behaviour, direction,
                     settings: SamplerSettings, seed: int) -> SpikeData:
    from ldns_sim.simulator import sample_trials

    lengths = _lengths(real)
    n_max = int(lengths.max())
    padded = None
    if behaviour is not None:  # hold the last sample past a trial's end (never seen: causal)
        padded = np.stack([np.pad(b, ((0, n_max - len(b)), (0, 0)), mode="edge")
                           for b in behaviour])  # (n_trials, n_max, n_behaviour)
    gen = sample_trials(bundle, real.n_trials, n_max, padded, direction,
                        replace(settings, mode="stream"), seed=seed)
    return _as_set(real, [gen.counts[i, :n] for i, n in enumerate(lengths)],
                   [gen.rates[i, :n] for i, n in enumerate(lengths)], STREAMED)


def _sample_window(bundle, real: SpikeData, behaviour, direction, n_steps: int, seed: int,
                   eta: float = 0.0, step_spacing: str = DEFAULT_STEP_SPACING) -> SpikeData:
    from ldns_sim.simulator import SamplerSettings, sample_trials

    lengths = _lengths(real)
    counts: list[np.ndarray] = [np.empty(0)] * real.n_trials
    rates: list[np.ndarray] = [np.empty(0)] * real.n_trials
    settings = SamplerSettings(n_steps=n_steps, eta=eta, mode="window", step_spacing=step_spacing)
    for k, n_bins in enumerate(np.unique(lengths)):
        idx = np.flatnonzero(lengths == n_bins)
        beh = None if behaviour is None else np.stack([behaviour[i] for i in idx])
        gen = sample_trials(bundle, len(idx), int(n_bins), beh,
                            None if direction is None else direction[idx], settings,
                            seed=seed + k)
        for j, i in enumerate(idx):
            counts[i], rates[i] = gen.counts[j], gen.rates[j]
    return _as_set(real, counts, rates, WINDOW)
