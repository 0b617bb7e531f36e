"""Training objectives and their samplers, from plain arguments (the engine loop's one entry point).

    DDPMObjective(GaussianDiffusion(get_named_beta_schedule("cosine", 1000)), loss="hybrid", variance="learned")
    EDMObjective(P_mean=-1.2, P_std=1.2, sigma_data=0.5)
    objective(net, x0, y)   -> {"loss": ..., "L_simple": ..., ...}   scalar batch means; backprop "loss"
    objective.sample(net, x_T, SamplerArgs(kind="ddim", steps=50), generator) -> (x_0 clipped to [-1, 1], NFE)

A run's recipe becomes these arguments in engine/run/builders.py (`build_objective`); which losses, variances and
samplers go together is difftui.engine.core_rules', the same rules the config model refuses a preset with.

The net is called as net(x_t, t, y): t a float tensor [B], the integer DDPM timestep for the DDPM family (no
1000/T rescaling), c_noise = ln(sigma)/4 for EDM, whose preconditioning the objective applies itself.

Output channels (`out_channels`): C for fixed variances and EDM; 2C for variance='learned' (eps, then P1's v) and
variance='ocm' (eps, then the OCM head g of ocm.py).

Logged series: loss='simple': L_simple; 'hybrid': L_simple, L_vlb, L_hybrid; 'vlb': L_simple, L_vlb; 'edm': L_edm;
variance='ocm' adds L_ocm. L_simple and L_edm are per-element means; L_vlb is the estimate of the whole sum
sum_t L_t in bits/dim, i.e. T * L_t for t ~ Uniform (P1 eq. 16; improved-diffusion's RESCALED_KL / RESCALED_MSE).
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from difftui.engine.core_rules import objective_error, output_channels, sampler_error

from .edm import DiscreteVPDenoiser, edm_denoise, edm_loss
from .gaussian import GaussianDiffusion
from .losses import mean_flat
from .nll import calc_bpd_loop
from .ocm import ocm_target, rademacher_like
from .resample import LossSecondMomentResampler, UniformSampler, gather_losses
from .samplers.args import SamplerArgs
from .samplers.covariance import covariance_sample
from .samplers.ddim import ddim_sample
from .samplers.ddpm import ddpm_sample, respaced
from .samplers.edm import edm_sampler
from .samplers.timesteps import time_dtype

__all__ = ["Objective", "DDPMObjective", "EDMObjective", "sample", "inference_mode"]


@contextlib.contextmanager
def inference_mode(net):
    """torch.no_grad and eval mode for the duration; every submodule's train/eval flag is restored afterwards."""
    modes = [(m, m.training) for m in net.modules()] if isinstance(net, nn.Module) else []
    if isinstance(net, nn.Module):
        net.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for m, training in modes:
            m.training = training


def _edm_kwargs(spec: SamplerArgs) -> dict:
    solver = "euler" if spec.kind == "edm_euler" else "heun"
    kw = dict(num_steps=spec.steps, rho=spec.rho, solver=solver)
    if spec.kind == "edm_stochastic":
        kw.update(S_churn=spec.S_churn, S_tmin=spec.S_tmin, S_tmax=spec.S_tmax, S_noise=spec.S_noise)
    return kw


#----------------------------------------------------------------------------
# The interface.

class Objective:
    """A training loss plus the samplers that make sense for the model it trains."""

    kind: str = ""
    step: int = 0                                   # the optimizer step being trained (set by the trainer)
    # Samples are images in [-1, 1] and are clipped there (and DDPM's predicted x_0 with them); latents are not
    # bounded, so a latent data set's objective is built with clip=False (DiT samples unclipped).
    clip: bool = True

    def out_channels(self, in_channels: int) -> int:
        raise NotImplementedError

    def constants(self) -> dict[str, float]:
        """Fixed values logged beside the losses (e.g. DyDiT's target FLOPs ratio)."""
        return {}

    def __call__(self, net, x0: torch.Tensor, y: torch.Tensor | None = None,
                 augment_labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def state_dict(self) -> dict:
        return {"objective": self.kind}

    def load_state_dict(self, state: dict) -> None:
        pass

    def check_spec(self, spec: SamplerArgs) -> None:
        """Raise ValueError (one line) when `spec` does not apply to a model trained with this objective."""
        raise NotImplementedError

    def sample(self, net, x_T: torch.Tensor, spec: SamplerArgs, generator: torch.Generator | None = None,
               y: torch.Tensor | None = None) -> tuple[torch.Tensor, int]:
        raise NotImplementedError

    def nll_bpd(self, net, x0: torch.Tensor, spec: SamplerArgs | None = None, y: torch.Tensor | None = None,
                clip_denoised: bool = True, generator: torch.Generator | None = None) -> torch.Tensor:
        raise ValueError(f"NLL is not available for objective '{self.kind}'")


def sample(objective: Objective, net, x_T: torch.Tensor, spec: SamplerArgs, generator: torch.Generator | None = None,
           y: torch.Tensor | None = None) -> tuple[torch.Tensor, int]:
    """objective.sample(...): (x_0 in [-1, 1], NFE)."""
    return objective.sample(net, x_T, spec, generator=generator, y=y)


#----------------------------------------------------------------------------
# The DDPM family: L_simple, L_vlb, L_hybrid, OCM (playbook 0.2, 2.8, 3.0-3.3, 3.7).

class DDPMObjective(Objective):
    kind = "ddpm"

    def __init__(self, diffusion: GaussianDiffusion, loss: str = "simple", variance: str = "fixed_small",
                 hybrid_lambda: float = 0.001, importance_sampling: bool = False, clip: bool = True):
        if loss not in ("simple", "hybrid", "vlb"):
            raise ValueError(f"DDPM objective: unknown loss '{loss}' (allowed: simple, hybrid, vlb)")
        found = objective_error(loss, variance, importance_sampling)          # core_rules, as the config model
        if found is not None:
            raise ValueError(found[1])
        self.clip = clip
        self.diffusion = diffusion
        self.loss = loss
        self.variance = variance
        self.hybrid_lambda = hybrid_lambda                      # playbook 3.2: lambda = 0.001
        T = diffusion.num_timesteps
        self.schedule_sampler = LossSecondMomentResampler(T) if importance_sampling else UniformSampler(T)

    def out_channels(self, in_channels: int) -> int:
        return output_channels(self.variance, in_channels)

    #------------------------------------------------------------------------
    # Training.

    def __call__(self, net, x0, y=None, augment_labels=None):
        if augment_labels is not None:
            raise ValueError("augment labels (P3's non-leaky augmentation) are for the EDM objective and networks")
        d = self.diffusion
        T = d.num_timesteps
        B, C = x0.shape[0], x0.shape[1]
        t, weights = self.schedule_sampler.sample(B, x0.device)
        weights = weights.to(x0.dtype)
        noise = torch.randn_like(x0)
        x_t = d.q_sample(x0, t, noise)
        if self.variance == "ocm":
            x_t = x_t.detach().requires_grad_(True)
        with torch.enable_grad() if self.variance == "ocm" else contextlib.nullcontext():
            model_output = net(x_t, d.model_timesteps(t, time_dtype(x0.dtype)), y)
        if model_output.shape[1] != self.out_channels(C):
            raise ValueError(f"net returned {model_output.shape[1]} channels; objective expects {self.out_channels(C)}")
        eps, extra = d.split_output(model_output, C)
        terms: dict[str, torch.Tensor] = {}

        # Playbook 0.2: L_simple = E ||eps - eps_theta(x_t, t)||^2 (mean over dimensions, as improved-diffusion).
        mse = mean_flat((noise - eps) ** 2)
        per_sample = mse
        terms["L_simple"] = (weights * mse).mean()

        if self.variance == "learned":
            # Playbook 3.0: the VLB term trains only the variance: its mean comes from a detached eps (loss 'hybrid').
            frozen = torch.cat([eps.detach(), extra], dim=1) if self.loss == "hybrid" else model_output
            vb, _ = d.vb_terms_bpd(frozen, x0, x_t, t, variance="learned", clip_denoised=False)
            # L_vlb = sum_t L_t, estimated by T * L_t (P1 eq. 16).
            vlb = T * vb
            terms["L_vlb"] = (weights * vlb).mean()
            if self.loss == "hybrid":
                # Playbook 3.2: L_hybrid = L_simple + lambda L_vlb (improved-diffusion's mse + vb * T/1000).
                per_sample = mse + self.hybrid_lambda * vlb
                terms["L_hybrid"] = terms["L_simple"] + self.hybrid_lambda * terms["L_vlb"]
            else:
                per_sample = vlb

        if self.variance == "ocm":
            v = rademacher_like(x_t)
            sigma_t = d._extract("sqrt_one_minus_alphas_cumprod", t, x_t)
            # Playbook 3.7: regress the head on the unbiased one-sample target v * (H v) (normalised, see ocm.py).
            target = ocm_target(eps, x_t, v, sigma_t)
            ocm = mean_flat((extra - target) ** 2)
            per_sample = mse + ocm
            terms["L_ocm"] = (weights * ocm).mean()

        loss = (weights * per_sample).mean()
        if isinstance(self.schedule_sampler, LossSecondMomentResampler):
            # The per-sample training loss feeds P1's resampler (= L_t for loss 'vlb'; improved-diffusion feeds the
            # whole per-sample loss for 'hybrid' too, and so do we).
            self.schedule_sampler.update(*gather_losses(t, per_sample.detach()))
        out = {k: v.detach() for k, v in terms.items()}
        out["loss"] = loss
        return out

    def state_dict(self) -> dict:
        return {"objective": self.kind, "schedule_sampler": self.schedule_sampler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        sampler_state = state.get("schedule_sampler", {})
        # A uniform sampler has no state; an importance sampler resumes its history (or warms up afresh when the
        # checkpoint was trained with uniform t).
        if isinstance(self.schedule_sampler, LossSecondMomentResampler) and sampler_state.get("kind") == "loss-second-moment":
            self.schedule_sampler.load_state_dict(sampler_state)

    #------------------------------------------------------------------------
    # Sampling.

    def check_spec(self, spec: SamplerArgs) -> None:
        found = sampler_error(spec, objective="ddpm", variance=self.variance, T=self.diffusion.num_timesteps)
        if found is not None:
            raise ValueError(found)

    def eps_model(self, net, dtype: torch.dtype, y=None):
        """net as a sampler callable model(x, t): inputs cast to the working dtype."""
        return lambda x, t: net(x.to(dtype), t.to(time_dtype(dtype)), y)

    def denoiser(self, net, dtype: torch.dtype, y=None) -> DiscreteVPDenoiser:
        """The eps model as an EDM denoiser on its own VP sigma grid (P3 App. C.3.1)."""
        return DiscreteVPDenoiser(self.eps_model(net, dtype, y), self.diffusion.sigmas)

    def sample(self, net, x_T, spec, generator=None, y=None):
        self.check_spec(spec)
        d = self.diffusion
        model = self.eps_model(net, x_T.dtype, y)
        with inference_mode(net):
            if spec.kind == "ddim":
                x0, nfe = ddim_sample(model, x_T, d.alphas_cumprod, steps=spec.steps, eta=spec.eta, tau=spec.tau,
                                      variance=spec.variance, generator=generator)
            elif spec.kind == "ddpm":
                x0, nfe = ddpm_sample(model, x_T, d, steps=spec.steps, variance=spec.variance, generator=generator,
                                      clip_denoised=self.clip)
            elif spec.kind == "covariance":
                x0, nfe = covariance_sample(model, x_T, d, steps=spec.steps, variance=spec.variance,
                                            generator=generator, clip_denoised=self.clip)
            else:
                den = self.denoiser(net, x_T.dtype, y)
                # The edm code for pre-trained VP models: clamp the sigma range to the model's grid, round to it.
                x0, nfe = edm_sampler(den, x_T, sigma_min=max(spec.sigma_min, den.sigma_min),
                                      sigma_max=min(spec.sigma_max, den.sigma_max), round_sigma=den.round_sigma,
                                      generator=generator, **_edm_kwargs(spec))
        return (x0.clamp(-1, 1) if self.clip else x0), nfe

    def nll_bpd(self, net, x0, spec=None, y=None, clip_denoised=True, generator=None):
        """Bits/dim [B] over the whole chain (prior + KL terms + decoder; P1 Sec. 2), on the chain of an ancestral
        spec (kind ddpm/covariance, respaced to spec.steps with spec.variance) or, for spec None, the full chain
        with the model's own variance."""
        if spec is None:
            chain, variance = self.diffusion, ("fixed_small" if self.variance == "fixed_large" else self.variance)
        else:
            self.check_spec(spec)
            if spec.kind not in ("ddpm", "covariance"):
                raise ValueError(f"sampler '{spec.describe()}': NLL is defined for the ancestral chains "
                                 "(kind ddpm or covariance)")
            chain, variance = respaced(self.diffusion, spec.steps), spec.variance
        model = self.eps_model(net, x0.dtype, y)
        with inference_mode(net):
            return calc_bpd_loop(model, chain, x0, variance=variance, clip_denoised=clip_denoised,
                                 generator=generator)["total_bpd"]


#----------------------------------------------------------------------------
# EDM (playbook 2.4, 3.4, 5.3-5.4).

class EDMObjective(Objective):
    kind = "edm"

    def __init__(self, P_mean: float = -1.2, P_std: float = 1.2, sigma_data: float = 0.5, clip: bool = True):
        self.clip = clip
        self.P_mean = P_mean                                    # playbook 3.4
        self.P_std = P_std
        self.sigma_data = sigma_data                            # playbook 2.4

    def out_channels(self, in_channels: int) -> int:
        return in_channels

    def __call__(self, net, x0, y=None, augment_labels=None):
        if augment_labels is not None:
            # Playbook 1.3: the augmentation's parameters condition the network (P3's EDMLoss passes them on).
            raw = net
            net = lambda x, t, y_: raw(x, t, y_, augment_labels=augment_labels)
        # Per-element mean of lambda(sigma) ||D - y||^2: the edm code reports this mean ("Loss/loss") and sums it
        # over pixels for the gradient; the sum is C*H*W times larger, which Adam does not see.
        loss = edm_loss(net, x0, y, self.P_mean, self.P_std, self.sigma_data).mean()
        return {"L_edm": loss.detach(), "loss": loss}

    def denoiser(self, net, dtype: torch.dtype, y=None):
        return lambda x, sigma: edm_denoise(net, x.to(dtype), sigma.to(dtype), y, self.sigma_data)

    def check_spec(self, spec: SamplerArgs) -> None:
        found = sampler_error(spec, objective="edm", variance="fixed_small", T=0)   # core_rules
        if found is not None:
            raise ValueError(found)

    def sample(self, net, x_T, spec, generator=None, y=None):
        """x_T is standard normal; the sampler multiplies it by sigma_max (P3 Alg. 1-2, the edm code)."""
        self.check_spec(spec)
        with inference_mode(net):
            x0, nfe = edm_sampler(self.denoiser(net, x_T.dtype, y), x_T, sigma_min=spec.sigma_min,
                                  sigma_max=spec.sigma_max, generator=generator, **_edm_kwargs(spec))
        return (x0.clamp(-1, 1) if self.clip else x0), nfe
