"""DDPM ancestral sampling on the full chain or a respaced sub-chain (P1 Sec. 4; improved-diffusion's p_sample_loop).

    model(x_t, t) -> [B, C, ...] eps, or [B, 2C, ...] eps + variance channel v (P1) or OCM head (P6);
    t is the float timestep [B] of the trained chain (a respaced chain maps its indices back, as improved-diffusion).

One model evaluation per step: NFE = number of steps. No noise is added at the last step (the output is the mean).
"""

from __future__ import annotations

from typing import Callable

import torch

from ..gaussian import GaussianDiffusion
from ..schedules import space_timesteps
from .timesteps import time_dtype

__all__ = ["ddpm_sample", "respaced"]


def respaced(diffusion: GaussianDiffusion, steps: int | None) -> GaussianDiffusion:
    """The chain itself for steps None or >= T, else its P1 respacing to `steps` evenly spaced timesteps."""
    if steps is None or steps >= diffusion.num_timesteps:
        return diffusion
    return diffusion.respace(space_timesteps(diffusion.num_timesteps, steps))


@torch.no_grad()
def ddpm_sample(
    model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x_T: torch.Tensor,
    diffusion: GaussianDiffusion,
    steps: int | None = None,                       # None: the full chain; K < T: P1 respacing to K steps
    variance: str = "fixed_small",                  # fixed_small | fixed_large | learned | ocm (gaussian.py)
    clip_denoised: bool = True,                     # improved-diffusion's sampling default
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, int]:
    """Ancestral sampling x_{t-1} = mu_theta(x_t, t) + sigma_t z (DDPM Alg. 2 with P1's variances).

    Returns (x_0 in x_T's dtype, NFE).
    """
    chain = respaced(diffusion, steps)
    B = x_T.shape[0]
    x = x_T
    nfe = 0
    for i in reversed(range(chain.num_timesteps)):
        t = torch.full((B,), i, device=x.device, dtype=torch.long)
        out = model(x, chain.model_timesteps(t, time_dtype(x.dtype)))
        nfe += 1
        p = chain.p_mean_variance(out, x, t, variance=variance, clip_denoised=clip_denoised)
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        # DDPM Alg. 2: x_{t-1} = mu + sigma z, z = 0 at the last step.
        x = p["mean"] + (float(i != 0)) * torch.exp(0.5 * p["log_variance"]) * noise
    return x, nfe
