"""One sampler's plain arguments, what `Objective.sample(net, x_T, args)` and `Objective.nll_bpd` take.

    SamplerArgs(kind="ddim", steps=50, eta=0.0, tau="linear")          DDIM (P2; playbook 0.3, A.7)
    SamplerArgs(kind="ddpm", steps=1000, variance="fixed_large")       P1 ancestral, respaced to `steps`
    SamplerArgs(kind="covariance", steps=10, variance="ocm")           the few-step covariance chains (P1, P6; 5.7-5.8)
    SamplerArgs(kind="edm_heun", steps=18)                             EDM Heun, NFE 2N - 1 (P3; 5.3)
    SamplerArgs(kind="edm_stochastic", steps=256, S_churn=40, S_tmin=0.05, S_tmax=50, S_noise=1.003)   (5.4, A.3)

The defaults are the playbook's (DDIM eta = 0, N = 50, tau linear; EDM sigma 0.002..80, rho = 7, no churn). The
presets' `SamplerSpec` (difftui.engine.config.model) has the same fields; engine/run/builders.py `sampler_args`
translates one into the other. Whether a sampler applies to a trained model is difftui.engine.core_rules'
`sampler_error`, asked by the objective before it samples.
"""

from __future__ import annotations

from dataclasses import dataclass

from difftui.engine.core_rules import describe_sampler, sampler_nfe

__all__ = ["SamplerArgs", "SAMPLER_KINDS"]

SAMPLER_KINDS = ("ddim", "ddpm", "edm_euler", "edm_heun", "edm_stochastic", "covariance")


@dataclass(frozen=True)
class SamplerArgs:
    kind: str                                       # one of SAMPLER_KINDS
    steps: int = 50                                 # N: DDIM sub-sequence length, EDM steps, few-step count
    eta: float = 0.0                                # DDIM eta; 0 = deterministic (playbook 0.3)
    tau: str = "linear"                             # DDIM sub-sequence rule, linear | quadratic (playbook A.7)
    variance: str = "fixed_small"                   # fixed_small | fixed_large | learned | ocm (ddpm, covariance)
    sigma_min: float = 0.002                        # EDM (playbook 5.3)
    sigma_max: float = 80.0
    rho: float = 7.0
    S_churn: float = 0.0                            # EDM stochastic (playbook 5.4, A.3)
    S_tmin: float = 0.0
    S_tmax: float = float("inf")
    S_noise: float = 1.0
    label: str = ""                                 # the name shown instead of `describe()`'s

    def __post_init__(self):
        if self.kind not in SAMPLER_KINDS:
            raise ValueError(f"sampler kind '{self.kind}': expected one of {', '.join(SAMPLER_KINDS)}")
        if self.steps < 1:
            raise ValueError(f"sampler '{self.describe()}': steps must be >= 1, got {self.steps}")

    def describe(self) -> str:
        return describe_sampler(self.kind, self.steps, self.eta, self.tau, self.variance, self.label)

    @property
    def nfe(self) -> int:
        return sampler_nfe(self.kind, self.steps)
