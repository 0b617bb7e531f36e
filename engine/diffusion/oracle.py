"""Closed-form answers for Gaussian data x_0 ~ N(mu, Sigma): the exact eps, score, denoiser, posterior, Hessian and
transported ODE values, used to test every loss and sampler against a known result (DESIGN "Tests and checks").

With a = alpha_bar_t and sigma_t^2 = 1 - a, x_t ~ N(sqrt(a) mu, a Sigma + sigma_t^2 I), and
    eps*(x_t)          = sigma_t (a Sigma + sigma_t^2 I)^-1 (x_t - sqrt(a) mu)
    E[x_0 | x_t]       = mu + sqrt(a) Sigma (a Sigma + sigma_t^2 I)^-1 (x_t - sqrt(a) mu)
    Cov[x_0 | x_t]     = Sigma - a Sigma (a Sigma + sigma_t^2 I)^-1 Sigma
    grad^2 log p(x_t)  = -(a Sigma + sigma_t^2 I)^-1
For Sigma = diag(s^2): eps* = sigma_t (x_t - sqrt(a) mu) / (a s^2 + 1 - a), the formula of the issue.
The probability-flow ODE in x_bar = x_t / sqrt(a), sigma_bar^2 = (1 - a)/a (DDIM's and EDM's variable) moves each
eigen-coordinate as x_bar - mu ~ sqrt(lambda + sigma_bar^2), so the exact transported data point is
    x_0 = mu + Q diag(sqrt(lambda / (lambda + sigma_bar^2))) Q^T (x_bar - mu).
Everything is computed in float64 and returned in the input's dtype. Images are flattened to D = prod(shape).
"""

from __future__ import annotations

import math

import torch

__all__ = ["GaussianOracle"]


class GaussianOracle:
    def __init__(self, mean: torch.Tensor, std: torch.Tensor | None = None, cov: torch.Tensor | None = None):
        """mean [*shape]; either std [*shape] (independent dimensions) or cov [D, D] (full covariance)."""
        self.shape = tuple(mean.shape)
        self.D = D = mean.numel()
        self.mu = mean.reshape(D).to(torch.float64)
        if (std is None) == (cov is None):
            raise ValueError("give exactly one of std and cov")
        if std is not None:
            self.lam = std.reshape(D).to(torch.float64) ** 2
            self.Q = None                                                   # identity
        else:
            cov = cov.to(torch.float64)
            self.lam, self.Q = torch.linalg.eigh(0.5 * (cov + cov.T))
            self.lam = self.lam.clamp(min=0)

    #------------------------------------------------------------------------
    # Helpers: functions of Sigma applied in its eigenbasis.

    def _flat(self, x):
        return x.reshape(x.shape[0], self.D).to(torch.float64)

    def _apply(self, v, f):
        """Q diag(f) Q^T v for v [B, D], f [D] or [B, D]."""
        if self.Q is None:
            return v * f
        return ((v @ self.Q) * f) @ self.Q.T

    def _diag(self, f):
        """diag(Q diag(f) Q^T) for f [D] or [B, D]."""
        if self.Q is None:
            return f
        return f @ (self.Q.T ** 2)

    @staticmethod
    def _col(a, x):
        a = torch.as_tensor(a, dtype=torch.float64, device=x.device)
        return a.reshape(-1, 1) if a.ndim else a

    def _out(self, v, like):
        return v.reshape(like.shape[0], *self.shape).to(like.dtype)

    #------------------------------------------------------------------------
    # Data and the VP process at alpha_bar = a (scalar or [B]).

    def sample(self, n: int, generator: torch.Generator | None = None, dtype=torch.float64) -> torch.Tensor:
        z = torch.randn(n, self.D, generator=generator, dtype=torch.float64)
        x = self.mu + self._apply(z, self.lam.sqrt())
        return x.reshape(n, *self.shape).to(dtype)

    def eps(self, x_t, a):
        x, a = self._flat(x_t), self._col(a, x_t)
        s2 = 1 - a
        return self._out(s2.sqrt() * self._apply(x - a.sqrt() * self.mu, 1 / (a * self.lam + s2)), x_t)

    def score(self, x_t, a):
        """grad log p_t(x_t) = -eps* / sigma_t."""
        a_ = self._col(a, x_t)
        return self.eps(x_t, a) / -(1 - a_).sqrt().reshape(-1, *([1] * len(self.shape))).to(x_t.dtype)

    def x0_mean(self, x_t, a):
        x, a = self._flat(x_t), self._col(a, x_t)
        return self._out(self.mu + a.sqrt() * self._apply(x - a.sqrt() * self.mu, self.lam / (a * self.lam + 1 - a)), x_t)

    def x0_var_diag(self, a, like):
        """diag Cov[x_0 | x_t] [B, *shape] (constant in x_t for Gaussian data)."""
        a = self._col(a, like)
        f = self.lam * (1 - a) / (a * self.lam + 1 - a)
        return self._out(self._diag(f).expand(like.shape[0], self.D), like)

    def hessian_diag(self, a, like):
        """diag grad^2 log p_t [B, *shape]."""
        a = self._col(a, like)
        return self._out(self._diag(-1 / (a * self.lam + 1 - a)).expand(like.shape[0], self.D), like)

    def hessian(self, a: float) -> torch.Tensor:
        """The full Hessian -(a Sigma + (1-a) I)^-1 [D, D] at a scalar a."""
        f = -1 / (a * self.lam + 1 - a)
        Q = self.Q if self.Q is not None else torch.eye(self.D, dtype=torch.float64)
        return (Q * f) @ Q.T

    def ocm_head(self, a, like):
        """The exact OCM head g = -sigma_t^2 diag(H) (ocm.py's parameterisation)."""
        a_ = self._col(a, like).reshape(-1, *([1] * len(self.shape))).to(like.dtype)
        return -(1 - a_) * self.hessian_diag(a, like)

    #------------------------------------------------------------------------
    # EDM's view: x = x_0 + sigma n.

    def denoise(self, x, sigma):
        """D*(x; sigma) = E[x_0 | x] = mu + Sigma (Sigma + sigma^2 I)^-1 (x - mu)."""
        xf, s = self._flat(x), self._col(sigma, x)
        return self._out(self.mu + self._apply(xf - self.mu, self.lam / (self.lam + s ** 2)), x)

    def transport(self, x_bar, sigma_bar):
        """The probability-flow ODE solution at sigma = 0 from x_bar at noise level sigma_bar (EDM scale)."""
        xf, s = self._flat(x_bar), self._col(sigma_bar, x_bar)
        return self._out(self.mu + self._apply(xf - self.mu, (self.lam / (self.lam + s ** 2)).sqrt()), x_bar)

    def transport_vp(self, x_t, a):
        """The DDIM (eta = 0) limit: x_t at alpha_bar a carried by the ODE to alpha_bar = 1."""
        a_ = self._col(a, x_t).reshape(-1, *([1] * len(self.shape))).to(x_t.dtype)
        return self.transport(x_t / a_.sqrt(), ((1 - a_) / a_).sqrt().reshape(-1))

    #------------------------------------------------------------------------
    # The exact reverse step of a DDPM chain (for the learned-variance and covariance checks).

    def reverse_variance(self, chain, t_index: int, like) -> torch.Tensor:
        """The exact Var[x_{t-1} | x_t] on chain index t: beta_tilde_t + coef1_t^2 diag Cov[x_0 | x_t]."""
        a = float(chain.alphas_cumprod[t_index])
        c1 = float(chain.posterior_mean_coef1[t_index])
        return float(chain.posterior_variance[t_index]) + c1 ** 2 * self.x0_var_diag(a, like)

    def learned_v(self, chain, t_index: int, like) -> torch.Tensor:
        """The P1 variance channel v in [-1, 1] that makes the learned variance exact at chain index t."""
        var = self.reverse_variance(chain, t_index, like).to(torch.float64)
        lo = float(chain.posterior_log_variance_clipped[t_index])
        hi = float(chain.log_betas[t_index])
        frac = (var.log() - lo) / (hi - lo) if hi != lo else torch.zeros_like(var)
        return (2 * frac - 1).to(like.dtype)

    def chain_model(self, chain, variance: str = "fixed_small"):
        """model(x, t) on a (respaced) chain: the exact eps, plus the exact P1 channel v or OCM head when asked."""
        index = {int(m): i for i, m in enumerate(chain.timestep_map)}

        def model(x, t):
            i = index[int(t[0])]
            a = float(chain.alphas_cumprod[i])
            eps = self.eps(x, a)
            if variance == "learned":
                return torch.cat([eps, self.learned_v(chain, i, x)], 1)
            if variance == "ocm":
                return torch.cat([eps, self.ocm_head(a, x)], 1)
            return eps
        return model

    @staticmethod
    def entropy_bits_per_dim(lam: torch.Tensor) -> float:
        """Differential entropy of N(., diag(lam)) in bits per dimension."""
        return float((0.5 * torch.log(2 * math.pi * math.e * lam)).mean() / math.log(2))
