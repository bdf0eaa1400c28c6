"""Recordings in, SpikeData out: NWB, TrialData .mat and .npz loaders, synthetic data, windows.

Names are imported lazily (pynwb and scipy load only when a loader is first used).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "load_spike_data": "ldns_sim.data.load",
    "default_adapter": "ldns_sim.data.load",
    "DatasetAdapter": "ldns_sim.data.adapters",
    "load_adapter": "ldns_sim.data.adapters",
    "available_adapters": "ldns_sim.data.adapters",
    "load_nwb": "ldns_sim.data.nwb_loader",
    "load_trialdata_mat": "ldns_sim.data.trialdata_mat",
    "save_npz": "ldns_sim.data.npz_io",
    "load_npz": "ldns_sim.data.npz_io",
    "make_lorenz": "ldns_sim.data.lorenz",
    "make_tuning_data": "ldns_sim.data.tuning",
    "make_windows": "ldns_sim.data.windows",
    "behaviour_stats": "ldns_sim.data.windows",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ldns_sim.data' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return __all__
