"""EDM: preconditioning, training noise distribution and loss weight (P3, Karras et al., NeurIPS 2022; the edm code's
EDMPrecond / EDMLoss), and the denoiser view of a discrete-time DDPM eps model (the edm code's iDDPMPrecond).

    net(x_in [B,C,H,W], c_noise [B], y) -> F [B,C,H,W];   D(x; sigma) = c_skip x + c_out F(c_in x; c_noise)
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from .samplers.timesteps import time_dtype

__all__ = ["edm_precond_coefficients", "edm_denoise", "edm_loss", "DiscreteVPDenoiser"]


#----------------------------------------------------------------------------
# Preconditioning (playbook 2.4).

def edm_precond_coefficients(sigma: torch.Tensor, sigma_data: float = 0.5):
    """(c_skip, c_out, c_in, c_noise) for noise level sigma (any shape), in sigma's dtype (playbook 2.4)."""
    # c_skip = sigma_data^2 / (sigma^2 + sigma_data^2).
    c_skip = sigma_data ** 2 / (sigma ** 2 + sigma_data ** 2)
    # c_out = sigma sigma_data / sqrt(sigma^2 + sigma_data^2).
    c_out = sigma * sigma_data / (sigma ** 2 + sigma_data ** 2).sqrt()
    # c_in = 1 / sqrt(sigma^2 + sigma_data^2).
    c_in = 1 / (sigma_data ** 2 + sigma ** 2).sqrt()
    # c_noise = ln(sigma) / 4.
    c_noise = sigma.log() / 4
    return c_skip, c_out, c_in, c_noise


def edm_denoise(net, x: torch.Tensor, sigma: torch.Tensor, y: torch.Tensor | None = None,
                sigma_data: float = 0.5) -> torch.Tensor:
    """D(x; sigma) = c_skip x + c_out F(c_in x; c_noise), computed in x's dtype; sigma [B] or scalar."""
    sigma = torch.as_tensor(sigma, device=x.device).to(x.dtype).reshape(-1)
    sigma = sigma.expand(x.shape[0]) if sigma.numel() == 1 else sigma
    c_skip, c_out, c_in, c_noise = edm_precond_coefficients(sigma.reshape(-1, *([1] * (x.ndim - 1))), sigma_data)
    F_x = net(c_in * x, c_noise.reshape(-1), y)
    return c_skip * x + c_out * F_x.to(x.dtype)


#----------------------------------------------------------------------------
# Training noise and loss weight (playbook 3.4).

def edm_loss(net, images: torch.Tensor, y: torch.Tensor | None = None, P_mean: float = -1.2, P_std: float = 1.2,
             sigma_data: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-element EDM loss lambda(sigma) ||D(y + n; sigma) - y||^2, [B, C, H, W] (the edm code's EDMLoss)."""
    B = images.shape[0]
    rnd_normal = torch.randn([B] + [1] * (images.ndim - 1), generator=generator, device=images.device, dtype=images.dtype)
    # Playbook 3.4: ln(sigma) ~ N(P_mean, P_std^2).
    sigma = (rnd_normal * P_std + P_mean).exp()
    # Playbook 3.4: lambda(sigma) = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2.
    weight = (sigma ** 2 + sigma_data ** 2) / (sigma * sigma_data) ** 2
    n = torch.randn(images.shape, generator=generator, device=images.device, dtype=images.dtype) * sigma
    D_yn = edm_denoise(net, images + n, sigma.reshape(-1), y, sigma_data)
    return weight * ((D_yn - images) ** 2)


#----------------------------------------------------------------------------
# A discrete-time VP eps model seen as an EDM denoiser (P3 App. C.3.1; the edm code's iDDPMPrecond).

class DiscreteVPDenoiser:
    """D(x; sigma) = x - sigma eps(x / sqrt(sigma^2 + 1), t(sigma)) on the model's own sigma grid.

    The grid is sigma_t = sqrt((1 - alpha_bar_t) / alpha_bar_t), t = 0..T-1 (for the cosine schedule this is the
    edm code's iDDPMPrecond `u`); `round_sigma` snaps a sigma to the nearest grid value and the network is called
    with that grid point's integer timestep, as the model was trained. `eps_model(x, t) -> [B, C or 2C, ...]`.
    """

    def __init__(self, eps_model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], sigmas: np.ndarray):
        self.eps_model = eps_model
        self.sigmas_np = np.asarray(sigmas, dtype=np.float64)        # ascending in t
        self.sigma_min = float(self.sigmas_np[0])
        self.sigma_max = float(self.sigmas_np[-1])
        self._u: dict[torch.device, torch.Tensor] = {}
        self.nfe = 0

    def _grid(self, device) -> torch.Tensor:
        if device not in self._u:
            self._u[device] = torch.from_numpy(self.sigmas_np).to(device)
        return self._u[device]

    def index(self, sigma: torch.Tensor) -> torch.Tensor:
        u = self._grid(sigma.device)
        return (sigma.to(torch.float64).reshape(-1, 1) - u.reshape(1, -1)).abs().argmin(dim=1).reshape(sigma.shape)

    def round_sigma(self, sigma: torch.Tensor) -> torch.Tensor:
        return self._grid(sigma.device)[self.index(sigma)].to(sigma.dtype)

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        sigma = sigma.reshape(-1)
        t = self.index(sigma)
        s = sigma.to(x.dtype).reshape(-1, *([1] * (x.ndim - 1)))
        # c_in = 1 / sqrt(sigma^2 + 1) = sqrt(alpha_bar_t): back to the VP scale the model was trained on.
        out = self.eps_model(x / (s ** 2 + 1).sqrt(), t.to(time_dtype(x.dtype)))
        eps = out[:, : x.shape[1]]
        # D = x - sigma eps (c_skip = 1, c_out = -sigma).
        return x - s * eps.to(x.dtype)
