"""The autoencoder's optional behaviour read-out loss (``AutoEncoderTrain.behaviour_beta``)."""

from dataclasses import replace

import numpy as np
import torch

from ldns_sim.data.tuning import make_tuning_data
from ldns_sim.evaluation.decoding import fit_ridge, r2_score
from ldns_sim.train.config import preset
from ldns_sim.train.fit_autoencoder import fit_autoencoder
from ldns_sim.train.pipeline import _windows


def _rates(ae, counts):
    with torch.no_grad():
        return ae(counts)[0].transpose(1, 2).numpy()  # (W, L, N)


def test_readout_loss_puts_the_behaviour_into_the_rates():
    torch.set_num_threads(1)
    data = make_tuning_data(n_trials=60, n_neurons=16, n_bins=32, seed=3)
    train, test = data.select("train"), data.select("test")
    counts, beh, _ = _windows(train, 16, 8)  # (W, N, L), (W, L, B)
    test_counts, test_beh, _ = _windows(test, 16, 16)
    std = beh.reshape(-1, beh.shape[-1]).std(dim=0)
    target = (beh / std).transpose(1, 2)  # (W, B, L)
    cfg = replace(preset("tiny").ae, window_bins=16, stride_bins=8, epochs=12, lr=5e-3)
    r2 = {}
    for beta in (0.0, 5.0):
        ae, report = fit_autoencoder(replace(cfg, behaviour_beta=beta), counts, test_counts,
                                     torch.Generator().manual_seed(0), show_progress=False,
                                     train_behaviour=target)
        assert np.isfinite(report["ae_val_poisson_nll"])
        assert all(not k.startswith("readout") for k in ae.state_dict())  # AE only
        decoder = fit_ridge(list(_rates(ae, counts)), list(beh.numpy()))
        r2[beta] = r2_score(list(test_beh.numpy()), decoder.predict(list(_rates(ae, test_counts))))
    assert r2[5.0] > r2[0.0] + 0.05, r2
