"""The streaming bin as compiled kernels (numba): the arithmetic of ``numpy_stream``, one call.

The numpy step (``ldns_sim.nn.numpy_stream``) still makes ~40 numpy calls per block and
denoiser pass; on a 64-channel, batch-2 bin each costs a few microseconds of interpreter and
dispatch overhead, more when the caches are cold after the 48 ms the engine sleeps between
bins. Here one call does a whole latent step (every prediction, the DDIM updates, guidance and
the commit to the S4D states) and another the decoder and the spike-history law, with the
weights exported by the numpy classes.

The arithmetic is the numpy step's, in float32 / complex64, written as loops; it agrees with
the numpy and torch paths to float32 rounding, not bit for bit, and is bit-identical run to run
(``tests/nn/test_nn_compiled_stream.py``). Random numbers are not drawn here: the caller draws
them with torch on its generator, in the torch sampler's order, and passes them in.

Compiled on first use (a few seconds, once per machine: ``cache=True`` keeps the machine code
in numba's cache directory).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from numba import njit

from ldns_sim.nn.autoencoder import AutoEncoder
from ldns_sim.nn.numpy_stream import NumpyDecoder, NumpySpikeHistory
from ldns_sim.nn.spike_history import SpikeHistoryModel

_F32 = np.float32
_GELU_A = _F32(math.sqrt(2.0 / math.pi))
_GELU_B = _F32(math.sqrt(2.0 / math.pi) * 0.044715)
_LN_EPS = _F32(1e-5)
_ONE = _F32(1.0)
_HALF = _F32(0.5)
_INV_SQRT2 = _F32(1.0 / math.sqrt(2.0))
_SOFTPLUS_THRESHOLD = _F32(20.0)


@njit(cache=True, inline="always")
def _twice_gelu_tanh(v):
    """``2 gelu_tanh(v)`` of a scalar (the 0.5 is folded into the next weights)."""
    return v * (_ONE + math.tanh(v * (_GELU_A + _GELU_B * v * v)))


@njit(cache=True)
def _modulated_layer_norm(x, scale, shift, out):
    """out = layer_norm(x) * scale + shift; x, out, scale, shift (rows, C)."""
    rows, c = x.shape
    inv_c = _ONE / _F32(c)
    for i in range(rows):
        mean = _F32(0.0)
        for k in range(c):
            mean += x[i, k]
        mean *= inv_c
        var = _F32(0.0)
        for k in range(c):
            d = x[i, k] - mean
            var += d * d
        inv_std = _ONE / math.sqrt(var * inv_c + _LN_EPS)
        for k in range(c):
            out[i, k] = _F32((x[i, k] - mean) * inv_std) * scale[i, k] + shift[i, k]


@njit(cache=True)
def _denoiser_pass(x, commit, r, k0, d_a, d_b, two_c, d, w_mix, b_mix, w_mlp_in, b_mlp_in,
                   w_mlp_out, b_mlp_out, mods, states, w_out, b_out):
    """One denoiser pass on the input projection x (rows, C), updated in place.

    ``commit``: the S4D states (n_blocks, rows, C, N) move on one bin; otherwise each block's
    time mixer reads ``k0 h + r`` (the state's part ``r`` (n_blocks, rows, C) fixed for the
    bin). mods (n_blocks, 6, rows, C): shift1, 1 + scale1, gate1, shift2, 1 + scale2, gate2.
    Returns the predicted noise (rows, Z).
    """
    rows, c = x.shape
    n_state = d_a.shape[2]
    h = np.empty_like(x)
    y = np.empty_like(x)
    for blk in range(k0.shape[0]):
        mod = mods[blk]
        _modulated_layer_norm(x, mod[1], mod[0], h)
        for i in range(rows):
            for k in range(c):
                hk = h[i, k]
                if commit:
                    acc = _F32(0.0)
                    for n in range(n_state):
                        s = d_a[blk, k, n] * states[blk, i, k, n] + d_b[blk, k, n] * hk
                        states[blk, i, k, n] = s
                        acc += (two_c[blk, k, n] * s).real
                    y[i, k] = _twice_gelu_tanh(acc + d[blk, k] * hk)
                else:
                    y[i, k] = _twice_gelu_tanh(k0[blk, k] * hk + r[blk, i, k])
        mixed = np.dot(y, w_mix[blk])
        for i in range(rows):
            for k in range(c):
                x[i, k] += (mixed[i, k] + b_mix[blk, k]) * mod[2, i, k]
        _modulated_layer_norm(x, mod[4], mod[3], h)
        hidden = np.dot(h, w_mlp_in[blk])
        for i in range(rows):
            for k in range(hidden.shape[1]):
                hidden[i, k] = _twice_gelu_tanh(hidden[i, k] + b_mlp_in[blk, k])
        back = np.dot(hidden, w_mlp_out[blk])
        for i in range(rows):
            for k in range(c):
                x[i, k] += (back[i, k] + b_mlp_out[blk, k]) * mod[5, i, k]
    out = np.dot(x, w_out)
    for i in range(rows):
        for k in range(out.shape[1]):
            out[i, k] += b_out[k]
    return out


@njit(cache=True)
def _input_rows(z, w_in_z, terms, n_batch):
    """The input projection of latents z (B, Z) for every row: ``z W + terms`` (rows, C),
    the B latents repeated for the guided rows."""
    proj = np.dot(z, w_in_z)  # (B, C)
    rows, c = terms.shape
    x = np.empty((rows, c), dtype=np.float32)
    for i in range(rows):
        for k in range(c):
            x[i, k] = proj[i % n_batch, k] + terms[i, k]
    return x


@njit(cache=True)
def latent_step(z, step_noise, ctx_noise, in_pred, in_commit, w_in_z, k0, c_da, d_a, d_b,
                two_c, d, w_mix, b_mix, w_mlp_in, b_mlp_in, w_mlp_out, b_mlp_out, mods,
                states, w_out, b_out, coef, n_batch, guided, guidance, clip, ctx_a, ctx_b):
    """One bin of ``AutoregressiveSampler.next_bin``: DDIM from noise, then the commit.

    z (B, Z) the initial noise; step_noise (n_steps, B, Z) the ancestral noise (zeros where
    sigma is 0); ctx_noise (B, Z) or empty (0, Z) when the context is clean; in_pred /
    in_commit (rows, C) the per-bin input terms (bias, behaviour, context flag); mods
    (n_steps + 1, n_blocks, 6, rows, C), the last the commit's timestep; coef (n_steps, 6):
    c_eps, 1/sqrt(abar), sqrt(abar_prev), c_dir, sigma, is_last. States move on one bin.
    Returns the emitted latents (B, Z), normalised.
    """
    n_blocks, rows, c, n_state = states.shape
    r = np.empty((n_blocks, rows, c), dtype=np.float32)
    for blk in range(n_blocks):
        for i in range(rows):
            for k in range(c):
                acc = _F32(0.0)
                for n in range(n_state):
                    acc += (c_da[blk, k, n] * states[blk, i, k, n]).real
                r[blk, i, k] = _F32(2.0) * acc
    n_lat = z.shape[1]
    z = z.copy()
    for s in range(coef.shape[0]):
        x = _input_rows(z, w_in_z, in_pred, n_batch)
        eps_all = _denoiser_pass(x, False, r, k0, d_a, d_b, two_c, d, w_mix, b_mix, w_mlp_in,
                                 b_mlp_in, w_mlp_out, b_mlp_out, mods[s], states, w_out, b_out)
        for b in range(n_batch):
            for j in range(n_lat):
                eps = eps_all[b, j]
                if guided:
                    eps_u = eps_all[n_batch + b, j]
                    eps = eps_u + guidance * (eps - eps_u)
                z0 = (z[b, j] - coef[s, 0] * eps) * coef[s, 1]
                if clip > 0:
                    z0 = min(max(z0, -clip), clip)
                if coef[s, 5] > 0:
                    z[b, j] = z0
                else:
                    z[b, j] = (coef[s, 2] * z0 + coef[s, 3] * eps
                               + coef[s, 4] * step_noise[s, b, j])
    context = z.copy()
    if ctx_noise.shape[0] > 0:
        for b in range(n_batch):
            for j in range(n_lat):
                context[b, j] = ctx_a * z[b, j] + ctx_b * ctx_noise[b, j]
    x = _input_rows(context, w_in_z, in_commit, n_batch)
    _denoiser_pass(x, True, r, k0, d_a, d_b, two_c, d, w_mix, b_mix, w_mlp_in, b_mlp_in,
                   w_mlp_out, b_mlp_out, mods[coef.shape[0]], states, w_out, b_out)
    return z


@njit(cache=True)
def _softplus(v):
    if v > _SOFTPLUS_THRESHOLD:
        return v
    return _F32(math.log1p(math.exp(v)))


@njit(cache=True)
def decode_rates(z, index, scale, w_un, grouped_1to1, b_un, w_out, b_out):
    """``AutoEncoder.decode`` of one bin: latents (Z,) -> rates (N,) in counts per bin."""
    n_hidden = b_un.shape[0]
    if grouped_1to1:
        h = np.empty(n_hidden, dtype=np.float32)
        for k in range(n_hidden):
            h[k] = z[index[k]] * scale[k]
    else:
        h = np.dot(z, w_un)
    for k in range(n_hidden):
        v = h[k] + b_un[k]
        h[k] = v * (_ONE + _F32(math.erf(v * _INV_SQRT2))) * _HALF  # exact GELU
    out = np.dot(h, w_out)
    for k in range(out.shape[0]):
        out[k] = _softplus(out[k] + b_out[k])
    return out


@njit(cache=True)
def history_intensity(buffer, weights, gain, bias, rates, log_eps):
    """The spike-history model's mean drive mu (N,) for this bin (buffer (N, H), newest first)."""
    n, n_hist = buffer.shape
    mu = np.empty(n, dtype=np.float32)
    for i in range(n):
        drive = _F32(0.0)
        for j in range(n_hist):
            drive += buffer[i, j] * weights[i, j]
        drive += gain[i] * _F32(math.log(rates[i] + log_eps)) + bias[i]
        mu[i] = _softplus(drive)
    return mu


@njit(cache=True)
def history_counts(mu, nu_support, nu_log_factorial, uniform, log_eps, buffer):
    """Counts (N,) by inverse CDF of the dispersed count law at ``uniform`` (N,); the buffer
    moves on one bin."""
    n, n_support = nu_support.shape
    counts = np.empty(n, dtype=np.float32)
    energy = np.empty(n_support, dtype=np.float32)
    for i in range(n):
        log_mu = _F32(math.log(mu[i] + log_eps))
        top = _F32(-np.inf)
        for k in range(n_support):
            e = log_mu * nu_support[i, k] - nu_log_factorial[i, k]
            energy[k] = e
            top = max(top, e)
        total = _F32(0.0)
        for k in range(n_support):
            energy[k] = _F32(math.exp(energy[k] - top))
            total += energy[k]
        cum = _F32(0.0)
        count = 0
        for k in range(n_support - 1):
            cum += energy[k]
            if cum / total < uniform[i]:
                count += 1
        counts[i] = count
    shift_history(buffer, counts)
    return counts


@njit(cache=True)
def shift_history(buffer, counts):
    """buffer (N, H), newest first: move on one bin and put ``counts`` in front."""
    n, n_hist = buffer.shape
    for i in range(n):
        for j in range(n_hist - 1, 0, -1):
            buffer[i, j] = buffer[i, j - 1]
        buffer[i, 0] = counts[i]


class CompiledDecoder:
    """``NumpyDecoder`` as one compiled call: latents (Z,) -> rates (N,) in counts per bin."""

    def __init__(self, ae: AutoEncoder):
        ref = NumpyDecoder(ae)
        self._args = (
            getattr(ref, "index", np.zeros(0, np.int64)), getattr(ref, "scale", ref.b_un),
            ref.w_un, ref.grouped_1to1, ref.b_un, ref.w_out, ref.b_out)

    def __call__(self, z: np.ndarray) -> np.ndarray:
        return decode_rates(np.ascontiguousarray(z, np.float32), *self._args)


class CompiledSpikeHistory:
    """``NumpySpikeHistory.step`` with compiled arithmetic and the same torch draws."""

    def __init__(self, model: SpikeHistoryModel):
        self._ref = ref = NumpySpikeHistory(model)
        self.buffer = ref.buffer  # (N, H), newest first
        self._log_eps = _F32(ref.log_eps)

    def step(self, rates: np.ndarray, generator: torch.Generator) -> np.ndarray:
        """rates (N,) counts per bin -> counts (N,) float32; the buffer moves on one bin."""
        ref = self._ref
        mu = history_intensity(self.buffer, ref.weights, ref.gain, ref.bias, rates,
                               self._log_eps)
        if not ref.dispersion:
            draw = torch.poisson(torch.from_numpy(mu[None]), generator=generator)
            counts = draw.clamp_(max=ref.max_count).numpy()[0]
            shift_history(self.buffer, counts)
            return counts
        uniform = torch.rand((1, len(mu), 1), generator=generator).numpy()[0, :, 0]  # (N,)
        return history_counts(mu, ref.nu_support, ref.nu_log_factorial, uniform,
                              self._log_eps, self.buffer)
