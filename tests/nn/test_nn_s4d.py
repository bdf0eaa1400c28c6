"""S4D: the three modes compute one map; causal means causal."""

import pytest
import torch

from ldns_sim.nn.s4d import S4D, S4DConfig


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


def test_conv_equals_recurrent_step(gen):
    layer = S4D(S4DConfig(8, 16, causal=True), gen)
    u = torch.randn(3, 8, 40, generator=gen)
    with torch.no_grad():
        y_conv = layer(u)
        state, ys = layer.initial_state(3), []
        for t in range(40):
            y, state = layer.step(u[..., t], state)
            ys.append(y)
    assert torch.allclose(torch.stack(ys, -1), y_conv, atol=1e-5)


def test_causal_layer_ignores_future(gen):
    layer = S4D(S4DConfig(4, 8, causal=True), gen)
    u = torch.randn(1, 4, 30, generator=gen)
    u2 = u.clone()
    u2[..., 20:] += torch.randn(1, 4, 10, generator=gen)
    with torch.no_grad():
        diff = (layer(u) - layer(u2)).abs()
    assert diff[..., :20].max() < 1e-5  # FFT round-off only
    assert diff[..., 20:].max() > 1e-3


def test_bidirectional_layer_sees_future(gen):
    layer = S4D(S4DConfig(4, 8, causal=False), gen)
    u = torch.randn(1, 4, 30, generator=gen)
    u2 = u.clone()
    u2[..., 25] += 1.0
    with torch.no_grad():
        assert (layer(u) - layer(u2))[..., :25].abs().max() > 1e-4


def test_teacher_forced_is_clean_past_noisy_present(gen):
    layer = S4D(S4DConfig(6, 8, causal=True), gen)
    clean = torch.randn(2, 6, 25, generator=gen)
    noisy = torch.randn(2, 6, 25, generator=gen)
    with torch.no_grad():
        forced = layer.forward_teacher_forced(clean, noisy)
        for t in (0, 7, 24):
            mixed = clean.clone()
            mixed[..., t] = noisy[..., t]
            assert torch.allclose(layer(mixed)[..., t], forced[..., t], atol=1e-5)


def test_recurrent_mode_refuses_bidirectional(gen):
    layer = S4D(S4DConfig(2, 4, causal=False), gen)
    with pytest.raises(ValueError, match="causal"):
        layer.step_params()


def test_decay_floor_bounds_memory(gen):
    floor = 0.25
    layer = S4D(S4DConfig(4, 8, causal=True, min_decay_per_bin=floor), gen)
    with torch.no_grad():
        layer.log_neg_a_real.fill_(-20.0)  # would be (almost) no decay without the floor
        d_a, _, _ = layer.step_params()
        k = layer.kernel(64)[0]
    assert d_a.abs().max().item() <= torch.exp(torch.tensor(-floor)).item() + 1e-6
    assert k[:, 40:].abs().max() < 1e-3 * k[:, :4].abs().max()
