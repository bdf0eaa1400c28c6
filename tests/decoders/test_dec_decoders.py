"""Decoders: recovery of velocity from tuned spikes, the Kalman recursion by hand, storage."""

import numpy as np
import pytest

from ldns_sim.closed_loop.calibration import calibration_block
from ldns_sim.decoders import (
    RefitKalmanFilter,
    VelocityKalmanFilter,
    WienerFilter,
    intended_velocity,
    load_decoder,
    make_decoder,
)
from ldns_sim.errors import ConfigError, DataError
from ldns_sim.evaluation.decoding import r2_score
from ldns_sim.testing import TuningCurveGenerator


@pytest.fixture(scope="module")
def tuned_blocks():
    gen = TuningCurveGenerator(40, 0.05, 1, np.random.default_rng(0))
    train = calibration_block(gen, 90.0, 1.0, np.random.default_rng(1))
    test = calibration_block(gen, 30.0, 1.0, np.random.default_rng(2))
    return train, test


@pytest.mark.parametrize("kind", ["wiener", "kalman", "refit"])
def test_decoders_recover_velocity_from_tuned_population(tuned_blocks, kind):
    train, test = tuned_blocks
    decoder = make_decoder(kind).fit(train.counts, train.velocity)
    r2 = r2_score(test.velocity, decoder.predict(test.counts))
    assert r2 > 0.6, f"{kind}: held-out R² {r2:.3f}"


def test_decoder_on_shuffled_labels_does_not_decode(tuned_blocks):
    train, test = tuned_blocks
    rng = np.random.default_rng(5)
    shuffled = [v[rng.permutation(len(v))] for v in train.velocity]
    decoder = WienerFilter().fit(train.counts, shuffled)
    assert r2_score(test.velocity, decoder.predict(test.counts)) < 0.2


def _filter(A, W, C, d, Q, steady_state=False):
    kf = VelocityKalmanFilter(steady_state=steady_state)
    return kf.from_params({"steady_state": np.array(steady_state), "q_floor": np.array(1e-3),
                           "A": A, "W": W, "C": C, "d": d, "Q": Q})


def test_kalman_predict_update_matches_hand_computation():
    # A = 0.9 I, W = I, C = I, d = 0, Q = I, x0 = 0, P0 = 0.
    kf = _filter(0.9 * np.eye(2), np.eye(2), np.eye(2), np.zeros(2), np.eye(2))
    y1, y2 = np.array([2.0, -4.0]), np.array([1.0, 1.0])
    # step 1: prior x = 0, P = W = I; S = 2 I; K = 0.5 I; x = 0.5 y1; P = 0.5 I
    np.testing.assert_allclose(kf.step(y1), [1.0, -2.0])
    np.testing.assert_allclose(kf.P, 0.5 * np.eye(2))
    # step 2: prior x = 0.9 * (1, -2) = (0.9, -1.8); P = 0.81 * 0.5 + 1 = 1.405;
    # K = 1.405 / 2.405; x = prior + K (y2 - prior)
    k = 1.405 / 2.405
    expected = np.array([0.9 + k * (1 - 0.9), -1.8 + k * (1 + 1.8)])
    np.testing.assert_allclose(kf.step(y2), expected)
    np.testing.assert_allclose(kf.P, (1 - k) * 1.405 * np.eye(2))


def test_kalman_uses_baseline_and_tuning():
    # one neuron per axis with baseline 5: y = 2 x + 5 observed exactly (tiny Q) -> x = (y-5)/2
    kf = _filter(np.eye(2), 100 * np.eye(2), 2 * np.eye(2), np.full(2, 5.0), 1e-8 * np.eye(2))
    np.testing.assert_allclose(kf.step(np.array([9.0, 1.0])), [2.0, -2.0], atol=1e-6)


def test_steady_state_gain_is_the_converged_gain(tuned_blocks):
    train, test = tuned_blocks
    full = VelocityKalmanFilter().fit(train.counts, train.velocity)
    steady = VelocityKalmanFilter(steady_state=True).fit(train.counts, train.velocity)
    counts = np.concatenate(test.counts)
    a = np.array([full.step(y) for y in counts])
    b = np.array([steady.step(y) for y in counts])
    np.testing.assert_allclose(a[-100:], b[-100:], atol=1e-6)
    assert not np.allclose(a[:2], b[:2])  # the full filter starts from P = 0


@pytest.mark.parametrize("kind", ["wiener", "kalman", "refit"])
def test_save_and_load_give_the_same_decoder(tuned_blocks, tmp_path, kind):
    train, test = tuned_blocks
    decoder = make_decoder(kind).fit(train.counts, train.velocity)
    path = decoder.save(tmp_path / f"{kind}.npz")
    loaded = load_decoder(path)
    assert type(loaded) is type(decoder)
    np.testing.assert_allclose(np.concatenate(loaded.predict(test.counts[:3])),
                               np.concatenate(decoder.predict(test.counts[:3])))
    with np.load(path, allow_pickle=False) as f:  # plain arrays only
        assert str(f["kind"]) == kind


def test_load_rejects_other_files(tmp_path):
    np.savez(tmp_path / "x.npz", a=np.zeros(3))
    with pytest.raises(ConfigError, match="kind"):
        load_decoder(tmp_path / "x.npz")
    with pytest.raises(ConfigError, match="no such file"):
        load_decoder(tmp_path / "missing.npz")
    with pytest.raises(ConfigError, match="unknown decoder"):
        make_decoder("lstm")


def test_step_checks_shape_and_fit(tuned_blocks):
    train, _ = tuned_blocks
    with pytest.raises(ConfigError, match="before fit"):
        WienerFilter().step(np.zeros(40))
    decoder = WienerFilter().fit(train.counts, train.velocity)
    with pytest.raises(DataError, match="expected 40"):
        decoder.step(np.zeros(39))
    with pytest.raises(DataError, match="trial 0"):
        WienerFilter().fit([np.zeros((10, 4))], [np.zeros((9, 2))])


def test_intended_velocity_rotates_to_target_and_zeroes_inside():
    decoded = np.array([[3.0, 4.0], [1.0, 0.0]])
    cursor = np.zeros((2, 2))
    target = np.array([[0.0, 2.0], [5.0, 5.0]])
    out = intended_velocity(decoded, cursor, target, np.array([False, True]))
    np.testing.assert_allclose(out, [[0.0, 5.0], [0.0, 0.0]])


def test_refit_learns_the_intended_direction(tuned_blocks):
    # decoded velocity = true velocity rotated by 40 degrees; targets lie along the true
    # velocity: ReFIT's intended velocity is then exactly the true velocity.
    train, _ = tuned_blocks
    counts = np.concatenate(train.counts)
    true_v = np.concatenate(train.velocity)
    angle = np.deg2rad(40)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    decoded = true_v @ rot.T
    cursor = np.zeros_like(true_v)
    moving = np.linalg.norm(true_v, axis=1) > 1e-6
    refit = RefitKalmanFilter().fit([counts], [decoded])
    refit.refit([counts[moving]], [decoded[moving]], [cursor[moving]],
                [10 * true_v[moving]], [np.zeros(moving.sum(), bool)])
    reference = VelocityKalmanFilter().fit([counts], [true_v])
    reference._fit_observation(counts[moving], true_v[moving])
    np.testing.assert_allclose(refit.C, reference.C, atol=1e-8)
    np.testing.assert_allclose(refit.A, VelocityKalmanFilter().fit([counts], [decoded]).A)
