"""One entry point: a recording path (+ optional adapter) -> SpikeData."""

from __future__ import annotations

import logging
from pathlib import Path

import h5py

from ldns_sim.core import SpikeData
from ldns_sim.data.adapters import DatasetAdapter, load_adapter
from ldns_sim.data.npz_io import load_npz
from ldns_sim.data.nwb_loader import load_nwb
from ldns_sim.data.trialdata_mat import load_trialdata_mat
from ldns_sim.errors import DataError

log = logging.getLogger(__name__)

DEFAULT_ADAPTERS = {
    ".mat": "m1_center_out_trialdata",
    ".npz": "npz",
    ".nwb": "nlb_mc_maze",  # a file without a trials table gets NWB_CONTINUOUS instead
}
NWB_CONTINUOUS = "ldns_session"


def default_adapter(path: Path) -> str:
    """The adapter name used for ``path`` when none is given (by extension, and for NWB
    by whether the file has a trials table)."""
    suffix = path.suffix.lower()
    if suffix not in DEFAULT_ADAPTERS:
        raise DataError(f"{path}: unknown file type {suffix!r}; expected one of "
                        f"{sorted(DEFAULT_ADAPTERS)} or an adapter naming the format")
    if suffix == ".nwb" and not _nwb_has_trials(path):
        return NWB_CONTINUOUS
    return DEFAULT_ADAPTERS[suffix]


def _nwb_has_trials(path: Path) -> bool:
    try:
        with h5py.File(path, "r") as fh:
            return "intervals/trials" in fh
    except OSError as exc:
        raise DataError(f"{path}: not a readable NWB (HDF5) file ({exc})") from None


def load_spike_data(path: str | Path, adapter: DatasetAdapter | str | Path | None = None,
                    bin_s: float | None = None) -> SpikeData:
    """Load a recording as SpikeData.

    Parameters
    ----------
    path
        A ``.nwb``, TrialData ``.mat`` or SpikeData ``.npz`` file.
    adapter
        A DatasetAdapter, an adapter name (``adapters/datasets/NAME.toml``) or a TOML path;
        None picks the default for the file type (:func:`default_adapter`).
    bin_s
        Overrides the adapter's bin width (seconds); not allowed for ``.npz``.

    Returns
    -------
    SpikeData
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if adapter is None:
        from ldns_sim.data.nwb_trials_writer import is_trials_nwb, trials_adapter

        is_samples = path.suffix.lower() == ".nwb" and is_trials_nwb(path)
        adapter = trials_adapter(path) if is_samples else default_adapter(path)
    if not isinstance(adapter, DatasetAdapter):
        adapter = load_adapter(adapter)
    if bin_s is not None:
        if not bin_s > 0:
            raise DataError(f"{path}: bin width must be positive, got {bin_s}")
        adapter = adapter.model_copy(update={"bin_s": float(bin_s)})
    log.info("loading %s with adapter %r", path, adapter.name)
    if adapter.format == "npz":
        if bin_s is not None:
            raise DataError(f"{path}: a .npz keeps the bin width it was saved with; "
                            f"rebinning it is not supported")
        return load_npz(path)
    if adapter.format == "trialdata_mat":
        return load_trialdata_mat(path, adapter)
    return load_nwb(path, adapter)
