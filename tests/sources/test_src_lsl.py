"""LSL condition source against real loopback outlets (discovery scope: this machine)."""

import math
import time

import numpy as np
import pylsl
import pytest

from ldns_sim.errors import SourceError
from ldns_sim.realtime.clock import ManualClock
from ldns_sim.sources.link_state import HoldPolicy
from ldns_sim.sources.lsl_source import LslConditionSource

pytestmark = pytest.mark.realtime


def _outlet(name: str, n_channels: int = 3) -> pylsl.StreamOutlet:
    info = pylsl.StreamInfo(name, "Behaviour", n_channels, 100.0, "float32", f"{name}-uid")
    return pylsl.StreamOutlet(info)


def _push_until(outlet, sample, predicate, timeout_s=15.0):
    """Push ``sample`` every 10 ms until ``predicate()`` is truthy; fail at the deadline."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if outlet is not None:
            outlet.push_sample(sample)
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError("condition not met before the deadline")


def _settle(source, quiet_s=0.3, timeout_s=10.0):
    """Wait until samples pushed before now have all arrived (no new arrival for quiet_s)."""
    deadline = time.monotonic() + timeout_s
    last, quiet_since = source.n_samples, time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.02)
        if source.n_samples != last:
            last, quiet_since = source.n_samples, time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_s:
            return
    raise AssertionError("samples kept arriving after the outlet stopped pushing")


def test_missing_stream_names_it_and_how_to_list(unique_name):
    source = LslConditionSource(name=unique_name, timeout_s=0.2, clock_now=ManualClock().now)
    with pytest.raises(SourceError) as info:
        source.start()
    message = str(info.value)
    assert unique_name in message and "resolve_streams" in message and "\n" not in message
    source.stop()


def test_values_nan_bursts_loss_and_restore(unique_name):
    clock = ManualClock(start_s=50.0)
    policy = HoldPolicy(hold_s=0.25, decay_tau_s=0.1, lost_after_s=0.5)
    outlet = _outlet(unique_name)
    source = LslConditionSource(name=unique_name, channels=(2, 0), gain=2.0, timeout_s=3.0,
                                clock_now=clock.now, policy=policy)
    with source:
        events: list[str] = []
        reading = _push_until(outlet, [1.0, 5.0, 3.0],
                              lambda: (r := source.read(clock.now())).ok and r)
        np.testing.assert_allclose(reading.value, [6.0, 2.0])  # channels (2, 0), gain 2
        assert reading.value.dtype == np.float32
        assert reading.arrival_time_s == clock.now()

        # Two bursts of bad samples: counted per sample, one marker per burst.
        for burst in range(2):
            for _ in range(3):
                outlet.push_sample([math.nan, 0.0, math.inf])
            _push_until(outlet, [1.0, 0.0, 4.0 + burst],
                        lambda b=burst: source.read(clock.now()).value[0] == 2 * (4.0 + b))
        assert source.n_rejected == 6
        events += source.drain_events()
        assert events.count(f"condition_rejected_nan:lsl:{unique_name}") == 2
        held_value = source.read(clock.now()).value.copy()  # [10, 2]

        # The outlet vanishes: lost at once (inlet error), hold, then decay to zero.
        del outlet
        _push_until(None, None, lambda: not source.read(clock.now()).ok)
        lost_at_s = clock.now()
        assert f"condition_lost:lsl:{unique_name}" in source.drain_events()
        np.testing.assert_allclose(source.read(lost_at_s + 0.2).value, held_value)
        np.testing.assert_allclose(source.read(lost_at_s + 0.35).value,
                                   held_value * math.exp(-1.0), rtol=1e-5)
        assert np.all(np.abs(source.read(lost_at_s + 10.0).value) < 1e-12)

        # A new outlet with the same name appears: found again, samples flow, restored.
        outlet2 = _outlet(unique_name)
        _push_until(outlet2, [0.0, 1.0, -1.5], lambda: source.read(clock.now()).ok)
        assert f"condition_restored:lsl:{unique_name}" in source.drain_events()
        np.testing.assert_allclose(source.read(clock.now()).value, [-3.0, 0.0])
    source.stop()
    del outlet2


def test_silence_counts_as_loss_on_the_engine_clock(unique_name):
    clock = ManualClock(start_s=0.0)
    outlet = _outlet(unique_name, n_channels=2)
    with LslConditionSource(name=unique_name, clock_now=clock.now, timeout_s=3.0,
                            policy=HoldPolicy(hold_s=0.1, decay_tau_s=0.1,
                                              lost_after_s=0.5)) as source:
        _push_until(outlet, [3.0, 4.0], lambda: source.read(clock.now()).ok)
        _settle(source)  # samples still in flight would arrive after the clock advances
        assert "ON" in repr(source)
        clock.advance(0.4)
        assert source.read(clock.now()).ok  # silent, but not yet for lost_after_s
        clock.advance(0.2)
        reading = source.read(clock.now())  # 0.6 s silent: lost at arrival + 0.5 s
        assert not reading.ok
        np.testing.assert_allclose(reading.value, [3.0, 4.0])  # still in the 0.1 s hold
        assert source.drain_events() == [f"condition_lost:lsl:{unique_name}"]
        _push_until(outlet, [1.0, 1.0], lambda: source.read(clock.now()).ok)
        assert source.drain_events() == [f"condition_restored:lsl:{unique_name}"]
    del outlet


def test_transport_is_measured_from_each_samples_lsl_stamp(unique_name, caplog):
    outlet = _outlet(unique_name)
    source = LslConditionSource(name=unique_name, timeout_s=3.0, clock_now=pylsl.local_clock)
    with caplog.at_level("INFO", logger="ldns_sim.sources.lsl_source"), source:
        _push_until(outlet, [1.0, 2.0, 3.0], lambda: source.n_samples >= 5)
        _settle(source)  # the first samples wait for the connection: up to ~1 s here
        n_before = source.n_samples
        for _ in range(10):  # now connected
            outlet.push_sample([1.0, 2.0, 3.0])
            time.sleep(0.01)
        outlet.push_sample([1.0, 2.0, 3.0], pylsl.local_clock() - 0.2)  # stamped 0.2 s ago
        _push_until(None, None, lambda: source.n_samples >= n_before + 11)
        transport_s = source.transport_s()
    assert len(transport_s) == source.n_samples
    assert 0 <= np.median(transport_s[-11:-1]) < 0.05  # loopback: well under a bin
    assert 0.2 <= transport_s[-1] < 1.2  # the back-dated sample (plus its own transport)
    assert f"lsl source lsl:{unique_name}: {len(transport_s)} samples; transport" in caplog.text
