"""``AutoregressiveSampler.next_bin`` as one compiled call (see ``ldns_sim.nn.compiled_stream``).

Built on the numpy sampler's exported weights; the random numbers of a bin are drawn with
``torch.randn`` on the caller's generator before the call, in the torch sampler's order and
shapes (initial noise, the ancestral noise of each step that has any, the context noise), so a
seed consumes its generator exactly as on the torch and numpy paths.
"""

from __future__ import annotations

import numpy as np
import torch

from ldns_sim.diffusion.autoregressive import AutoregressiveSampler
from ldns_sim.diffusion.numpy_autoregressive import NumpyAutoregressiveSampler
from ldns_sim.nn.compiled_stream import latent_step


class CompiledAutoregressiveSampler:
    """Built from a fresh (or running) ``AutoregressiveSampler``; takes over its state."""

    def __init__(self, sampler: AutoregressiveSampler):
        base = NumpyAutoregressiveSampler(sampler)
        self._base = base
        stepper = base.stepper
        self.n_batch, self.n_latents = base.n_batch, base.n_latents
        self.n_rows = stepper.n_rows
        blocks = stepper.blocks

        def stack(key, dtype=np.float32):
            return np.ascontiguousarray(np.stack([b[key] for b in blocks]).astype(dtype))

        self._weights = (
            np.ascontiguousarray(stepper.w_in_z), stack("k0"),
            stack("c_da", np.complex64), stack("d_a", np.complex64),
            stack("d_b", np.complex64), stack("two_c", np.complex64), stack("d"),
            stack("w_mix"), stack("b_mix"), stack("w_mlp_in"), stack("b_mlp_in"),
            stack("w_mlp_out"), stack("b_mlp_out"),
        )
        timesteps = [step["t"] for step in base.steps] + [base.context_t]
        c = stepper.b_in.shape[-1]
        self._mods = np.ascontiguousarray(np.stack([
            np.stack([np.stack([np.broadcast_to(m, (self.n_rows, c)) for m in per_block])
                      for per_block in stepper.mods[t]])
            for t in timesteps
        ]).astype(np.float32))  # (n_steps + 1, n_blocks, 6, rows, C)
        self._states = np.ascontiguousarray(
            np.stack(stepper.states).astype(np.complex64))  # (n_blocks, rows, C, N)
        self._w_out = np.ascontiguousarray(stepper.w_out)
        self._b_out = np.ascontiguousarray(stepper.b_out)
        self._coef = np.array([
            [s["c_eps"], s["inv_sqrt_abar"], s.get("sqrt_abar_prev", 0.0), s.get("c_dir", 0.0),
             s.get("sigma", 0.0), float(s["last"])] for s in base.steps], dtype=np.float32)
        self._sigma_steps = [i for i, s in enumerate(base.steps)
                             if not s["last"] and s["sigma"] > 0]
        self._guidance = np.float32(base.guidance)
        self._clip = np.float32(base.clip or 0.0)
        self._ctx = (np.float32(base.ctx_a), np.float32(base.ctx_b))
        self._no_ctx_noise = np.zeros((0, self.n_latents), np.float32)
        self._in_pred = np.zeros((self.n_rows, c), np.float32)
        self._in_commit = np.zeros_like(self._in_pred)
        self._step_noise = np.zeros((len(base.steps), self.n_batch, self.n_latents), np.float32)

    def _draw(self, generator: torch.Generator):
        """This bin's random numbers, in the torch sampler's order."""
        shape = (self.n_batch, self.n_latents)
        z = torch.randn(shape, generator=generator).numpy()
        for i in self._sigma_steps:
            self._step_noise[i] = torch.randn(shape, generator=generator).numpy()
        ctx_noise = self._no_ctx_noise
        if self._base.context_t > 0:
            ctx_noise = torch.randn(shape, generator=generator).numpy()
        return z, ctx_noise

    def _input_terms(self, behaviour: np.ndarray | None):
        """(rows, C) input-projection terms for predictions and the commit (bias, behaviour,
        and the context flag for the commit), as ``NumpyDenoiserStepper.begin_bin``."""
        stepper = self._base.stepper
        rows = self._base._model_behaviour(behaviour)
        in_pred = self._in_pred
        in_pred[:] = stepper.b_in
        if rows is not None:
            in_pred += rows @ stepper.w_in_beh
        np.add(in_pred, stepper.w_in_flag, out=self._in_commit)
        return in_pred, self._in_commit

    def _latent_step(self, z: np.ndarray, ctx_noise: np.ndarray, in_pred: np.ndarray,
                     in_commit: np.ndarray) -> np.ndarray:
        """The kernel call: this bin's draws and input terms -> latents (B, Z); states move."""
        return latent_step(z, self._step_noise, ctx_noise, in_pred, in_commit, *self._weights,
                           self._mods, self._states, self._w_out, self._b_out, self._coef,
                           self.n_batch, self._base.guided, self._guidance, self._clip,
                           *self._ctx)

    def next_bin(self, behaviour: np.ndarray | None, generator: torch.Generator) -> np.ndarray:
        """behaviour (B, n_beh) normalised float32, or None -> latents (B, Z) normalised."""
        in_pred, in_commit = self._input_terms(behaviour)
        z, ctx_noise = self._draw(generator)
        return self._latent_step(z, ctx_noise, in_pred, in_commit)
