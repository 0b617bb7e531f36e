"""Noise schedules and timestep sub-sequences (P1 Improved DDPM; P2 DDIM).

Everything here is numpy float64, computed once; torch code casts the values to the input's dtype at use.

    get_named_beta_schedule("linear" | "cosine", T)   playbook 2.9 (P1 Sec. 3.2 / improved-diffusion)
    space_timesteps(T, N)                             P1 Sec. 4: N evenly spaced steps, rounded (respacing)
    ddim_timesteps(T, N, "linear" | "quadratic")      playbook 0.3 / A.7 (P2 Sec. 5 / the ddim code)
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

__all__ = [
    "get_named_beta_schedule",
    "betas_for_alpha_bar",
    "alphas_cumprod_from_betas",
    "space_timesteps",
    "ddim_timesteps",
]


#----------------------------------------------------------------------------
# Beta schedules (playbook 2.9).

def get_named_beta_schedule(name: str, T: int) -> np.ndarray:
    """The beta_t, t = 0..T-1, of a named schedule as float64 [T].

    linear: DDPM's 1e-4..0.02 over 1000 steps, scaled by 1000/T so that any T gives the same curve (P1, as in
            improved-diffusion).
    cosine: alpha_bar(t) = cos^2(((t/T + s) / (1 + s)) * pi/2), s = 0.008, beta clipped at 0.999 (P1 eq. 17,
            playbook 2.9).
    """
    if T < 1:
        raise ValueError(f"diffusion steps T must be >= 1, got {T}")
    if name == "linear":
        # P1: linear schedule of Ho et al., scaled to T: beta in [1e-4, 0.02] * 1000/T.
        scale = 1000.0 / T
        if scale * 0.02 >= 1.0:
            raise ValueError(f"the linear schedule needs T > 20 (its last beta is 20/T = {scale * 0.02:g}); got T = {T}")
        return np.linspace(scale * 0.0001, scale * 0.02, T, dtype=np.float64)
    if name == "cosine":
        s = 0.008                                           # playbook 2.9 / P1 eq. 17: offset s = 0.008
        # P1 eq. 17: alpha_bar(t) = f(t)/f(0), f(t) = cos^2(((t/T + s)/(1 + s)) * pi/2).
        return betas_for_alpha_bar(T, lambda u: math.cos((u + s) / (1 + s) * math.pi / 2) ** 2, max_beta=0.999)
    raise ValueError(f"unknown beta schedule '{name}' (allowed: linear, cosine)")


def betas_for_alpha_bar(T: int, alpha_bar: Callable[[float], float], max_beta: float = 0.999) -> np.ndarray:
    """Discretise a continuous alpha_bar(u), u in [0,1], into T betas: beta_t = 1 - alpha_bar((t+1)/T) / alpha_bar(t/T).

    max_beta = 0.999 is P1's clipping, which keeps the last steps from being singular near u = 1 (playbook 2.9).
    """
    betas = []
    for i in range(T):
        u1, u2 = i / T, (i + 1) / T
        # P1: beta_t = min(1 - alpha_bar_t / alpha_bar_{t-1}, 0.999).
        betas.append(min(1.0 - alpha_bar(u2) / alpha_bar(u1), max_beta))
    return np.array(betas, dtype=np.float64)


def alphas_cumprod_from_betas(betas: np.ndarray) -> np.ndarray:
    """alpha_bar_t = prod_{i<=t} (1 - beta_i), float64 (playbook 0.1)."""
    return np.cumprod(1.0 - np.asarray(betas, dtype=np.float64))


#----------------------------------------------------------------------------
# Timestep sub-sequences.

def space_timesteps(T: int, N: int) -> list[int]:
    """P1's respacing: N evenly spaced real numbers over [0, T-1], each rounded to the nearest integer.

    This is improved-diffusion's `space_timesteps(T, [N])` (one section), including Python's round-half-to-even, so
    a respaced chain keeps t = 0 and t = T-1. Used by the DDPM ancestral and few-step covariance samplers.
    """
    if not 1 <= N <= T:
        raise ValueError(f"cannot take {N} steps out of a {T}-step chain (need 1 <= N <= T)")
    # P1 Sec. 4: "K evenly spaced real numbers between 1 and T (inclusive), rounded to the nearest integer".
    stride = 1.0 if N <= 1 else (T - 1) / (N - 1)
    steps, cur = [], 0.0
    for _ in range(N):
        steps.append(round(cur))
        cur += stride
    return sorted(set(steps))


def ddim_timesteps(T: int, N: int, tau: str = "linear") -> list[int]:
    """The DDIM sub-sequence tau_0 < ... < tau_{N-1} (playbook 0.3 / 5.1 / A.7), ascending, length N.

    linear:    tau_i = floor(c * i) with c = T / N. For N dividing T (the default panel N in {10, 20, 50, 100} with
               T = 1000) this is exactly the ddim code's `range(0, T, T // N)`; for other N the ddim code returns
               more than N steps, we keep exactly N and the larger c (choice stated here).
    quadratic: tau_i = floor(c * i^2) with c = 0.8 T / (N-1)^2, i.e. the ddim code's
               `int(s) for s in linspace(0, sqrt(0.8 T), N) ** 2`. Small i can repeat a timestep (e.g. N = 100,
               T = 1000 repeats t = 0); as in the ddim code the repeat is kept, costs one NFE and moves nothing.
    """
    if not 1 <= N <= T:
        raise ValueError(f"cannot take {N} DDIM steps out of a {T}-step chain (need 1 <= N <= T)")
    if tau == "linear":
        # P2: tau_i = floor(c i), c chosen so that tau_{N-1} is close to T.
        return [int(math.floor(i * T / N)) for i in range(N)]
    if tau == "quadratic":
        # P2: tau_i = floor(c i^2); the ddim code's c = 0.8 T / (N-1)^2.
        return [int(s) for s in np.linspace(0.0, np.sqrt(T * 0.8), N) ** 2]
    raise ValueError(f"unknown DDIM tau rule '{tau}' (allowed: linear, quadratic)")
