"""Direction models learn a null direction (0, 0), so their sampler can use guidance."""

import torch

from ldns_sim.diffusion.autoregressive import AutoregressiveSampler
from ldns_sim.diffusion.schedule import NoiseSchedule
from ldns_sim.nn.denoiser import Denoiser, DenoiserConfig, DenoiserStepper
from ldns_sim.testing import randomise_zero_parameters
from ldns_sim.train.fit_diffusion import denoising_loss, without_direction


def _direction_denoiser(null_condition: bool) -> Denoiser:
    cfg = DenoiserConfig(n_latents=4, n_hidden=16, n_blocks=1, n_state=4, causal=True,
                         use_direction=True, null_condition=null_condition,
                         guidance=2.0 if null_condition else 1.0)
    model = Denoiser(cfg, torch.Generator().manual_seed(0)).eval()
    return randomise_zero_parameters(model, torch.Generator().manual_seed(1))


def _unit_directions(n: int) -> torch.Tensor:
    angle = torch.linspace(0, 6.0, n)
    return torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)  # (n, 2)


def test_without_direction_drops_whole_windows_at_the_given_rate():
    d = _unit_directions(2000)
    g = torch.Generator().manual_seed(0)
    assert torch.equal(without_direction(d, 0.0, g), d)
    assert torch.equal(without_direction(d, 1.0, g), torch.zeros_like(d))
    half = without_direction(d, 0.3, g)
    dropped = (half.norm(dim=1) == 0)
    assert torch.equal(half[~dropped], d[~dropped])  # a kept window keeps its direction
    assert 0.25 < dropped.float().mean().item() < 0.35


def _directions_seen_in_training(null_condition: bool, cond_dropout: float) -> torch.Tensor:
    model = _direction_denoiser(null_condition)
    seen = []

    def net(z_ctx, z_t, t, behaviour, direction, t_ctx, teacher_forced):
        seen.append(direction)
        return torch.zeros_like(z_t)

    z0 = torch.randn(64, 4, 12, generator=torch.Generator().manual_seed(2))
    denoising_loss(net, model, NoiseSchedule(), z0, None, _unit_directions(64), 0.0,
                   torch.Generator().manual_seed(3), cond_dropout=cond_dropout)
    return seen[0]


def test_training_drops_the_direction_of_a_guidable_model_only():
    assert torch.equal(_directions_seen_in_training(True, 1.0), torch.zeros(64, 2))
    assert torch.equal(_directions_seen_in_training(True, 0.0), _unit_directions(64))
    assert torch.equal(_directions_seen_in_training(False, 1.0), _unit_directions(64))


def test_guided_sampler_gives_its_unconditional_rows_the_null_direction():
    model = _direction_denoiser(null_condition=True)
    direction = torch.tensor([[0.6, 0.8]])
    sampler = AutoregressiveSampler(model, NoiseSchedule(), 3, direction=direction)
    assert sampler.guided and sampler.stepper.n_batch == 2
    given = DenoiserStepper(model, sampler.timesteps, 1, direction=direction)
    null = DenoiserStepper(model, sampler.timesteps, 1, direction=torch.zeros(1, 2))
    t = sampler.timesteps[0]
    for row, ref in ((0, given), (1, null)):
        for mods, ref_mods in zip(sampler.stepper.mods[t], ref.mods[t]):
            for m, r in zip(mods, ref_mods):
                torch.testing.assert_close(m[row], r[0])
    assert not torch.allclose(given.mods[t][0][0], null.mods[t][0][0])  # they differ
