"""``AutoregressiveSampler.next_bin`` in numpy, for streaming (see ``ldns_sim.nn.numpy_stream``).

The same sampler, the same settings and the same random numbers: every draw is made with
``torch.randn`` on the caller's ``torch.Generator``, in the order and shapes of the torch
sampler, so a seeded stream consumes the generator exactly as the torch path does. The
numbers agree with the torch path to float32 rounding (not bit for bit); each path on its own
is bit-identical run to run.
"""

from __future__ import annotations

import numpy as np
import torch

from ldns_sim.diffusion.autoregressive import AutoregressiveSampler
from ldns_sim.nn.numpy_stream import NumpyDenoiserStepper


class NumpyAutoregressiveSampler:
    """Built from a fresh (or running) ``AutoregressiveSampler``; takes over its state."""

    def __init__(self, sampler: AutoregressiveSampler):
        self.n_batch, self.n_latents = sampler.n_batch, sampler.n_latents
        self.null_condition, self.guided = sampler.null_condition, sampler.guided
        self.guidance = np.float32(sampler.guidance)
        self.clip = sampler.clip
        self.stepper = NumpyDenoiserStepper(sampler.stepper)
        alpha_bars = sampler.schedule.alpha_bars
        ts = sampler.timesteps
        self.steps = []  # per step: t, 1/sqrt(abar), sqrt(1 - abar), then the move to t_prev
        for i, t in enumerate(ts):
            t_prev = ts[i + 1] if i + 1 < len(ts) else -1
            abar = float(alpha_bars[t])
            step = {"t": t, "last": t_prev < 0, "c_eps": (1.0 - abar) ** 0.5,
                    "inv_sqrt_abar": 1.0 / abar**0.5}
            if t_prev >= 0:
                abar_prev = float(alpha_bars[t_prev])
                sigma = sampler.eta * ((1 - abar_prev) / (1 - abar)
                                       * (1 - abar / abar_prev)) ** 0.5
                step.update(sqrt_abar_prev=abar_prev**0.5, sigma=sigma,
                            c_dir=(1 - abar_prev - sigma**2) ** 0.5)
            self.steps.append(step)
        self._beh_buffer: np.ndarray | None = None
        self.context_t = sampler.context_t
        abar_ctx = float(alpha_bars[self.context_t])
        self.ctx_a, self.ctx_b = abar_ctx**0.5, (1 - abar_ctx) ** 0.5

    def _model_behaviour(self, behaviour: np.ndarray | None) -> np.ndarray | None:
        """(B, n_beh) -> the denoiser's rows: presence flag appended, the dropped branch below
        when guiding (written into one reused buffer: two concatenates cost 0.1 ms cold)."""
        if not self.null_condition or behaviour is None:
            return behaviour
        n, n_beh = behaviour.shape
        buf = self._beh_buffer
        if buf is None or buf.shape[1] != n_beh + 1:
            buf = np.zeros((2 * n if self.guided else n, n_beh + 1), np.float32)
            buf[:n, -1] = 1.0  # given; the guided copy's rows stay zero (dropped)
            self._beh_buffer = buf
        buf[:n, :n_beh] = behaviour
        return buf

    def _eps(self, z: np.ndarray, t: int) -> np.ndarray:
        eps = self.stepper.predict(z, t)
        if not self.guided:
            return eps
        eps_c, eps_u = eps[: self.n_batch], eps[self.n_batch:]
        return eps_u + self.guidance * (eps_c - eps_u)

    def next_bin(self, behaviour: np.ndarray | None, generator: torch.Generator) -> np.ndarray:
        """behaviour (B, n_beh) normalised float32, or None -> latents (B, Z) normalised."""
        self.stepper.begin_bin(self._model_behaviour(behaviour))
        shape = (self.n_batch, self.n_latents)
        z = torch.randn(shape, generator=generator).numpy()
        clip = self.clip
        for step in self.steps:
            eps = self._eps(z, step["t"])
            z0 = z - step["c_eps"] * eps
            z0 *= step["inv_sqrt_abar"]
            if clip:
                np.clip(z0, -clip, clip, out=z0)
            if step["last"]:
                z = z0
                break
            z = step["sqrt_abar_prev"] * z0
            z += step["c_dir"] * eps
            if step["sigma"] > 0:
                z += step["sigma"] * torch.randn(shape, generator=generator).numpy()
        context = z
        if self.context_t > 0:
            noise = torch.randn(shape, generator=generator).numpy()
            context = self.ctx_a * z + self.ctx_b * noise
        self.stepper.commit(context, self.context_t)  # broadcast to both branches when guiding
        return z
