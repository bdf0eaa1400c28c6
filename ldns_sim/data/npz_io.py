"""SpikeData to and from one ``.npz`` file (no pickles: ragged trials stored flat + offsets).

Keys: ``format`` (``"ldns_sim.SpikeData/1"``), ``offsets`` ``(n_trials + 1,)`` bin offsets,
``counts`` ``(n_bins_total, n_neurons)``, ``bin_s``, ``neuron_ids``, ``split``, ``source``;
optional ``behaviour`` ``(n_bins_total, n_behaviour)`` + ``behaviour_names``,
``direction_rad`` ``(n_trials,)``, ``align_bin`` ``(n_trials,)``, ``true_rates``
``(n_bins_total, n_neurons)``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ldns_sim.core import SpikeData
from ldns_sim.errors import DataError

FORMAT = "ldns_sim.SpikeData/1"


def save_npz(data: SpikeData, path: str | Path) -> Path:
    """Write ``data`` to ``path`` (compressed ``.npz``); returns the path written."""
    path = Path(path)
    arrays = {
        "format": np.array(FORMAT),
        "offsets": np.concatenate([[0], np.cumsum([len(c) for c in data.counts])]),
        "counts": np.concatenate(data.counts),
        "bin_s": np.array(data.bin_s, dtype=np.float64),
        "neuron_ids": np.array(data.neuron_ids, dtype=str),
        "split": np.asarray(data.split).astype(str),
        "source": np.array(data.source),
    }
    if data.behaviour is not None:
        arrays["behaviour"] = np.concatenate(data.behaviour).astype(np.float32)
        arrays["behaviour_names"] = np.array(data.behaviour_names, dtype=str)
    if data.direction_rad is not None:
        arrays["direction_rad"] = np.asarray(data.direction_rad, dtype=np.float64)
    if data.align_bin is not None:
        arrays["align_bin"] = np.asarray(data.align_bin, dtype=np.int64)
    if data.true_rates is not None:
        arrays["true_rates"] = np.concatenate(data.true_rates).astype(np.float32)
    try:
        with path.open("wb") as fh:
            np.savez_compressed(fh, **arrays)
    except OSError as exc:
        raise DataError(f"{path}: cannot write ({exc.strerror})") from None
    return path


def load_npz(path: str | Path) -> SpikeData:
    """Read a file written by :func:`save_npz` (``allow_pickle=False``).

    Returns
    -------
    SpikeData
        With ``source`` set to ``path``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            content = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from None
    if content.get("format", np.array("")).item() != FORMAT:
        raise DataError(f"{path}: not a SpikeData .npz (expected format {FORMAT!r}, keys "
                        f"present: {sorted(content)})")
    offsets = content["offsets"]

    def ragged(key: str) -> tuple[np.ndarray, ...] | None:
        if key not in content:
            return None
        flat = content[key]
        return tuple(flat[a:b] for a, b in zip(offsets[:-1], offsets[1:]))

    return SpikeData(
        counts=ragged("counts"),
        bin_s=float(content["bin_s"]),
        neuron_ids=tuple(str(x) for x in content["neuron_ids"]),
        split=content["split"].astype("<U5"),
        source=str(path),
        behaviour=ragged("behaviour"),
        behaviour_names=tuple(str(x) for x in content.get("behaviour_names", ())),
        direction_rad=content.get("direction_rad"),
        align_bin=content.get("align_bin"),
        true_rates=ragged("true_rates"),
    )
