"""Windows over trials, and trials laid end to end (what the streaming model trains on)."""

import numpy as np

from ldns_sim.data.tuning import make_tuning_data
from ldns_sim.data.windows import laid_end_to_end, make_windows


def test_laid_end_to_end_keeps_every_bin_in_order_and_windows_span_junctions():
    data = make_tuning_data(n_trials=3, n_neurons=4, n_bins=10, seed=0)
    joined = laid_end_to_end(data)
    assert joined.n_trials == 1 and joined.direction_rad is None
    assert np.array_equal(joined.counts[0], np.concatenate(data.counts))
    assert np.array_equal(joined.behaviour[0], np.concatenate(data.behaviour))
    per_trial, _, _ = make_windows(data, 6, 2)
    spanning, beh, _ = make_windows(joined, 6, 2)
    assert len(per_trial) == 3 * 3 and len(spanning) == 13  # starts 0, 2, .., 24 over 30 bins
    # window 4 starts at bin 8: the last two bins of trial 0, the first four of trial 1
    assert np.array_equal(spanning[4], np.concatenate([data.counts[0][8:], data.counts[1][:4]]))
    assert np.array_equal(beh[4][2:], data.behaviour[1][:4])
