"""The DDPM family with eps prediction: forward process, true posterior, reverse mean/variance, VLB terms
(P1 Improved DDPM, Nichol & Dhariwal 2021; conventions of openai/improved-diffusion).

Shapes: x_0, x_t, eps are [B, C, H, W] (any trailing dims); t is a long tensor [B] of indices into this chain. The
model output is [B, C, ...] (eps) or [B, 2C, ...] (eps, then the variance channel v of P1 or the OCM head of P6).

Every schedule buffer is float64 numpy, computed once in __init__; `_extract` casts it to the input's dtype at use,
so float64 inputs give float64 end to end and float32 inputs give improved-diffusion's float32 numbers.

Reverse variances (playbook 2.7-2.8, 3.6-3.7), `variance=`:
    fixed_small  sigma_t^2 = beta_tilde_t (the true posterior variance; log clipped at t = 0 as in improved-diffusion)
    fixed_large  sigma_t^2 = beta_t (beta_tilde_1 at t = 0)
    learned      P1 eq. 15: Sigma = exp(v' log beta_t + (1 - v') log beta_tilde_t), v' = (v + 1) / 2. P1 applies no
                 constraint on v ("we did not apply any constraints on v"), nor does improved-diffusion's
                 LEARNED_RANGE: that is this class's default, exact to the reference for any v. Playbook 2.8 asks for
                 the variance to be kept between the bounds: `learned_range_clamp=True` clamps v' to [0, 1], so that
                 Sigma stays in [beta_tilde_t, beta_t]; the training recipes turn it on (Recipe.learned_range_clamp).
                 The two agree to the last digit for v in [-1, 1]. A small under-fitted model does push v above 1
                 (its mean error makes a variance above beta_t the VLB optimum).
    ocm          P6: sigma_t^2 = beta_tilde_t + coef1_t^2 * Sigma_0(x_t), Sigma_0 the diagonal covariance of
                 p(x_0 | x_t) from the OCM head (see ocm.py)
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np
import torch

from .losses import discretized_gaussian_log_likelihood, mean_flat, normal_kl
from .ocm import x0_variance_from_head

__all__ = ["VARIANCES", "GaussianDiffusion"]

VARIANCES = ("fixed_small", "fixed_large", "learned", "ocm")


class GaussianDiffusion:
    """One discrete diffusion chain of T steps (a base chain, or a respaced sub-chain with its `timestep_map`)."""

    def __init__(self, betas: np.ndarray, timestep_map: Iterable[int] | None = None, learned_range_clamp: bool = False):
        betas = np.asarray(betas, dtype=np.float64)
        if betas.ndim != 1 or not ((betas > 0).all() and (betas < 1).all()):
            raise ValueError("betas must be a 1-D array with 0 < beta < 1 (beta = 1 makes alpha_bar zero)")
        self.betas = betas
        self.num_timesteps = T = int(betas.shape[0])
        self.learned_range_clamp = learned_range_clamp
        # Model timesteps: index i of this chain is timestep timestep_map[i] of the chain the model was trained on.
        self.timestep_map = np.arange(T, dtype=np.int64) if timestep_map is None else np.asarray(list(timestep_map), dtype=np.int64)
        if self.timestep_map.shape != (T,):
            raise ValueError("timestep_map must have one entry per step")

        alphas = 1.0 - betas
        self.alphas_cumprod = ac = np.cumprod(alphas)                     # playbook 0.1: alpha_bar_t, float64
        self.alphas_cumprod_prev = acp = np.append(1.0, ac[:-1])
        self.alphas_cumprod_next = np.append(ac[1:], 0.0)
        # q(x_t | x_0).
        self.sqrt_alphas_cumprod = np.sqrt(ac)
        self.sqrt_one_minus_alphas_cumprod = np.sqrt(1.0 - ac)
        self.log_one_minus_alphas_cumprod = np.log(1.0 - ac)
        self.sqrt_recip_alphas_cumprod = np.sqrt(1.0 / ac)
        self.sqrt_recipm1_alphas_cumprod = np.sqrt(1.0 / ac - 1.0)
        # q(x_{t-1} | x_t, x_0) (DDPM eq. 6-7): beta_tilde_t = beta_t (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t).
        self.posterior_variance = pv = betas * (1.0 - acp) / (1.0 - ac)
        # beta_tilde_0 = 0, so its log is clipped to beta_tilde_1 (improved-diffusion); a 1-step chain uses beta_0.
        pv1 = pv[1] if T > 1 else betas[0]
        self.posterior_log_variance_clipped = np.log(np.append(pv1, pv[1:]))
        self.posterior_mean_coef1 = betas * np.sqrt(acp) / (1.0 - ac)
        self.posterior_mean_coef2 = (1.0 - acp) * np.sqrt(alphas) / (1.0 - ac)
        # "fixed large" (DDPM sigma_t^2 = beta_t), with beta_tilde_1 at t = 0 for a better decoder (improved-diffusion).
        self.fixed_large_variance = np.append(pv1, betas[1:])
        self.fixed_large_log_variance = np.log(self.fixed_large_variance)
        self.log_betas = np.log(betas)
        # The VP noise level in EDM's sigma terms: x_t / sqrt(alpha_bar_t) = x_0 + sigma_t n (P3 Sec. 2 / App. C.1).
        self.sigmas = np.sqrt((1.0 - ac) / ac)
        self._cache: dict[tuple[str, torch.device], torch.Tensor] = {}

    #------------------------------------------------------------------------
    # Buffers.

    def _extract(self, name: str, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Buffer `name` at indices t, cast to x's dtype, shaped [B, 1, 1, ...] to broadcast against x."""
        key = (name, x.device)
        buf = self._cache.get(key)
        if buf is None:
            buf = self._cache[key] = torch.from_numpy(np.ascontiguousarray(getattr(self, name))).to(x.device)
        out = buf[t.to(device=x.device, dtype=torch.long)].to(x.dtype)
        return out.reshape(out.shape + (1,) * (x.ndim - 1))

    def model_timesteps(self, t: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The float timestep the network sees for chain index t (the original timestep, as improved-diffusion's
        respacing feeds it; no 1000/T rescaling)."""
        key = ("timestep_map", t.device)
        buf = self._cache.get(key)
        if buf is None:
            buf = self._cache[key] = torch.from_numpy(self.timestep_map).to(t.device)
        return buf[t.long()].to(dtype)

    def respace(self, use_timesteps: Iterable[int]) -> "GaussianDiffusion":
        """The sub-chain on the kept timesteps (P1 Sec. 4): beta'_i = 1 - alpha_bar_{tau_i} / alpha_bar_{tau_{i-1}}."""
        keep = sorted(set(int(i) for i in use_timesteps))
        if not keep or keep[0] < 0 or keep[-1] >= self.num_timesteps:
            raise ValueError(f"timesteps to keep must lie in [0, {self.num_timesteps - 1}]")
        last, new_betas = 1.0, []
        for i in keep:
            # P1 Sec. 4: beta_{S_t} = 1 - alpha_bar_{S_t} / alpha_bar_{S_{t-1}}.
            new_betas.append(1.0 - self.alphas_cumprod[i] / last)
            last = self.alphas_cumprod[i]
        return GaussianDiffusion(np.array(new_betas, dtype=np.float64), timestep_map=self.timestep_map[keep],
                                 learned_range_clamp=self.learned_range_clamp)

    #------------------------------------------------------------------------
    # Forward process.

    def q_mean_variance(self, x_start, t):
        """q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I): (mean, variance, log variance)."""
        mean = self._extract("sqrt_alphas_cumprod", t, x_start) * x_start
        variance = self._extract("sqrt_one_minus_alphas_cumprod", t, x_start) ** 2
        log_variance = self._extract("log_one_minus_alphas_cumprod", t, x_start)
        return mean, variance, log_variance

    def q_sample(self, x_start, t, noise=None):
        """Playbook 0.0 step 3: x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps."""
        if noise is None:
            noise = torch.randn_like(x_start)
        return (self._extract("sqrt_alphas_cumprod", t, x_start) * x_start
                + self._extract("sqrt_one_minus_alphas_cumprod", t, x_start) * noise)

    def q_posterior_mean_variance(self, x_start, x_t, t):
        """q(x_{t-1} | x_t, x_0) = N(mu_tilde, beta_tilde I): (mean, variance, clipped log variance)."""
        # mu_tilde = beta_t sqrt(alpha_bar_{t-1}) / (1 - alpha_bar_t) x_0 + (1 - alpha_bar_{t-1}) sqrt(alpha_t) / (1 - alpha_bar_t) x_t.
        mean = (self._extract("posterior_mean_coef1", t, x_t) * x_start
                + self._extract("posterior_mean_coef2", t, x_t) * x_t)
        return mean, self._extract("posterior_variance", t, x_t), self._extract("posterior_log_variance_clipped", t, x_t)

    def predict_xstart_from_eps(self, x_t, t, eps):
        # x_0 = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t).
        return (self._extract("sqrt_recip_alphas_cumprod", t, x_t) * x_t
                - self._extract("sqrt_recipm1_alphas_cumprod", t, x_t) * eps)

    def predict_eps_from_xstart(self, x_t, t, pred_xstart):
        # eps = (x_t / sqrt(alpha_bar_t) - x_0) / sqrt(1 / alpha_bar_t - 1).
        return ((self._extract("sqrt_recip_alphas_cumprod", t, x_t) * x_t - pred_xstart)
                / self._extract("sqrt_recipm1_alphas_cumprod", t, x_t))

    #------------------------------------------------------------------------
    # Reverse process p(x_{t-1} | x_t).

    @staticmethod
    def split_output(model_output: torch.Tensor, channels: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """[B, C or 2C, ...] -> (eps [B, C, ...], extra [B, C, ...] or None)."""
        if model_output.shape[1] == channels:
            return model_output, None
        if model_output.shape[1] == 2 * channels:
            return model_output[:, :channels], model_output[:, channels:]
        raise ValueError(f"model output has {model_output.shape[1]} channels; expected {channels} or {2 * channels}")

    def p_mean_variance(self, model_output, x_t, t, variance: str = "fixed_small", clip_denoised: bool = True):
        """Mean and variance of p(x_{t-1} | x_t) from the model output (P1 Sec. 2-3).

        Returns a dict: mean, variance, log_variance, pred_xstart, eps.
        """
        eps, extra = self.split_output(model_output, x_t.shape[1])
        if variance in ("learned", "ocm") and extra is None:
            raise ValueError(f"variance '{variance}' needs a model with 2x output channels (eps and a variance head)")
        if variance == "learned":
            min_log = self._extract("posterior_log_variance_clipped", t, x_t)
            max_log = self._extract("log_betas", t, x_t)
            # P1 eq. 15: Sigma = exp(v log beta_t + (1 - v) log beta_tilde_t), the network's v in [-1, 1] mapped to [0, 1].
            frac = (extra + 1) / 2
            if self.learned_range_clamp:
                # Playbook 2.8: the variance is held inside [beta_tilde_t, beta_t] (identical to P1 for v in [-1, 1]).
                frac = frac.clamp(0, 1)
            log_variance = frac * max_log + (1 - frac) * min_log
            model_variance = torch.exp(log_variance)
        elif variance in ("fixed_small", "ocm"):
            model_variance = self._extract("posterior_variance", t, x_t)
            log_variance = self._extract("posterior_log_variance_clipped", t, x_t)
        elif variance == "fixed_large":
            model_variance = self._extract("fixed_large_variance", t, x_t)
            log_variance = self._extract("fixed_large_log_variance", t, x_t)
        else:
            raise ValueError(f"unknown variance '{variance}' (allowed: {', '.join(VARIANCES)})")

        pred_xstart = self.predict_xstart_from_eps(x_t, t, eps)
        if clip_denoised:
            pred_xstart = pred_xstart.clamp(-1, 1)
        mean, _, _ = self.q_posterior_mean_variance(pred_xstart, x_t, t)

        if variance == "ocm":
            x0_var = x0_variance_from_head(extra, self._extract("alphas_cumprod", t, x_t))
            # P6 / Analytic-DPM: Sigma_t = beta_tilde_t + coef1_t^2 Sigma_0(x_t), coef1 the posterior weight of x_0.
            model_variance = self._extract("posterior_variance", t, x_t) + self._extract("posterior_mean_coef1", t, x_t) ** 2 * x0_var
            # Floor only guards log(0) at t = 0 when the head says Sigma_0 = 0.
            log_variance = torch.log(model_variance.clamp(min=1e-20))
        return {"mean": mean, "variance": model_variance, "log_variance": log_variance,
                "pred_xstart": pred_xstart, "eps": eps}

    #------------------------------------------------------------------------
    # Variational bound terms (bits per dimension).

    def vb_terms_bpd(self, model_output, x_start, x_t, t, variance: str = "learned", clip_denoised: bool = False):
        """L_t for each sample, bits/dim [B] (P1 Sec. 2, eq. 4-5).

        t > 0: KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)); t = 0: the discretized Gaussian decoder NLL -log p(x_0 | x_1).
        Returns (output [B], pred_xstart).
        """
        true_mean, _, true_log_variance = self.q_posterior_mean_variance(x_start, x_t, t)
        out = self.p_mean_variance(model_output, x_t, t, variance=variance, clip_denoised=clip_denoised)
        kl = mean_flat(normal_kl(true_mean, true_log_variance, out["mean"], out["log_variance"])) / math.log(2.0)
        decoder_nll = -discretized_gaussian_log_likelihood(x_start, means=out["mean"], log_scales=0.5 * out["log_variance"])
        decoder_nll = mean_flat(decoder_nll) / math.log(2.0)
        # L_0 at t == 0, L_{t-1} otherwise.
        return torch.where(t.to(kl.device) == 0, decoder_nll, kl), out["pred_xstart"]

    def prior_bpd(self, x_start):
        """L_T = KL(q(x_T | x_0) || N(0, I)) in bits/dim [B]; constant in the model, part of the NLL (P1 Sec. 2)."""
        t = torch.full((x_start.shape[0],), self.num_timesteps - 1, device=x_start.device, dtype=torch.long)
        qt_mean, _, qt_log_variance = self.q_mean_variance(x_start, t)
        return mean_flat(normal_kl(qt_mean, qt_log_variance, 0.0, 0.0)) / math.log(2.0)
