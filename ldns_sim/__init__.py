"""ldns-sim: latent diffusion spikes, streamed in real time, recorded to NWB."""

from ldns_sim.core import Chunk, SpikeData, StreamMeta, Telemetry
from ldns_sim.errors import LdnsSimError

__version__ = "0.1.0"

__all__ = ["Chunk", "LdnsSimError", "SpikeData", "StreamMeta", "Telemetry", "__version__"]
