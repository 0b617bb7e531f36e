"""Gaussian KL and the discretized Gaussian decoder likelihood (P1 Sec. 2; DDPM's L_0 as improved-diffusion codes it).

All functions are elementwise and keep the input's dtype and device; float64 in, float64 out.
"""

from __future__ import annotations

import math

import torch

__all__ = ["mean_flat", "normal_kl", "approx_standard_normal_cdf", "discretized_gaussian_log_likelihood"]


def mean_flat(x: torch.Tensor) -> torch.Tensor:
    """Mean over every dimension but the batch: [B, ...] -> [B]."""
    return x.mean(dim=tuple(range(1, x.ndim)))


#----------------------------------------------------------------------------
# KL between diagonal Gaussians (nats, elementwise).

def normal_kl(mean1, logvar1, mean2, logvar2) -> torch.Tensor:
    """KL(N(mean1, exp(logvar1)) || N(mean2, exp(logvar2))), elementwise, in nats. Scalars broadcast."""
    tensor = next(x for x in (mean1, logvar1, mean2, logvar2) if isinstance(x, torch.Tensor))
    logvar1, logvar2 = (x if isinstance(x, torch.Tensor) else torch.as_tensor(x, dtype=tensor.dtype, device=tensor.device)
                        for x in (logvar1, logvar2))
    # KL = 1/2 (-1 + log s2^2 - log s1^2 + s1^2 / s2^2 + (m1 - m2)^2 / s2^2).
    return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2))


#----------------------------------------------------------------------------
# The decoder L_0: a Gaussian integrated over the 8-bit bin of each pixel.

def approx_standard_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    """The tanh approximation of Phi(x) that DDPM and improved-diffusion use for L_0 (kept for identical numbers)."""
    # Phi(x) ~= 1/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3))))


def discretized_gaussian_log_likelihood(x: torch.Tensor, *, means: torch.Tensor, log_scales: torch.Tensor) -> torch.Tensor:
    """log p(x) of data x in [-1, 1] on the 256-level grid under N(means, exp(log_scales)^2), integrated over each bin.

    The edge bins extend to -inf / +inf (x < -0.999 / x > 0.999), as in DDPM; probabilities are clamped at 1e-12.
    Returns natural-log likelihoods, elementwise, shape of x.
    """
    centered_x = x - means
    inv_stdv = torch.exp(-log_scales)
    # Bin [x - 1/255, x + 1/255] in the [-1, 1] scale.
    cdf_plus = approx_standard_normal_cdf(inv_stdv * (centered_x + 1.0 / 255.0))
    cdf_min = approx_standard_normal_cdf(inv_stdv * (centered_x - 1.0 / 255.0))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    cdf_delta = cdf_plus - cdf_min
    return torch.where(
        x < -0.999, log_cdf_plus,
        torch.where(x > 0.999, log_one_minus_cdf_min, torch.log(cdf_delta.clamp(min=1e-12))),
    )
