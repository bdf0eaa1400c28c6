"""What every velocity decoder offers: fit on trials, step bin by bin, save to .npz.

A decoder maps one bin of spike counts ``(n_neurons,)`` to a 2-D velocity ``(2,)`` in the
units of the velocity it was fitted on (the model's behaviour units, e.g. cm/s), causally: a
bin's output depends on that bin and earlier ones only. ``fit`` takes a list of trials (or
continuous segments); state never crosses a trial boundary during fitting.

Parameters are saved as plain arrays in an ``.npz`` (``numpy.savez``, loaded with
``allow_pickle=False``): a ``kind`` string names the class and every other entry is a float
array or a scalar, so a rig can read a decoder file with numpy alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ldns_sim.errors import ConfigError, DataError

FORMAT_VERSION = 1


def check_trials(counts_list: Sequence[np.ndarray], velocity_list: Sequence[np.ndarray],
                 who: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Validate fitting data: one ``(n_bins_i, n_neurons)`` and one ``(n_bins_i, 2)`` per trial.

    Returns float64 copies. Raises ``DataError`` naming the trial and shape at fault.
    """
    if len(counts_list) == 0 or len(counts_list) != len(velocity_list):
        raise DataError(f"{who}: needs the same number (>= 1) of count and velocity trials, "
                        f"got {len(counts_list)} and {len(velocity_list)}")
    counts = [np.asarray(c, dtype=np.float64) for c in counts_list]
    velocity = [np.asarray(v, dtype=np.float64) for v in velocity_list]
    n_neurons = counts[0].shape[1] if counts[0].ndim == 2 else -1
    for i, (c, v) in enumerate(zip(counts, velocity)):
        if c.ndim != 2 or c.shape[1] != n_neurons or v.shape != (len(c), 2):
            raise DataError(f"{who}: trial {i} has counts {c.shape} and velocity {v.shape}; "
                            f"expected (n_bins, {n_neurons}) and (n_bins, 2)")
        if not (np.all(np.isfinite(c)) and np.all(np.isfinite(v))):
            raise DataError(f"{who}: trial {i} has non-finite counts or velocity")
    if sum(len(c) for c in counts) < 3:
        raise DataError(f"{who}: needs at least 3 bins of data to fit")
    return counts, velocity


class Decoder:
    """Base class: ``fit`` -> ``reset`` -> ``step`` per bin; ``predict`` for whole trials.

    Subclasses set ``kind`` and implement ``fit``, ``reset``, ``step``, ``params`` and
    ``from_params``.
    """

    kind = "decoder"
    n_neurons: int = 0

    def fit(self, counts_list: Sequence[np.ndarray],
            velocity_list: Sequence[np.ndarray]) -> Decoder:
        """Fit on trials: ``(n_bins_i, n_neurons)`` counts and ``(n_bins_i, 2)`` velocity."""
        raise NotImplementedError

    def reset(self) -> None:
        """Forget the past (start of a trial or of a stream)."""
        raise NotImplementedError

    def step(self, counts_bin: np.ndarray) -> np.ndarray:
        """Decode one bin: ``(n_neurons,)`` counts -> ``(2,)`` float64 velocity."""
        raise NotImplementedError

    def params(self) -> dict[str, np.ndarray]:
        """Every fitted parameter as a float array (what ``save`` writes)."""
        raise NotImplementedError

    @classmethod
    def from_params(cls, params: dict[str, np.ndarray]) -> Decoder:
        """The decoder ``params`` describes (inverse of ``params``)."""
        raise NotImplementedError

    @property
    def is_fitted(self) -> bool:
        return self.n_neurons > 0

    def _check_bin(self, counts_bin: np.ndarray) -> np.ndarray:
        if not self.is_fitted:
            raise ConfigError(f"{self.kind} decoder: step() before fit() or load()")
        y = np.asarray(counts_bin, dtype=np.float64).reshape(-1)
        if y.shape != (self.n_neurons,):
            raise DataError(f"{self.kind} decoder: a bin of {y.shape[0]} channels, expected "
                            f"{self.n_neurons}")
        return y

    def predict(self, counts_list: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Decode whole trials causally, resetting at each trial's start.

        Returns one ``(n_bins_i, 2)`` array per ``(n_bins_i, n_neurons)`` trial.
        """
        out = []
        for counts in counts_list:
            self.reset()
            out.append(np.array([self.step(row) for row in np.asarray(counts)]).reshape(-1, 2))
        self.reset()
        return out

    def save(self, path: str | Path) -> Path:
        """Write the fitted parameters to ``path`` (.npz, no pickle)."""
        path = Path(path)
        if path.suffix != ".npz":
            raise ConfigError(f"{path}: decoder files are .npz")
        arrays = {k: np.asarray(v) for k, v in self.params().items()}
        np.savez(path, kind=np.array(self.kind), format_version=np.array(FORMAT_VERSION),
                 **arrays)
        return path


def read_params(path: str | Path) -> tuple[str, dict[str, np.ndarray]]:
    """``(kind, params)`` from a decoder ``.npz``; ``ConfigError`` for anything else."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"decoder file {path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as f:
            params = {k: f[k] for k in f.files}
    except (OSError, ValueError) as error:
        raise ConfigError(f"decoder file {path}: not a readable .npz ({error})") from None
    if "kind" not in params or int(params.pop("format_version", -1)) != FORMAT_VERSION:
        raise ConfigError(f"decoder file {path}: no 'kind' or format_version != "
                          f"{FORMAT_VERSION}; expected a file written by Decoder.save")
    return str(params.pop("kind")), params
