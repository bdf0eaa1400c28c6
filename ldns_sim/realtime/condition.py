"""The contract between the real-time engine and whatever supplies the live condition.

A condition source (a joystick, an LSL cursor stream, a replayed file, a scripted user; see
``ldns_sim.sources``) hands the engine its newest sample whenever asked. The engine asks on
its own schedule, never waits for a source, and turns each source event (lost, restored)
into a marker on the stream.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ldns_sim.errors import ConfigError


@dataclass(frozen=True)
class ConditionReading:
    """One answer of ``ConditionSource.read``.

    Attributes
    ----------
    value
        ``(n_channels,)`` float32, the newest condition sample (what the source holds when it
        has nothing fresh, e.g. the last value or zeros, is the source's documented choice).
    sample_time_s
        When the sample was taken, in seconds on the engine clock (LSL clock).
    arrival_time_s
        When the sample reached this process, in seconds on the engine clock.
    ok
        ``False`` when the source is lost or stale and ``value`` is a stand-in.
    """

    value: np.ndarray
    sample_time_s: float
    arrival_time_s: float
    ok: bool = True


class ConditionSource:
    """Base class of the live condition sources the engine reads.

    Lifecycle: the engine calls ``start()`` once when it starts streaming and ``stop()`` once
    when it finishes; hand it a source that is not started. ``read`` must return within a
    fraction of a millisecond (no blocking I/O: a source receives in its own thread and
    ``read`` hands out the newest sample). Subclasses set ``channel_names`` (and with it
    ``n_channels``) and implement ``read``; ``drain_events`` returns markers such as
    ``"condition_lost:lsl:cursor"`` and ``"condition_restored:lsl:cursor"`` since the last call.
    """

    name: str = "source"
    channel_names: tuple[str, ...] = ()

    @property
    def n_channels(self) -> int:
        return len(self.channel_names)

    def start(self) -> ConditionSource:
        return self

    def stop(self) -> None:
        """Release the device or stream; safe to call twice."""

    def read(self, now_s: float) -> ConditionReading:
        """The newest condition sample at time ``now_s`` (seconds, engine clock)."""
        raise NotImplementedError

    def drain_events(self) -> list[str]:
        """Marker strings of events since the last call (oldest first); empty if none."""
        return []

    def wait_for_data(self, timeout_s: float) -> bool:
        """After ``start``: block until a first sample is in (``True``), at most ``timeout_s``.

        Sources that always have a value (constant, scripted, replayed) return at once.
        """
        return True

    def set_worker_priority(self, rt_priority: int | None) -> None:
        """Before ``start``: run the thread that waits for the input (an LSL or ZMQ receive)
        ``SCHED_FIFO`` at ``rt_priority`` (Linux, when allowed), so a sample is taken in as it
        arrives, not after whatever else the machine runs. The engine asks for one below its
        own. Sources without such a thread ignore it.
        """

    def __enter__(self) -> ConditionSource:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class ConstantSource(ConditionSource):
    """A fixed condition, e.g. zeros for ``--condition none``.

    Every read returns ``value`` stamped at the read time, so its age is always zero.

    Parameters
    ----------
    value
        ``(n_channels,)`` the condition, cast to float32.
    channel_names
        One name per channel.
    """

    name = "constant"

    def __init__(self, value: Sequence[float] | np.ndarray, channel_names: Sequence[str]) -> None:
        self._value = np.array(value, dtype=np.float32).reshape(-1)
        self._value.flags.writeable = False
        self.channel_names = tuple(channel_names)
        if len(self._value) != len(self.channel_names):
            raise ConfigError(f"ConstantSource: {len(self._value)} values for "
                              f"{len(self.channel_names)} channels {self.channel_names}")
        if not np.all(np.isfinite(self._value)):
            raise ConfigError(f"ConstantSource: value must be finite, got {self._value}")

    @classmethod
    def zeros(cls, channel_names: Sequence[str]) -> ConstantSource:
        """A source that holds zero on every channel (no behaviour: ``--condition none``)."""
        return cls(np.zeros(len(channel_names)), channel_names)

    def read(self, now_s: float) -> ConditionReading:
        return ConditionReading(self._value, now_s, now_s, True)

    def __repr__(self) -> str:
        return f"<ConstantSource | {dict(zip(self.channel_names, self._value.tolist()))}>"
