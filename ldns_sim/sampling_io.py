"""``ldns-sim sample``: choose the conditions, sample trials, write them as SpikeData.

Conditions, by the model's kind:
* velocity: the behaviour of a recording's test trials (``--condition-from DATA``), cut to the
  trial length, or scripted centre-out reaches scaled to the model's typical peak speed;
* direction: ``--direction DEG`` for every trial, the directions of ``--condition-from``
  trials, or the 8 centre-out directions in turn;
* none: nothing.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ldns_sim.bundle import ModelBundle
from ldns_sim.core import SpikeData
from ldns_sim.errors import ConfigError, DataError
from ldns_sim.simulator import SamplerSettings, describe_settings, sample_trials


def scripted_reaches(n_trials: int, n_bins: int, bin_s: float, peak_speed: float,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Centre-out reach velocities (n_trials, n_bins, 2) and their directions (n_trials,).

    Each trial starts 20% into the window with a reach to one of 8 targets in a seeded order.
    """
    from ldns_sim.sources.script_source import ScriptedCenterOut

    reach_s = min(0.6, 0.35 * n_bins * bin_s)
    behaviour = np.zeros((n_trials, n_bins, 2), dtype=np.float32)
    directions = np.zeros(n_trials)
    for i in range(n_trials):
        script = ScriptedCenterOut(n_targets=8, reach_s=reach_s, hold_s=n_bins * bin_s,
                                   return_s=reach_s, peak_speed=peak_speed,
                                   rng=np.random.default_rng(seed + i), start_s=0.0)
        onset_s = 0.2 * n_bins * bin_s
        times = (np.arange(n_bins) + 0.5) * bin_s - onset_s
        behaviour[i] = [script.velocity_at(t) if t >= 0 else (0.0, 0.0) for t in times]
        directions[i] = 2 * math.pi * script.target_at(0.0).target_index / 8
    return behaviour, directions


def _from_data(path: str, adapter: str | None, n_trials: int, n_bins: int):
    from ldns_sim.data.load import load_spike_data

    data = load_spike_data(path, adapter)
    test = data.select("test")
    keep = [i for i, c in enumerate(test.counts) if len(c) >= n_bins]
    if not keep:
        raise DataError(f"{path}: no test trial has {n_bins} bins (longest "
                        f"{max(len(c) for c in test.counts)}); pass a smaller --bins")
    order = [keep[i % len(keep)] for i in range(n_trials)]
    behaviour = None
    if test.behaviour is not None:
        behaviour = np.stack([test.behaviour[i][:n_bins] for i in order]).astype(np.float32)
    direction = None if test.direction_rad is None else test.direction_rad[order]
    return behaviour, direction


def choose_conditions(bundle: ModelBundle, n_trials: int, n_bins: int, condition_from: str | None,
                      adapter: str | None, direction_deg: float | None, seed: int):
    """(behaviour (n_trials, n_bins, B) | None, direction_rad (n_trials,) | None)."""
    meta = bundle.meta
    if condition_from:
        behaviour, direction = _from_data(condition_from, adapter, n_trials, n_bins)
    else:
        behaviour, direction = scripted_reaches(n_trials, n_bins, meta.bin_s,
                                                meta.velocity_scale, seed)
    if direction_deg is not None:
        direction = np.full(n_trials, math.radians(direction_deg))
    if meta.condition == "velocity" and behaviour is None:
        raise DataError(f"{condition_from}: has no behaviour to condition a velocity model on")
    if meta.condition == "direction" and direction is None:
        raise DataError(f"{condition_from}: has no trial directions; pass --direction DEG")
    return behaviour, direction


def samples_as_spike_data(bundle: ModelBundle, counts, rates, behaviour, direction,
                          source: str) -> SpikeData:
    """Generated trials as SpikeData; ``rates`` (counts per bin) become ``true_rates``."""
    n_trials = len(counts)
    names = tuple(bundle.meta.behaviour_names) or ("vel_x", "vel_y")
    return SpikeData(
        counts=tuple(counts.astype(np.int32)), bin_s=bundle.meta.bin_s,
        neuron_ids=tuple(bundle.meta.neuron_ids), split=np.array(["test"] * n_trials),
        source=source, behaviour=None if behaviour is None else tuple(behaviour),
        behaviour_names=names if behaviour is not None else (),
        direction_rad=direction, true_rates=tuple(rates),
    )


def sample_to_file(bundle: ModelBundle, args) -> Path:
    """Sample as the parsed ``ldns-sim sample`` arguments say; write .npz or .nwb."""
    out = Path(args.out)
    if out.suffix not in (".npz", ".nwb"):
        raise ConfigError(f"--out {out}: expected a .npz or .nwb file name")
    if args.trials < 1:
        raise ConfigError(f"--trials {args.trials}: expected at least 1")
    n_bins = args.bins or bundle.meta.window_bins
    behaviour, direction = choose_conditions(bundle, args.trials, n_bins, args.condition_from,
                                             args.adapter, args.direction, args.seed)
    settings = SamplerSettings(n_steps=args.steps, use_history=not args.no_history,
                               mode=args.sampler, guidance=args.guidance,
                               context_noise_t=args.context_noise,
                               step_spacing=args.step_spacing)
    try:
        gen = sample_trials(bundle, args.trials, n_bins, behaviour, direction, settings,
                            seed=args.seed)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    data = samples_as_spike_data(bundle, gen.counts, gen.rates, behaviour,
                                 direction, source=f"ldns-sim sample {bundle.meta.name}")
    if out.suffix == ".npz":
        from ldns_sim.data.npz_io import save_npz

        return save_npz(data, out)
    from ldns_sim.data.nwb_trials_writer import write_trials_nwb

    return write_trials_nwb(data, out, description=f"{args.trials} trials sampled from "
                            f"{bundle.meta.name} ({args.sampler} sampler: "
                            f"{describe_settings(bundle, settings)})",
                            model_name=bundle.meta.name, model_sha256=bundle.sha256,
                            seed=args.seed,
                            rates=tuple(r / bundle.meta.bin_s for r in data.true_rates))
