"""Schedule closed forms and samplers with an analytic stand-in model."""

import math

import pytest
import torch

from ldns_sim.core import STEP_SPACINGS
from ldns_sim.diffusion.sampler import ddim_step, ddpm_step, sample_loop
from ldns_sim.diffusion.schedule import NoiseSchedule


def test_linear_schedule_closed_forms():
    s = NoiseSchedule()
    assert s.betas[0].item() == pytest.approx(1e-4)
    assert s.betas[-1].item() == pytest.approx(0.02)
    expected = math.prod(1 - (1e-4 + (0.02 - 1e-4) * i / 999) for i in range(500))
    assert s.alpha_bars[499].item() == pytest.approx(expected, rel=1e-9)
    assert s.alpha_bars[-1].item() < 1e-4  # z_T is (almost) pure noise
    t = 700
    tilde = (1 - s.alpha_bars[t - 1]) / (1 - s.alpha_bars[t]) * s.betas[t]
    assert s.posterior_variance(t) == pytest.approx(tilde.item())


def test_add_noise_matches_formula():
    s = NoiseSchedule()
    z0, eps = torch.ones(2, 3, 4), torch.full((2, 3, 4), 2.0)
    t = torch.tensor([0, 999])
    zt = s.add_noise(z0, eps, t)
    for b in range(2):
        abar = s.alpha_bars[t[b]].item()
        assert zt[b, 0, 0].item() == pytest.approx(abar**0.5 + 2 * (1 - abar) ** 0.5, rel=1e-5)


def test_sampling_timesteps():
    s = NoiseSchedule()
    for spacing in STEP_SPACINGS:  # all steps: ancestral DDPM whatever the spacing
        assert s.sampling_timesteps(1000, spacing) == list(range(999, -1, -1))
    # trailing (the default): starts at the last training timestep, evenly spaced below it
    assert s.sampling_timesteps(4) == [999, 749, 499, 249]
    assert s.sampling_timesteps(10) == list(range(999, 0, -100))
    # leading (sessions 1-5): ends at t = 0
    assert s.sampling_timesteps(4, "leading") == [750, 500, 250, 0]
    for n in (1, 3, 7, 333, 999):
        ts = s.sampling_timesteps(n)
        assert len(ts) == n and ts[0] == 999 and ts == sorted(set(ts), reverse=True)
    with pytest.raises(ValueError):
        s.sampling_timesteps(0)
    with pytest.raises(ValueError, match="spacing"):
        s.sampling_timesteps(4, "uniform")


def _oracle(s: NoiseSchedule, mu: float):
    """Exact noise prediction for data at mu: eps = (z - sqrt(abar) mu) / sqrt(1 - abar)."""
    def predict(z, t):
        abar = s.alpha_bars[t].item()
        return (z - abar**0.5 * mu) / (1 - abar) ** 0.5
    return predict


@pytest.mark.parametrize("n_steps,eta", [(5, 0.0), (50, 0.0), (1000, 1.0)])
def test_samplers_recover_point_mass(n_steps, eta):
    s = NoiseSchedule()
    g = torch.Generator().manual_seed(0)
    z = sample_loop(s, _oracle(s, 1.5), torch.randn(64, 2, 3, generator=g), n_steps, eta, g)
    assert torch.allclose(z, torch.full_like(z, 1.5), atol=1e-3)


def test_ddim_eta0_deterministic_and_ddpm_matches_eta1():
    s = NoiseSchedule()
    z = torch.randn(4, 2, generator=torch.Generator().manual_seed(1))
    eps = torch.randn(4, 2, generator=torch.Generator().manual_seed(2))
    a = ddim_step(s, z, eps, 500, 400, 0.0, torch.Generator().manual_seed(3))
    b = ddim_step(s, z, eps, 500, 400, 0.0, torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    c = ddpm_step(s, z, eps, 500, torch.Generator().manual_seed(5))
    d = ddim_step(s, z, eps, 500, 499, 1.0, torch.Generator().manual_seed(5))
    assert torch.equal(c, d)


def test_gaussian_data_variance_recovered_by_ddpm():
    """For data ~ N(0, v), the exact eps is z sqrt(1-abar)/(abar v + 1 - abar)."""
    s, v = NoiseSchedule(), 0.25

    def predict(z, t):
        abar = s.alpha_bars[t].item()
        return z * (1 - abar) ** 0.5 / (abar * v + 1 - abar)

    g = torch.Generator().manual_seed(0)
    z = sample_loop(s, predict, torch.randn(4000, 1, generator=g), 1000, 1.0, g)
    assert z.var().item() == pytest.approx(v, rel=0.1)
    z_ddim = sample_loop(s, predict, torch.randn(4000, 1, generator=g), 250, 0.0, g)
    assert z_ddim.var().item() == pytest.approx(v, rel=0.1)
    # a few deterministic steps under-disperse (a known DDIM discretisation error)
    z_few = sample_loop(s, predict, torch.randn(4000, 1, generator=g), 5, 0.0, g)
    assert z_few.var().item() < 0.9 * v
