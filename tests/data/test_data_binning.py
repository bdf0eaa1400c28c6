"""Counting and interpolation primitives, on values small enough to check by hand."""

from __future__ import annotations

import numpy as np

from ldns_sim.data.binning import bin_spike_times, integer_ratio, interpolate_behaviour


def test_bins_are_closed_left_open_right():
    # 0.25 s bins are exact in binary, so spikes sit exactly on edges
    train = np.array([0.0, 0.25, 0.5, 0.74, 1.0, 2.1])
    counts = bin_spike_times([train, np.array([])], np.array([0.0, 2.0]), np.array([4, 1]),
                             0.25)
    np.testing.assert_array_equal(counts[0], [[1, 0], [1, 0], [2, 0], [0, 0]])
    np.testing.assert_array_equal(counts[1], [[1, 0]])
    assert counts[0].dtype == np.int32


def test_interpolation_skips_nans_and_refuses_long_gaps_and_extrapolation():
    t = np.arange(10, dtype=float)  # 1 s sampling
    v = np.stack([2 * t, -t], axis=1)
    v[4, 0] = np.nan  # one missing sample: gap of 2 s on channel 0
    out = interpolate_behaviour(t, v, np.array([3.5, 4.0, 8.5, 9.0, 9.5, -0.1]), max_gap_s=2)
    np.testing.assert_allclose(out[:4, 0], [7.0, 8.0, 17.0, 18.0])
    np.testing.assert_allclose(out[:5, 1], [-3.5, -4.0, -8.5, -9.0, np.nan])
    assert np.isnan(out[4:, 0]).all() and np.isnan(out[5, 1])
    strict = interpolate_behaviour(t, v, np.array([3.5, 4.0]), max_gap_s=1.5)
    assert np.isnan(strict[:, 0]).all() and np.isfinite(strict[:, 1]).all()


def test_integer_ratio():
    assert integer_ratio(0.1, 0.05) == 2 and integer_ratio(0.7, 0.005) == 140
    assert integer_ratio(0.075, 0.05) is None
