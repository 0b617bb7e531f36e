"""Negative log-likelihood in bits/dim over a whole chain (P1 Sec. 2 / 3.1; improved-diffusion's calc_bpd_loop).

    NLL <= L_vlb = L_T (prior) + sum_{t >= 1} L_{t-1} (KL terms) + L_0 (discretized Gaussian decoder)

Each L_t is evaluated at its own x_t ~ q(x_t | x_0) with fresh noise, one model evaluation per step of the chain.
Data must be on the 8-bit grid in [-1, 1] for the decoder term to be a probability.
"""

from __future__ import annotations

from typing import Callable

import torch

from .gaussian import GaussianDiffusion
from .losses import mean_flat
from .samplers.timesteps import time_dtype

__all__ = ["calc_bpd_loop"]


@torch.no_grad()
def calc_bpd_loop(
    model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    diffusion: GaussianDiffusion,
    x_start: torch.Tensor,
    variance: str = "fixed_small",
    clip_denoised: bool = True,                     # improved-diffusion's image_nll default
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """Per-image bits/dim. Returns total_bpd [B], prior_bpd [B], vb [B, T] (the L_t), xstart_mse [B, T], mse [B, T]."""
    B = x_start.shape[0]
    vb, xstart_mse, mse = [], [], []
    for i in reversed(range(diffusion.num_timesteps)):
        t = torch.full((B,), i, device=x_start.device, dtype=torch.long)
        noise = torch.randn(x_start.shape, generator=generator, device=x_start.device, dtype=x_start.dtype)
        x_t = diffusion.q_sample(x_start, t, noise)
        out = model(x_t, diffusion.model_timesteps(t, time_dtype(x_start.dtype)))
        terms, pred_xstart = diffusion.vb_terms_bpd(out, x_start, x_t, t, variance=variance, clip_denoised=clip_denoised)
        vb.append(terms)
        xstart_mse.append(mean_flat((pred_xstart - x_start) ** 2))
        eps = diffusion.predict_eps_from_xstart(x_t, t, pred_xstart)
        mse.append(mean_flat((eps - noise) ** 2))
    # Stored in chain order t = 0..T-1.
    vb = torch.stack(vb[::-1], dim=1)
    xstart_mse = torch.stack(xstart_mse[::-1], dim=1)
    mse = torch.stack(mse[::-1], dim=1)
    prior_bpd = diffusion.prior_bpd(x_start)
    # NLL bound = L_T + sum_t L_t.
    total_bpd = vb.sum(dim=1) + prior_bpd
    return {"total_bpd": total_bpd, "prior_bpd": prior_bpd, "vb": vb, "xstart_mse": xstart_mse, "mse": mse}
