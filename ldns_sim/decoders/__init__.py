"""BCI velocity decoders under test: Wiener filter, velocity Kalman filter, ReFIT Kalman filter.

numpy only, so a rig can import them (or read their ``.npz`` files) without torch.
``python -m ldns_sim.decoders.run`` runs one as a process of its own on a live stream.
"""

from __future__ import annotations

from pathlib import Path

from ldns_sim.decoders.base import Decoder, read_params
from ldns_sim.decoders.kalman import RefitKalmanFilter, VelocityKalmanFilter, intended_velocity
from ldns_sim.decoders.wiener import WienerFilter
from ldns_sim.errors import ConfigError

DECODERS: dict[str, type[Decoder]] = {"wiener": WienerFilter, "kalman": VelocityKalmanFilter,
                                      "refit": RefitKalmanFilter}


def make_decoder(kind: str, **options) -> Decoder:
    """An unfitted decoder of ``kind`` (``wiener``, ``kalman`` or ``refit``)."""
    if kind not in DECODERS:
        raise ConfigError(f"unknown decoder {kind!r}; expected one of {', '.join(DECODERS)}")
    return DECODERS[kind](**options)


def load_decoder(path: str | Path) -> Decoder:
    """The fitted decoder saved in ``path`` by ``Decoder.save``."""
    kind, params = read_params(path)
    if kind not in DECODERS:
        raise ConfigError(f"decoder file {path}: unknown kind {kind!r}; expected one of "
                          f"{', '.join(DECODERS)}")
    return DECODERS[kind].from_params(params)


__all__ = ["DECODERS", "Decoder", "RefitKalmanFilter", "VelocityKalmanFilter", "WienerFilter",
           "intended_velocity", "load_decoder", "make_decoder"]
