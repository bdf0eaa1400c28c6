"""Train/val/test assignment of trials: random fractions (stratified) or a label column."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ldns_sim.core import SPLITS, SpikeData
from ldns_sim.data.adapters import SplitSpec
from ldns_sim.errors import DataError

SPLIT_DTYPE = "<U5"


def random_splits(n_trials: int, fractions: tuple[float, float, float],
                  rng: np.random.Generator, strata: np.ndarray | None = None) -> np.ndarray:
    """Assign trials to train/val/test at random, in the given fractions.

    Parameters
    ----------
    n_trials
        Number of trials.
    fractions
        ``(train, val, test)`` fractions summing to 1.
    rng
        Random generator (the permutation within each stratum).
    strata
        ``(n_trials,)`` labels (e.g. reach direction); the fractions are drawn within each
        label, so every direction appears in every split it is large enough for.

    Returns
    -------
    np.ndarray
        ``(n_trials,)`` array of ``"train" | "val" | "test"``.
    """
    # Each trial gets a key spread evenly over [0, 1) within its stratum (its random rank,
    # with a random phase per stratum); sorting all keys and cutting at the fractions gives
    # exact totals and per-stratum shares within one trial of the fractions.
    keys = np.empty(n_trials)
    groups = [np.arange(n_trials)] if strata is None else _groups(np.asarray(strata))
    for members in groups:
        keys[rng.permutation(members)] = (np.arange(len(members)) + rng.uniform()) / len(members)
    order = np.argsort(keys, kind="stable")
    n_train = round(fractions[0] * n_trials)
    n_val = round((fractions[0] + fractions[1]) * n_trials) - n_train
    labels = np.full(n_trials, "test", dtype=SPLIT_DTYPE)
    labels[order[:n_train]] = "train"
    labels[order[n_train:n_train + n_val]] = "val"
    return labels


def _groups(strata: np.ndarray) -> list[np.ndarray]:
    if strata.dtype.kind == "f":
        keys = np.where(np.isfinite(strata), np.round(strata, 4), np.inf)
    else:
        keys = strata
    return [np.flatnonzero(keys == k) for k in np.unique(keys)]


def splits_from_labels(labels: np.ndarray, spec: SplitSpec, rng: np.random.Generator,
                       where: str) -> np.ndarray:
    """Map per-trial split labels (e.g. NLB's ``split`` column) through ``spec.column_map``.

    Parameters
    ----------
    labels
        ``(n_trials,)`` labels as stored in the file.
    spec
        The adapter's split section; ``holdout`` trials are divided into val/test in the
        ratio ``spec.val : spec.test``; ``drop`` trials get the label ``"drop"``.
    rng
        Random generator for the holdout division.
    where
        File name for error messages.

    Returns
    -------
    np.ndarray
        ``(n_trials,)`` of ``"train" | "val" | "test" | "drop"``.
    """
    labels = np.array([_text(x) for x in labels], dtype=object)
    mapping = {s: s for s in SPLITS} | dict(spec.column_map)
    unknown = sorted(set(labels.tolist()) - set(mapping))
    if unknown:
        raise DataError(f"{where}: split column {spec.column!r} has labels {unknown} that the "
                        f"adapter does not map; add them to split.column_map "
                        f"(train|val|test|holdout|drop)")
    out = np.array([mapping[x] for x in labels], dtype="<U7")
    holdout = np.flatnonzero(out == "holdout")
    if len(holdout):
        share_val = spec.val / (spec.val + spec.test) if spec.val + spec.test > 0 else 0.5
        order = rng.permutation(holdout)
        n_val = round(share_val * len(order))
        out[order[:n_val]] = "val"
        out[order[n_val:]] = "test"
    return out


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def drop_marked(data: SpikeData) -> SpikeData:
    """``data`` without the trials whose split label is ``"drop"``."""
    split = np.asarray(data.split)
    keep = np.flatnonzero(split != "drop")
    if len(keep) == 0:
        raise DataError(f"{data.source}: every trial is marked 'drop' by split.column_map")
    data = data if len(keep) == len(split) else data.take(keep)
    return replace(data, split=np.asarray(data.split).astype(SPLIT_DTYPE))
