"""Condition sources: what drives the simulator live (a gamepad, the mouse, an LSL or ZMQ
behaviour stream, a scripted user, a replayed recording).

``make_source(spec, ...)`` turns a ``--condition`` spec into a source. Device libraries
(pygame, pylsl, pyzmq) are imported only when a source starts. Sources never import torch.
"""

from ldns_sim.sources.factory import VALID_SPECS, make_source
from ldns_sim.sources.joystick_source import JoystickSource
from ldns_sim.sources.link_state import HoldPolicy, held_value
from ldns_sim.sources.lsl_source import LslConditionSource
from ldns_sim.sources.mouse_source import MouseSource
from ldns_sim.sources.script_source import CenterOutState, ScriptedCenterOut
from ldns_sim.sources.zmq_source import ZmqConditionSource

__all__ = ["VALID_SPECS", "CenterOutState", "HoldPolicy", "JoystickSource",
           "LslConditionSource", "MouseSource", "ScriptedCenterOut", "ZmqConditionSource",
           "held_value", "make_source"]
