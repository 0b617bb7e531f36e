"""Optimal Covariance Matching: an amortised diagonal Hessian / covariance head (P6, Ou et al., ICLR 2025).

For x_t = sqrt(a) x_0 + sqrt(1-a) eps (a = alpha_bar_t, sigma_t = sqrt(1-a)) Tweedie's second-order formula gives the
covariance of the denoising posterior (P6 Sec. 2-3):

    Cov[x_0 | x_t] = (sigma_t^2 / a) (I + sigma_t^2 H(x_t)),     H = grad^2 log p_t(x_t) = -(d eps / d x_t) / sigma_t

OCM regresses diag(H) with the unbiased target v * (H v), v ~ Rademacher (E_v[v * (H v)] = diag(H)), where H v is one
vector-Jacobian product of the score network by autograd (playbook 3.7). The direct estimate needs M >= 100 such
products (about 2M network evaluations) per step on CIFAR-10 (playbook A.8); the amortised head needs one forward.

Parameterisation (our choice among equivalent ones, stated here): the head predicts the dimensionless
    g(x_t) = -sigma_t^2 diag(H(x_t)) = sigma_t diag(d eps / d x_t)   (0 <= g <= 1 when Cov[x_0|x_t] is PSD and bounded
                                                                      by the prior variance),
and is trained on the target sigma_t^2 * (-v * (H v)) = sigma_t * v * (J_eps^T v). Scaling the target by sigma_t^2 at
each t leaves the minimiser of the squared error unchanged (it is still E_v[target] = g) while keeping the regression
O(1) at every t instead of O(1/sigma_t^2). Then Sigma_0(x_t) = diag Cov[x_0|x_t] = (sigma_t^2 / a) (1 - g).
"""

from __future__ import annotations

from typing import Callable

import torch

__all__ = [
    "rademacher_like",
    "hessian_vector_product",
    "hutchinson_diag_hessian",
    "ocm_target",
    "x0_variance_from_head",
    "X0_VARIANCE_BOUND",
]


def rademacher_like(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """v with independent entries +-1 with probability 1/2 each, shape/dtype/device of x."""
    v = torch.randint(0, 2, x.shape, generator=generator, device=x.device)
    return (2 * v - 1).to(x.dtype)


#----------------------------------------------------------------------------
# The estimator (direct, M products) and the training target (one product).

def hessian_vector_product(score_fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """H v = grad_x (v . s(x)) for a score s = grad log p, by one backward pass (= J_s^T v; J_s is symmetric for a
    true score)."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        s = score_fn(x)
        (hv,) = torch.autograd.grad(s, x, grad_outputs=v)
    return hv


def hutchinson_diag_hessian(score_fn, x: torch.Tensor, num_samples: int = 100,
                            generator: torch.Generator | None = None) -> torch.Tensor:
    """The direct Monte-Carlo estimate diag(H) ~= 1/M sum_m v_m * (H v_m), M = num_samples (P6; playbook A.8: M >= 100).

    Costs M forward + M backward passes; OCM amortises it into a head.
    """
    acc = torch.zeros_like(x)
    for _ in range(num_samples):
        v = rademacher_like(x, generator)
        # P6: diag(H) = E_v[v * (H v)], v ~ Rademacher.
        acc += v * hessian_vector_product(score_fn, x, v)
    return acc / num_samples


def ocm_target(eps: torch.Tensor, x_t: torch.Tensor, v: torch.Tensor, sigma_t: torch.Tensor) -> torch.Tensor:
    """The normalised one-sample OCM target sigma_t * v * (J_eps^T v) = -sigma_t^2 v * (H v), detached.

    eps must have been computed from x_t with x_t.requires_grad; the graph is retained for the caller's backward.
    sigma_t = sqrt(1 - alpha_bar_t), broadcastable to x_t.
    """
    (jtv,) = torch.autograd.grad(eps, x_t, grad_outputs=v, retain_graph=True)
    # P6: E_v[v * (H v)] = diag(H); with H = -J_eps / sigma_t: g = -sigma_t^2 diag(H) = E_v[sigma_t v * (J_eps^T v)].
    return (sigma_t * v * jtv).detach()


#----------------------------------------------------------------------------
# From the head to the covariance of p(x_0 | x_t).

# P6's sampler bounds the covariance of p(x_0 | x_t) to [0, 1]: the data lie in [-1, 1], and no distribution on
# [-1, 1] has a variance above 1. On by default (with x_0 clipping, as in P6's sampler); `bound=False` gives the raw
# Tweedie value.
X0_VARIANCE_BOUND = 1.0


def x0_variance_from_head(g: torch.Tensor, alpha_bar_t: torch.Tensor, bound: bool = True) -> torch.Tensor:
    """Sigma_0(x_t) = diag Cov[x_0 | x_t] = (1 - a)/a * (1 - g) (a = alpha_bar_t, broadcastable), clamped to
    [0, 1] (P6's bound for data in [-1, 1]; `bound=False`: clamped at 0 only).

    Without the bound a near-perfect head is not enough at large t: on the cosine chain (1 - a)/a reaches 4.1e8 at
    t = 999, so a head 1e-3 off gives Sigma_0 ~ 4e5 and a 10-step chain's first step a variance of ~1.2e4.
    """
    # P6: Cov[x_0|x_t] = (sigma_t^2 / alpha_bar_t)(I + sigma_t^2 H), and g = -sigma_t^2 diag(H).
    var = (1.0 - alpha_bar_t) / alpha_bar_t * (1.0 - g)
    return var.clamp(0.0, X0_VARIANCE_BOUND) if bound else var.clamp(min=0.0)
