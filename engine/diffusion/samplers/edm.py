"""EDM samplers: Euler, Heun (Alg. 1) and the stochastic sampler (Alg. 2) on the rho-warped sigma steps
(P3, Karras et al., NeurIPS 2022; the edm code's `edm_sampler`, float64 inside the loop).

    denoise(x, sigma) -> D(x; sigma), x [B, C, ...], sigma [B]; x = x_0 + sigma n, so D estimates x_0.

x_T is standard normal noise; the sampler scales it by sigma_0 = sigma_max itself (as the edm code does).
NFE: Euler N; Heun 2N - 1 (no correction on the last step to sigma_N = 0; playbook 5.3); the stochastic sampler is
Heun with churn, 2N - 1.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

__all__ = [
    "edm_sigma_steps",
    "edm_sampler",
    "edm_euler_sample",
    "edm_heun_sample",
    "edm_stochastic_sample",
    "EDM_STOCHASTIC_SETTINGS",
    "EDM_STOCHASTIC_GRID",
]

# Playbook 5.4 / A.3: P3 Table 5. CIFAR-10 (VP/VE); ImageNet-64 with S_churn 40 (P3's own model) or 80 (the
# pre-trained ADM model) - which one is recorded in the preset's label.
EDM_STOCHASTIC_SETTINGS = {
    "cifar10": dict(S_churn=30.0, S_tmin=0.01, S_tmax=1.0, S_noise=1.007),
    "imagenet64": dict(S_churn=40.0, S_tmin=0.05, S_tmax=50.0, S_noise=1.003),
    "imagenet64-adm": dict(S_churn=80.0, S_tmin=0.05, S_tmax=50.0, S_noise=1.003),
}

# Playbook A.3 (P3 Table 5 grid search sets). The "..." of the paper read as the 1-2-5 progression (our reading).
EDM_STOCHASTIC_GRID = {
    "S_churn": tuple(float(c) for c in range(0, 101, 10)),
    "S_tmin": (0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0),
    "S_tmax": (0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 80.0),
    "S_noise": tuple(round(1.0 + 0.001 * k, 3) for k in range(11)),
}


def edm_sigma_steps(num_steps: int = 18, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0,
                    round_sigma: Callable[[torch.Tensor], torch.Tensor] | None = None,
                    device=None) -> torch.Tensor:
    """Playbook 5.3: sigma_i = (sigma_max^(1/rho) + i/(N-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho, i < N,
    then sigma_N = 0. Float64 [N + 1]. N = 1 gives (sigma_max, 0)."""
    i = torch.arange(num_steps, dtype=torch.float64, device=device)
    frac = i / (num_steps - 1) if num_steps > 1 else torch.zeros_like(i)
    t_steps = (sigma_max ** (1 / rho) + frac * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    if round_sigma is not None:
        t_steps = round_sigma(t_steps)
    return torch.cat([t_steps, torch.zeros_like(t_steps[:1])])


@torch.no_grad()
def edm_sampler(
    denoise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x_T: torch.Tensor,
    num_steps: int = 18,                            # P3 CIFAR-10: N = 18, NFE 35
    sigma_min: float = 0.002,                       # playbook 5.3
    sigma_max: float = 80.0,
    rho: float = 7.0,
    S_churn: float = 0.0,                           # playbook 5.4: 0 = deterministic
    S_tmin: float = 0.0,
    S_tmax: float = float("inf"),
    S_noise: float = 1.0,
    solver: str = "heun",                           # "heun" (2nd order) or "euler"
    round_sigma: Callable[[torch.Tensor], torch.Tensor] | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, int]:
    """P3 Alg. 2 (Alg. 1 when S_churn = 0). Returns (x_0 in x_T's dtype, NFE).

    A denoiser with a sigma range of its own (attributes `sigma_min`, `sigma_max`, e.g. `DiscreteVPDenoiser`) has
    the requested range clamped to it, and its `round_sigma` is used when none is given (edm's generate.py): a
    sigma below the grid would round to a repeated grid value, a zero-length step that still costs 2 NFE.
    """
    if solver not in ("heun", "euler"):
        raise ValueError(f"unknown EDM solver '{solver}' (allowed: heun, euler)")
    # Adjust noise levels based on what's supported by the network (playbook 5.3: sigma_min = max(sigma_lo, 0.002),
    # sigma_max = min(sigma_hi, 80)).
    sigma_min = max(sigma_min, float(getattr(denoise, "sigma_min", 0.0)))
    sigma_max = min(sigma_max, float(getattr(denoise, "sigma_max", math.inf)))
    if round_sigma is None:
        round_sigma = getattr(denoise, "round_sigma", None)
    rnd = round_sigma if round_sigma is not None else (lambda s: s)
    t_steps = edm_sigma_steps(num_steps, sigma_min, sigma_max, rho, round_sigma=round_sigma, device=x_T.device)
    B = x_T.shape[0]
    stochastic = S_churn > 0
    nfe = 0

    def D(x, sigma):
        nonlocal nfe
        nfe += 1
        return denoise(x, sigma.expand(B)).to(torch.float64)

    # Main sampling loop.
    x_next = x_T.to(torch.float64) * t_steps[0]
    for i, (t_cur, t_next) in enumerate(zip(t_steps[:-1], t_steps[1:], strict=False)):
        x_cur = x_next

        # Increase noise temporarily.
        gamma = min(S_churn / num_steps, math.sqrt(2) - 1) if S_tmin <= float(t_cur) <= S_tmax else 0.0
        t_hat = rnd(t_cur + gamma * t_cur)
        if stochastic:
            noise = torch.randn(x_cur.shape, generator=generator, device=x_cur.device, dtype=x_cur.dtype)
            x_hat = x_cur + (t_hat ** 2 - t_cur ** 2).sqrt() * S_noise * noise
        else:
            x_hat = x_cur

        # Euler step.
        denoised = D(x_hat, t_hat)
        d_cur = (x_hat - denoised) / t_hat
        x_next = x_hat + (t_next - t_hat) * d_cur

        # Apply 2nd order correction.
        if solver == "heun" and i < num_steps - 1:
            denoised = D(x_next, t_next)
            d_prime = (x_next - denoised) / t_next
            x_next = x_hat + (t_next - t_hat) * (0.5 * d_cur + 0.5 * d_prime)

    return x_next.to(x_T.dtype), nfe


def edm_euler_sample(denoise, x_T, num_steps: int = 18, sigma_min: float = 0.002, sigma_max: float = 80.0,
                     rho: float = 7.0, round_sigma=None, generator=None) -> tuple[torch.Tensor, int]:
    """Deterministic Euler on the EDM steps; NFE = N."""
    return edm_sampler(denoise, x_T, num_steps, sigma_min, sigma_max, rho, solver="euler",
                       round_sigma=round_sigma, generator=generator)


def edm_heun_sample(denoise, x_T, num_steps: int = 18, sigma_min: float = 0.002, sigma_max: float = 80.0,
                    rho: float = 7.0, round_sigma=None, generator=None) -> tuple[torch.Tensor, int]:
    """Deterministic Heun (P3 Alg. 1); NFE = 2N - 1."""
    return edm_sampler(denoise, x_T, num_steps, sigma_min, sigma_max, rho, solver="heun",
                       round_sigma=round_sigma, generator=generator)


def edm_stochastic_sample(denoise, x_T, num_steps: int = 18, sigma_min: float = 0.002, sigma_max: float = 80.0,
                          rho: float = 7.0, S_churn: float = 30.0, S_tmin: float = 0.01, S_tmax: float = 1.0,
                          S_noise: float = 1.007, round_sigma=None, generator=None) -> tuple[torch.Tensor, int]:
    """P3 Alg. 2 with churn; defaults are the CIFAR-10 row of P3 Table 5 (playbook 5.4). NFE = 2N - 1."""
    return edm_sampler(denoise, x_T, num_steps, sigma_min, sigma_max, rho, S_churn=S_churn, S_tmin=S_tmin,
                       S_tmax=S_tmax, S_noise=S_noise, solver="heun", round_sigma=round_sigma, generator=generator)
