"""Where generated spikes go: LSL outlets, a ZMQ publisher, a crash-safe NWB recorder.

Contracts: ``docs/wire-format.md``. Transport libraries (pylsl, pyzmq, pynwb) are imported
when a sink opens, so importing this package is cheap.
"""

from ldns_sim.sinks.base import MemorySink, Sink
from ldns_sim.sinks.lsl_sink import LslSink
from ldns_sim.sinks.nwb_recorder import NwbRecorder, recover_session
from ldns_sim.sinks.nwb_writer import SessionInfo
from ldns_sim.sinks.profile import StreamProfile, load_profile, make_sinks
from ldns_sim.sinks.zmq_sink import ZmqSink

__all__ = ["LslSink", "MemorySink", "NwbRecorder", "SessionInfo", "Sink", "StreamProfile",
           "ZmqSink", "load_profile", "make_sinks", "recover_session"]
