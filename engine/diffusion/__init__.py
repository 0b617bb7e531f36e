"""difftui's diffusion core: schedules, the DDPM family and its losses (L_simple, L_vlb, L_hybrid), learned variance,
importance sampling, NLL, EDM, OCM, and the samplers (playbook chapters 0, 2.4, 2.7-2.9, 3, 5; A.3, A.7, A.8).

    P1 Improved DDPM   schedules.py, gaussian.py, losses.py, resample.py, nll.py, samplers/ddpm.py
    P2 DDIM            samplers/ddim.py
    P3 EDM             edm.py, samplers/edm.py
    P6 OCM             ocm.py, samplers/covariance.py
    the engine's view  objective.py (Objective, DDPMObjective, EDMObjective), samplers/args.py (SamplerArgs),
                       budget.py (DyDiT's FLOPs term), panel.py (evaluate_samplers)
    closed form        oracle.py (Gaussian data: exact eps, score, posterior, Hessian, transported values)

Plain arguments only: this package imports nothing of difftui above it (no config, no store, no network; an
import-linter contract). engine/run/builders.py turns a run's recipe and sampler presets into these arguments.
"""

from .budget import FlopsBudgetObjective, flops_loss
from .edm import DiscreteVPDenoiser, edm_denoise, edm_loss, edm_precond_coefficients
from .gaussian import VARIANCES, GaussianDiffusion
from .losses import approx_standard_normal_cdf, discretized_gaussian_log_likelihood, mean_flat, normal_kl
from .nll import calc_bpd_loop
from .objective import DDPMObjective, EDMObjective, Objective, inference_mode, sample
from .ocm import hessian_vector_product, hutchinson_diag_hessian, ocm_target, rademacher_like, x0_variance_from_head
from .oracle import GaussianOracle
from .panel import evaluate_samplers
from .resample import LossSecondMomentResampler, UniformSampler
from .samplers import (
                       EDM_STOCHASTIC_GRID,
                       EDM_STOCHASTIC_SETTINGS,
                       FEW_STEP_COUNTS,
                       covariance_sample,
                       ddim_sample,
                       ddpm_sample,
                       edm_euler_sample,
                       edm_heun_sample,
                       edm_sampler,
                       edm_sigma_steps,
                       edm_stochastic_sample,
                       respaced,
)
from .samplers.args import SamplerArgs
from .schedules import alphas_cumprod_from_betas, ddim_timesteps, get_named_beta_schedule, space_timesteps
from .watch import Interrupted, Watched

__all__ = [
    # schedules
    "get_named_beta_schedule", "alphas_cumprod_from_betas", "space_timesteps", "ddim_timesteps",
    # DDPM family
    "GaussianDiffusion", "VARIANCES", "normal_kl", "discretized_gaussian_log_likelihood",
    "approx_standard_normal_cdf", "mean_flat", "calc_bpd_loop",
    "UniformSampler", "LossSecondMomentResampler",
    # EDM
    "edm_precond_coefficients", "edm_denoise", "edm_loss", "DiscreteVPDenoiser",
    # OCM
    "rademacher_like", "hessian_vector_product", "hutchinson_diag_hessian", "ocm_target", "x0_variance_from_head",
    # samplers
    "ddpm_sample", "respaced", "ddim_sample", "edm_sampler", "edm_euler_sample", "edm_heun_sample",
    "edm_stochastic_sample", "edm_sigma_steps", "covariance_sample",
    "EDM_STOCHASTIC_SETTINGS", "EDM_STOCHASTIC_GRID", "FEW_STEP_COUNTS",
    # engine
    "Objective", "DDPMObjective", "EDMObjective", "SamplerArgs", "sample", "inference_mode", "evaluate_samplers",
    "FlopsBudgetObjective", "flops_loss", "GaussianOracle", "Interrupted", "Watched",
]
