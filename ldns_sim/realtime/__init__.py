"""Real time: the one clock, the engine that keeps the schedule, the condition-source contract."""

from ldns_sim.realtime.clock import Clock, LslClock, ManualClock
from ldns_sim.realtime.condition import ConditionReading, ConditionSource, ConstantSource
from ldns_sim.realtime.engine import Engine
from ldns_sim.realtime.signals import install_signal_handlers
from ldns_sim.realtime.stats import EngineStats

__all__ = [
    "Clock",
    "ConditionReading",
    "ConditionSource",
    "ConstantSource",
    "Engine",
    "EngineStats",
    "LslClock",
    "ManualClock",
    "install_signal_handlers",
]
