"""DDIM: the non-Markovian generalised reverse process (P2, Song, Meng & Ermon, ICLR 2021; the ddim code's
`generalized_steps`), with P6's optimal diagonal covariance as an option (OCM-DDIM).

    model(x_t, t) -> [B, C, ...] eps, or [B, 2C, ...] eps + head; t is the float timestep [B] of the trained chain.

One model evaluation per step, so NFE = N (a repeated timestep of the quadratic rule still costs its NFE).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch

from ..ocm import x0_variance_from_head
from ..schedules import ddim_timesteps
from .timesteps import time_dtype

__all__ = ["ddim_sample", "ddim_sigma"]


def ddim_sigma(eta: float, a_t: float, a_prev: float) -> float:
    """Playbook 0.3: sigma_tau_i(eta) = eta sqrt((1 - a_prev)/(1 - a_t)) sqrt(1 - a_t / a_prev)."""
    return eta * math.sqrt((1.0 - a_t / a_prev) * (1.0 - a_prev) / (1.0 - a_t))


@torch.no_grad()
def ddim_sample(
    model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x_T: torch.Tensor,
    alphas_cumprod: np.ndarray,
    steps: int = 50,                                # playbook 5.0: N = 50 for the fixed-x_T grid
    eta: float = 0.0,                               # playbook 0.3: eta = 0 deterministic, eta = 1 DDPM-like
    tau: str = "linear",                            # playbook A.7: linear or quadratic
    timesteps: Sequence[int] | None = None,         # explicit ascending sub-sequence; overrides steps/tau
    variance: str = "fixed_small",                  # "fixed_small": plain DDIM; "ocm": + c0^2 Sigma_0 (P6 OCM-DDIM)
    clip_denoised: bool = False,                    # the ddim code does not clip x_0; improved-diffusion does
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, int]:
    """Sample x_0 from x_T along the sub-sequence tau (P2 eq. 12). Returns (x_0 in x_T's dtype, NFE)."""
    if variance not in ("fixed_small", "ocm"):
        raise ValueError(f"DDIM sets its own variance from eta; variance '{variance}' does not apply "
                         "(use 'ocm' for P6's covariance, or kind 'ddpm' for fixed_large/learned)")
    ac = np.asarray(alphas_cumprod, dtype=np.float64)
    T = len(ac)
    seq = list(timesteps) if timesteps is not None else ddim_timesteps(T, steps, tau)
    seq_next = [-1] + seq[:-1]
    a_ext = np.append(1.0, ac)                      # a_ext[t + 1] = alpha_bar_t, alpha_bar_{-1} = 1
    B, C = x_T.shape[0], x_T.shape[1]
    x = x_T
    nfe = 0
    for i, j in zip(reversed(seq), reversed(seq_next), strict=False):
        a_t, a_next = float(a_ext[i + 1]), float(a_ext[j + 1])
        t = torch.full((B,), float(i), device=x.device, dtype=time_dtype(x.dtype))
        out = model(x, t)
        nfe += 1
        eps, head = out[:, :C], (out[:, C:] if out.shape[1] == 2 * C else None)
        # x_0 prediction: (x_t - sqrt(1 - a_t) eps) / sqrt(a_t).
        x0 = (x - eps * math.sqrt(1.0 - a_t)) / math.sqrt(a_t)
        if clip_denoised:
            x0 = x0.clamp(-1, 1)
            eps = (x - math.sqrt(a_t) * x0) / math.sqrt(1.0 - a_t)
        c1 = ddim_sigma(eta, a_t, a_next)
        c2 = math.sqrt(max((1.0 - a_next) - c1 ** 2, 0.0))
        # P2 eq. 12: x_prev = sqrt(a_prev) x0 + sqrt(1 - a_prev - sigma^2) eps + sigma z.
        x_next = math.sqrt(a_next) * x0 + c2 * eps
        std = c1
        if variance == "ocm":
            if head is None:
                raise ValueError("variance 'ocm' needs a model with an OCM head (2x output channels)")
            # P6 (OCM-DDIM): the step is linear in x_0 with weight c0; its uncertainty adds c0^2 Sigma_0(x_t).
            c0 = math.sqrt(a_next) - c2 * math.sqrt(a_t) / math.sqrt(1.0 - a_t)
            std = torch.sqrt(c1 ** 2 + c0 ** 2 * x0_variance_from_head(head, torch.tensor(a_t, dtype=x.dtype, device=x.device)))
        if j >= 0 and (eta > 0 or variance == "ocm"):
            # The ddim code draws z at every step when eta > 0; the last step (to alpha_bar = 1) adds no noise.
            x_next = x_next + std * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        x = x_next
    return x, nfe
