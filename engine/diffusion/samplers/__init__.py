"""Samplers: DDPM ancestral (full and respaced), DDIM (eta, tau), EDM Euler/Heun/stochastic, few-step covariance.

Each returns (x_0, NFE). DDPM-family samplers take model(x_t, t) -> eps [B,C,...] (or eps + head [B,2C,...]);
EDM samplers take denoise(x, sigma) -> D(x; sigma).
"""

from .covariance import FEW_STEP_COUNTS, HEURISTIC_VARIANCES, covariance_sample
from .ddim import ddim_sample, ddim_sigma
from .ddpm import ddpm_sample, respaced
from .edm import (
                  EDM_STOCHASTIC_GRID,
                  EDM_STOCHASTIC_SETTINGS,
                  edm_euler_sample,
                  edm_heun_sample,
                  edm_sampler,
                  edm_sigma_steps,
                  edm_stochastic_sample,
)

__all__ = [
    "ddpm_sample", "respaced",
    "ddim_sample", "ddim_sigma",
    "edm_sampler", "edm_euler_sample", "edm_heun_sample", "edm_stochastic_sample", "edm_sigma_steps",
    "EDM_STOCHASTIC_SETTINGS", "EDM_STOCHASTIC_GRID",
    "covariance_sample", "FEW_STEP_COUNTS", "HEURISTIC_VARIANCES",
]
