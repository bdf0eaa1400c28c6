"""Encoding long sequences with a window-trained encoder: overlapping windows, interior bins."""

import torch

from ldns_sim.nn.autoencoder import AutoEncoder, AutoEncoderConfig, encode_stitched
from ldns_sim.testing import randomise_zero_parameters


def _randomised_autoencoder() -> AutoEncoder:
    g = torch.Generator().manual_seed(3)
    ae = AutoEncoder(AutoEncoderConfig(n_neurons=6, n_latents=3, n_hidden=12, n_blocks=2,
                                       n_state=4), g)
    # the blocks start as the identity; make the time mixing matter
    return randomise_zero_parameters(ae, g, std=0.3)


def test_each_bin_comes_from_the_window_it_is_most_interior_to():
    ae = _randomised_autoencoder()
    counts = torch.poisson(torch.full((6, 50), 1.5), generator=torch.Generator().manual_seed(0))
    z = encode_stitched(ae, counts, window_bins=12, hop_bins=4)
    assert z.shape == (3, 50)
    with torch.no_grad():
        # bin 20: windows start every 4 bins; the one starting at 16 leaves it 4 bins from
        # its start and 7 from its end, the best margin; bin 49 only fits the last window
        assert torch.allclose(z[:, 20], ae.encode(counts[None, :, 16:28])[0, :, 4], atol=1e-6)
        assert torch.allclose(z[:, 49], ae.encode(counts[None, :, 38:50])[0, :, 11], atol=1e-6)
        # the encoder's window edges differ from its interior, so this test can fail
        whole = ae.encode(counts[None])[0]
    assert not torch.allclose(z, whole, atol=1e-3)


def test_interior_latents_do_not_depend_on_where_the_sequence_starts():
    ae = _randomised_autoencoder()
    counts = torch.poisson(torch.full((6, 64), 1.5), generator=torch.Generator().manual_seed(1))
    z_full = encode_stitched(ae, counts, window_bins=12, hop_bins=4)
    z_cut = encode_stitched(ae, counts[:, 8:], window_bins=12, hop_bins=4)  # starts a hop later
    # away from both sequences' ends, a bin sees the same window in both encodings
    assert torch.allclose(z_full[:, 20:50], z_cut[:, 12:42], atol=1e-6)


def test_a_sequence_no_longer_than_a_window_is_encoded_whole():
    ae = _randomised_autoencoder()
    counts = torch.poisson(torch.full((6, 12), 1.0), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.allclose(encode_stitched(ae, counts, 12, 4), ae.encode(counts[None])[0])
