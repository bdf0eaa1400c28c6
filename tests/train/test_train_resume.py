"""Training resumes from its checkpoints, and a resumed stage leaves the later stages as an
uninterrupted run makes them (each stage draws from its own seeded stream)."""

import shutil

import pytest
import torch

from ldns_sim.bundle import load_bundle
from ldns_sim.data.tuning import make_tuning_data
from ldns_sim.train.config import preset
from ldns_sim.train.pipeline import stage_generator, train_model, with_overrides


def _cfg():
    return with_overrides(preset("tiny"), ae={"epochs": 4, "window_bins": 16},
                          diffusion={"epochs": 3, "window_bins": 16, "direction_epochs": 4,
                                     "direction_window_bins": 24},
                          history={"iterations": 5})


@pytest.fixture(scope="module")
def data():
    return make_tuning_data(n_trials=40, n_neurons=12, n_bins=32, seed=1)


def _weights(bundle):
    return {**{f"ae.{k}": v for k, v in bundle.ae.state_dict().items()},
            **{f"den.{k}": v for k, v in bundle.denoiser.state_dict().items()},
            **{f"hist.{k}": v for k, v in bundle.history.state_dict().items()}}


def test_resumed_from_the_autoencoder_checkpoint_equals_an_uninterrupted_run(data, tmp_path):
    torch.set_num_threads(1)
    whole = train_model(data, tmp_path / "whole", _cfg(), show_progress=False)
    resumed_dir = tmp_path / "resumed"
    (resumed_dir / "checkpoints").mkdir(parents=True)
    shutil.copy(tmp_path / "whole" / "checkpoints" / "autoencoder.pt",
                resumed_dir / "checkpoints" / "autoencoder.pt")
    train_model(data, resumed_dir, _cfg(), show_progress=False)
    resumed = load_bundle(resumed_dir)
    a, b = _weights(whole), _weights(resumed)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_checkpoint_of_other_settings_is_not_resumed(data, tmp_path):
    torch.set_num_threads(1)
    train_model(data, tmp_path / "a", _cfg(), show_progress=False)
    other = with_overrides(_cfg(), ae={"epochs": 5})
    shutil.copytree(tmp_path / "a" / "checkpoints", tmp_path / "b" / "checkpoints")
    bundle = train_model(data, tmp_path / "b", other, show_progress=False)
    assert bundle.meta.train_config["ae"]["epochs"] == 5
    assert not torch.equal(bundle.ae.encoder_in.weight,
                           load_bundle(tmp_path / "a").ae.encoder_in.weight)


def test_stage_generators_differ_by_stage_and_seed():
    draws = {(s, k): torch.rand(3, generator=stage_generator(s, k)) for s in (0, 1) for k in (0, 1)}
    assert len({tuple(v.tolist()) for v in draws.values()}) == 4
    assert torch.equal(torch.rand(3, generator=stage_generator(0, 1)), draws[(0, 1)])


def test_recorded_context_noise_follows_how_the_windows_were_cut(data, tmp_path):
    """Velocity models (windows across trial junctions, streamed) record the default context
    noise; direction models (one trial per window) record a clean context. The direction run
    goes to the velocity run's folder: its autoencoder (no velocity read-out) must not resume
    from the velocity run's state (it has the read-out's parameters too)."""
    from dataclasses import replace

    from ldns_sim.train.config import DiffusionTrain

    assert DiffusionTrain().context_noise_t > 0
    velocity = train_model(data, tmp_path / "v", _cfg(), show_progress=False)
    assert velocity.denoiser.cfg.context_noise_t == DiffusionTrain().context_noise_t
    direction = train_model(data, tmp_path / "v", replace(_cfg(), condition="direction"),
                            show_progress=False)
    assert direction.denoiser.cfg.context_noise_t == 0
    # and it trained on trial starts, for its own number of epochs
    assert direction.meta.window_bins == _cfg().diffusion.direction_window_bins
    assert direction.meta.metrics["causal_denoiser_epochs"] == _cfg().diffusion.direction_epochs
    # direction models are rate-calibrated (ldns_sim.train.calibrate_rates), velocity models not
    assert not any(k.startswith("calibration_") for k in velocity.meta.metrics)
    assert direction.meta.metrics["calibration_units_unconverged"] == 0
    # the saved intercept is the calibrated one: calibrating the saved bundle again (same seed,
    # same sampled rates and draws) finds every unit at its train mean and moves nothing
    from ldns_sim.train.pipeline import calibrate_bundle

    saved_bias = direction.history.bias.detach().clone()
    again = calibrate_bundle(direction, data.select("train"),
                             replace(_cfg(), condition="direction"))
    assert again["calibration_max_intercept_shift"] == 0.0
    assert torch.equal(direction.history.bias, saved_bias)


def test_direction_models_train_on_one_window_per_trial_from_its_start(data):
    from dataclasses import replace

    from ldns_sim.data.windows import window_index
    from ldns_sim.errors import DataError
    from ldns_sim.train.pipeline import diffusion_recipe

    cfg = replace(_cfg(), condition="direction")
    train, val = data.select("train"), data.select("val")
    dcfg = diffusion_recipe(cfg, train, val)
    assert dcfg.window_bins == cfg.diffusion.direction_window_bins
    assert dcfg.epochs == cfg.diffusion.direction_epochs
    lengths = [len(c) for c in train.counts]
    trial_of, start_of = window_index(lengths, dcfg.window_bins, dcfg.stride_bins)
    assert trial_of == list(range(len(lengths))) and set(start_of) == {0}
    # other conditions, and direction models with the old recipe, are left as configured
    assert diffusion_recipe(_cfg(), train, val) == _cfg().diffusion
    strided = with_overrides(cfg, diffusion={"direction_window_bins": None})
    assert diffusion_recipe(strided, train, val) == strided.diffusion
    # a window longer than every trial: one line naming the option, before any training
    too_long = with_overrides(cfg, diffusion={"direction_window_bins": 33})
    with pytest.raises(DataError, match="longest train trial has 32; give "
                                        "--direction-window-bins 32 or less"):
        diffusion_recipe(too_long, train, val)
    # the val split is checked too
    short_val = replace(val, **{field: tuple(x[:20] for x in getattr(val, field))
                                for field in ("counts", "behaviour", "true_rates")
                                if getattr(val, field) is not None})
    with pytest.raises(DataError, match="longest val trial has 20"):
        diffusion_recipe(cfg, train, short_val)
