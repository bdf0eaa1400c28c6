"""The streaming step in numpy: the arithmetic of ``DenoiserStepper`` and ``AutoEncoder.decode``.

A streaming bin is batch 1 (2 rows when guiding), 64 channels, a few blocks and a few DDIM
steps: hundreds of tiny ops, so its cost is per-op overhead, not FLOPs. numpy's per-call
overhead is a fraction of torch's, and the step needs no autograd, no dispatcher and no
(B, C, L) layout; the weights are exported once from the torch modules and the arithmetic is
written out so that each op does as much as it can:

* predictions do not change the S4D state, so within a bin each block's state enters only
  through ``r = 2 Re(sum_n C dA s)``, computed once per bin: a prediction's time mixer is
  ``y = r + K0 h`` with ``K0 = 2 Re(sum_n C dB) + D`` (the lag-0 kernel, as in
  ``S4D.forward_teacher_forced``); only the commit touches the complex state;
* the behaviour and the context flag enter the input projection as a per-bin constant;
* the per-timestep modulation is cached as arrays, ``1 + scale`` included.

float32 / complex64 throughout, as the torch path: the two agree to float rounding
(``tests/nn/test_nn_numpy_stream.py``), not bit for bit. Random numbers are not drawn here.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.special import erf

from ldns_sim.nn.autoencoder import AutoEncoder
from ldns_sim.nn.denoiser import DenoiserStepper
from ldns_sim.nn.spike_history import _LOG_EPS, SpikeHistoryModel

_F32 = np.float32
#: GELU, tanh form (``blocks.gelu``): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
_GELU_A = _F32(math.sqrt(2.0 / math.pi))
_GELU_B = _F32(math.sqrt(2.0 / math.pi) * 0.044715)
_LN_EPS = _F32(1e-5)


def _np(t: torch.Tensor, dtype=_F32) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().numpy().astype(dtype, copy=False))


def twice_gelu_tanh(x: np.ndarray) -> np.ndarray:
    """``2 * gelu_tanh(x)``: the 0.5 is folded into the next layer's weights (one op less)."""
    u = x * x
    u *= _GELU_B
    u += _GELU_A
    u *= x
    np.tanh(u, out=u)
    u += 1
    u *= x
    return u


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    """GELU, tanh approximation, as ``F.gelu(x, approximate="tanh")``."""
    return 0.5 * twice_gelu_tanh(x)


def _layer_norm(x: np.ndarray, centre: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Non-affine layer norm over the last axis: ``centre = I - 1/C``, ``mean = 1/C`` (C, 1)."""
    d = x @ centre
    v = (d * d) @ mean
    v += _LN_EPS
    np.sqrt(v, out=v)
    return d / v


class NumpyDenoiserStepper:
    """``DenoiserStepper`` in numpy: ``begin_bin``, then ``predict`` (any number), ``commit``.

    Built from a torch ``DenoiserStepper`` (its caches, modulation and current state).
    Rows are the stepper's batch rows (2 per stream when guiding).
    """

    def __init__(self, stepper: DenoiserStepper):
        model = stepper.model
        cfg = model.cfg
        self.n_rows = stepper.n_batch
        self.n_latents = cfg.n_latents
        c = cfg.n_hidden
        w_in, b_in = (_np(p) for p in stepper.conv_in)  # (C, Z + n_beh + 1), (C,)
        z = cfg.n_latents
        self.w_in_z = np.ascontiguousarray(w_in[:, :z].T)  # (Z, C)
        self.w_in_beh = np.ascontiguousarray(w_in[:, z:-1].T)  # (n_beh_in, C)
        self.w_in_flag = w_in[:, -1].copy()  # (C,)
        self.b_in = b_in
        self.w_out = np.ascontiguousarray(_np(stepper.conv_out[0]).T)  # (C, Z)
        self.b_out = _np(stepper.conv_out[1])
        self.centre = (np.eye(c) - 1.0 / c).astype(_F32)  # (C, C)
        self.mean = np.full((c, 1), 1.0 / c, dtype=_F32)
        self.blocks = []
        for blk, cache in zip(model.blocks, stepper.caches):
            d_a, d_b, c_ssm = (_np(p, np.complex64) for p in cache["s4"])  # (C, N) each
            d = _np(blk.s4.d)
            self.blocks.append({
                "d_a": d_a, "d_b": d_b, "c": c_ssm, "c_da": c_ssm * d_a,
                "two_c": 2 * c_ssm, "d": d,
                "k0": (2 * (c_ssm * d_b).sum(-1).real + d).astype(_F32),  # (C,)
                # halved: they read twice_gelu_tanh
                "w_mix": np.ascontiguousarray(0.5 * _np(cache["mix"][0]).T),
                "b_mix": _np(cache["mix"][1]),
                "w_mlp_in": np.ascontiguousarray(_np(cache["mlp_in"][0]).T),
                "b_mlp_in": _np(cache["mlp_in"][1]),
                "w_mlp_out": np.ascontiguousarray(0.5 * _np(cache["mlp_out"][0]).T),
                "b_mlp_out": _np(cache["mlp_out"][1]),
            })
        # per timestep and block: (shift1, 1 + scale1, gate1, shift2, 1 + scale2, gate2)
        self.mods = {
            t: [(_np(s1), 1 + _np(c1), _np(g1), _np(s2), 1 + _np(c2), _np(g2))
                for s1, c1, g1, s2, c2, g2 in per_block]
            for t, per_block in stepper.mods.items()
        }
        self.states = [_np(s, np.complex64) for s in stepper.states]  # (rows, C, N) each
        self._r: list[np.ndarray] = []
        self._base = {0.0: self.b_in, 1.0: self.b_in + self.w_in_flag}

    def begin_bin(self, behaviour: np.ndarray | None) -> None:
        """Per-bin constants: the state's contribution to every block, the behaviour's input."""
        self._r = [2 * (b["c_da"] * s).sum(-1).real for b, s in zip(self.blocks, self.states)]
        beh = 0.0 if behaviour is None else behaviour @ self.w_in_beh  # (rows, C)
        # always (rows, C): a guided direction model has no behaviour input, and its rows
        # differ only in their modulation
        self._in_pred = np.broadcast_to(self.b_in + beh, (self.n_rows, len(self.b_in))).copy()
        self._in_commit = self._in_pred + self.w_in_flag

    def _run(self, z: np.ndarray, t: int, commit: bool) -> np.ndarray:
        """z (rows | 1, Z) -> predicted noise (rows, Z)."""
        x = z @ self.w_in_z + (self._in_commit if commit else self._in_pred)  # (rows, C)
        centre, mean = self.centre, self.mean
        for i, (blk, mod) in enumerate(zip(self.blocks, self.mods[t])):
            s1, c1, g1, s2, c2, g2 = mod
            h = _layer_norm(x, centre, mean)
            h *= c1
            h += s1
            if commit:
                state = blk["d_a"] * self.states[i]
                state += blk["d_b"] * h[..., None]
                self.states[i] = state
                y = (blk["two_c"] * state).sum(-1).real
                y += blk["d"] * h
            else:
                y = blk["k0"] * h
                y += self._r[i]
            y = twice_gelu_tanh(y) @ blk["w_mix"]
            y += blk["b_mix"]
            y *= g1
            x = x + y
            h = _layer_norm(x, centre, mean)
            h *= c2
            h += s2
            h = h @ blk["w_mlp_in"]
            h += blk["b_mlp_in"]
            h = twice_gelu_tanh(h) @ blk["w_mlp_out"]
            h += blk["b_mlp_out"]
            h *= g2
            x += h
        out = x @ self.w_out
        out += self.b_out
        return out

    def predict(self, z_t: np.ndarray, t: int) -> np.ndarray:
        """Noise prediction for one noisy bin (state unchanged); call ``begin_bin`` first."""
        return self._run(z_t, t, commit=False)

    def commit(self, z_context: np.ndarray, t: int = 0) -> None:
        """Append the emitted bin (rows | 1, Z), at noise level ``t``, to the context."""
        self._run(z_context, t, commit=True)


class NumpyDecoder:
    """``AutoEncoder.decode`` for one bin: latents (Z,) -> rates (N,) in counts per bin."""

    def __init__(self, ae: AutoEncoder):
        h, z = ae.cfg.n_hidden, ae.cfg.n_latents
        w_un = _np(ae.unbottleneck.weight)  # (H, Z / groups, 1)
        groups = ae.unbottleneck.groups
        dense = np.zeros((z, h), dtype=_F32)  # the grouped 1x1 conv as a dense (Z, H) map
        per_in, per_out = z // groups, h // groups
        for g in range(groups):
            dense[g * per_in:(g + 1) * per_in, g * per_out:(g + 1) * per_out] = \
                w_un[g * per_out:(g + 1) * per_out, :, 0].T
        self.grouped_1to1 = per_in == 1
        if self.grouped_1to1:  # each hidden channel reads one latent: a gather and a scale
            self.index = np.repeat(np.arange(z), per_out)
            self.scale = w_un[:, 0, 0].copy()
        self.w_un = dense
        self.b_un = _np(ae.unbottleneck.bias)
        self.w_out = np.ascontiguousarray(_np(ae.decoder_out.weight)[..., 0].T)  # (H, N)
        self.b_out = _np(ae.decoder_out.bias)

    def __call__(self, z: np.ndarray) -> np.ndarray:
        if self.grouped_1to1:
            h = z[self.index] * self.scale
        else:
            h = z @ self.w_un
        h += self.b_un
        h = h * (1 + erf(h * _F32(1 / math.sqrt(2)))) * _F32(0.5)  # exact GELU, as F.gelu
        h = h @ self.w_out
        h += self.b_out
        # softplus as torch (threshold 20): log1p(exp(x)), x itself above 20
        return np.where(h > 20, h, np.log1p(np.exp(np.minimum(h, 20))))


class NumpySpikeHistory:
    """``SpikeHistoryModel.sample_step`` for one stream, in numpy, with the same random draws.

    The intensity and the count law are computed in numpy; the draw itself is the torch
    model's: one ``torch.rand`` of shape (1, N, 1) per bin (inverse CDF) for a model with a
    count dispersion, ``torch.poisson`` for a Poisson model, on the caller's generator. The
    history buffer (N, H), newest first, lives here.
    """

    def __init__(self, model: SpikeHistoryModel):
        cfg = model.cfg
        self.max_count = cfg.max_count
        self.dispersion = cfg.dispersion
        self.weights = _np(model.weights)  # (N, H), lag 1 first
        self.gain = _np(model.log_rate_gain)  # (N,)
        self.bias = _np(model.bias)  # (N,)
        nu = _np(model.dispersion())[:, None]  # (N, 1)
        support = np.arange(cfg.max_count + 1, dtype=_F32)  # (K,)
        log_factorial = _np(torch.lgamma(torch.from_numpy(support) + 1))
        self.nu_support = nu * support  # (N, K)
        self.nu_log_factorial = nu * log_factorial  # (N, K)
        self.buffer = np.zeros((cfg.n_neurons, cfg.n_history), dtype=_F32)
        self.log_eps = _LOG_EPS

    def step(self, rates: np.ndarray, generator: torch.Generator) -> np.ndarray:
        """rates (N,) counts per bin -> counts (N,) float32; the buffer moves on one bin."""
        drive = (self.buffer * self.weights).sum(-1)
        drive += self.gain * np.log(rates + _F32(_LOG_EPS))
        drive += self.bias
        # softplus as torch (threshold 20)
        mu = np.where(drive > 20, drive, np.log1p(np.exp(np.minimum(drive, 20))))
        if not self.dispersion:
            draw = torch.poisson(torch.from_numpy(mu[None]), generator=generator)
            counts = draw.clamp_(max=self.max_count).numpy()[0]
        else:
            energy = np.log(mu + _F32(_LOG_EPS))[:, None] * self.nu_support
            energy -= self.nu_log_factorial
            energy -= energy.max(axis=-1, keepdims=True)
            np.exp(energy, out=energy)
            cdf = np.cumsum(energy, axis=-1)
            cdf /= cdf[:, -1:]
            uniform = torch.rand((1, len(mu), 1), generator=generator).numpy()[0]  # (N, 1)
            counts = (cdf[:, :-1] < uniform).sum(-1).astype(_F32)
        self.buffer[:, 1:] = self.buffer[:, :-1]
        self.buffer[:, 0] = counts
        return counts
