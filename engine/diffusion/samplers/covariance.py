"""The few-step covariance panel: the respaced ancestral chain with a choice of reverse covariance
(playbook 3.6, 5.7, 5.8; P1 Sec. 4 for the heuristic and learned variances, P6 for OCM).

    variance      reverse covariance at step tau_i -> tau_{i-1} of the respaced chain
    fixed_large   beta'_i           (heuristic, DDPM's "sigma^2 = beta")
    fixed_small   beta_tilde'_i     (heuristic, the true posterior variance given x_0)
    learned       P1's interpolation of the two in log space, from the model's v channel
    ocm           beta_tilde'_i + coef1_i^2 Sigma_0(x_t), Sigma_0 from the OCM head (P6; Analytic-DPM's form)

With the exact model of Gaussian data the OCM chain is exact at any step count, while the heuristic ones are not;
that is what the panel shows at 5/10/15/20 steps. One forward per step (the OCM head is amortised): NFE = steps.
"""

from __future__ import annotations

from typing import Callable

import torch

from difftui.engine.core_rules import FEW_STEP_COUNTS  # playbook 5.8: 5/10/15/20 steps

from ..gaussian import GaussianDiffusion
from .ddpm import ddpm_sample

__all__ = ["FEW_STEP_COUNTS", "HEURISTIC_VARIANCES", "covariance_sample"]

HEURISTIC_VARIANCES = ("fixed_large", "fixed_small")  # playbook 3.6: (beta, beta_tilde)


@torch.no_grad()
def covariance_sample(
    model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x_T: torch.Tensor,
    diffusion: GaussianDiffusion,
    steps: int = 10,
    variance: str = "ocm",
    clip_denoised: bool = True,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, int]:
    """Few-step ancestral sampling on the P1-respaced chain with the given covariance. Returns (x_0, NFE)."""
    if steps > diffusion.num_timesteps:
        raise ValueError(f"few-step sampler: {steps} steps exceed the chain's T = {diffusion.num_timesteps}")
    return ddpm_sample(model, x_T, diffusion, steps=steps, variance=variance,
                       clip_denoised=clip_denoised, generator=generator)
