"""What the diffusion core and the networks accept, as rules on plain values, in one torch-free home.

    objective_error(loss, variance, importance_sampling)   which loss trains which variance (playbook 0.2, 3.2-3.4)
    output_channels(variance, in_channels)                 2C for a learned (P1) or OCM (P6) variance (2.8, 3.7)
    sampler_error(sampler, objective=, variance=, T=)      which sampler applies to which trained model (5.0-5.4)
    sampler_nfe(kind, steps), describe_sampler(...)        NFE (5.3) and the one-line name of a sampler
    halving_error(resolution, levels), patch_error(...)    whether a U-Net / a DiT can be built at a resolution (1.7)

The config model (`difftui.engine.config`, torch-free, so the TUI checks a preset without loading torch) refuses a
preset with these rules, and the core (`difftui.engine.diffusion`, `difftui.engine.models`, which import nothing of
ours above them) checks its own arguments with the same functions, so a refusal reads the same wherever it is raised.
This module imports nothing of difftui and no torch (import-linter contracts in pyproject.toml).
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["EDM_KINDS", "ANCESTRAL_KINDS", "objective_error", "output_channels", "sampler_error", "sampler_nfe",
           "describe_sampler", "halving_error", "patch_error", "FEW_STEP_COUNTS"]

EDM_KINDS = ("edm_euler", "edm_heun", "edm_stochastic")
ANCESTRAL_KINDS = ("ddpm", "covariance")          # the eta = 1 chains: the only ones with a chain likelihood
FEW_STEP_COUNTS = (5, 10, 15, 20)                  # playbook 5.8: the few-step curve's 5/10/15/20 steps


class SamplerLike(Protocol):
    """What the rules read of a sampler: the config model's `SamplerSpec` or the core's `SamplerArgs`."""
    kind: str
    steps: int
    eta: float
    variance: str

    def describe(self) -> str: ...


#----------------------------------------------------------------------------
# Objectives (playbook 0.2, 2.8, 3.0-3.4, 3.7).

def objective_error(loss: str, variance: str, importance_sampling: bool = False) -> tuple[str, str] | None:
    """(key, reason) when a loss and a variance do not make an objective (playbook 0.2, 3.2, 3.3, 3.4)."""
    if loss not in ("simple", "hybrid", "vlb", "edm"):
        return "loss", f"unknown loss '{loss}' (allowed: simple, hybrid, vlb, edm)"
    if variance not in ("fixed_small", "fixed_large", "learned", "ocm"):
        return "variance", f"unknown variance '{variance}'"
    if loss == "edm":
        if variance != "fixed_small":
            return "variance", f"loss 'edm' has no variance head; variance '{variance}' does not apply"
        if importance_sampling:
            return "importance_sampling", "importance sampling is P1's, for the DDPM-family losses; not for loss 'edm'"
        return None
    if loss in ("hybrid", "vlb") and variance != "learned":
        return "variance", f"loss '{loss}' trains the variance, so variance must be 'learned' (playbook 3.2)"
    if loss == "simple" and variance == "learned":
        return "variance", "variance 'learned' gets no signal from L_simple (playbook 0.2); use loss 'hybrid'"
    return None


def output_channels(variance: str, in_channels: int) -> int:
    """A learned (P1 v) or OCM (P6 head) variance doubles the network's output channels (playbook 2.8, 3.7)."""
    return 2 * in_channels if variance in ("learned", "ocm") else in_channels


#----------------------------------------------------------------------------
# Samplers (playbook 0.3, 5.0-5.4, 5.7-5.8, A.3, A.7).

def sampler_nfe(kind: str, steps: int) -> int:
    """Network evaluations per sample: N, except Heun-type EDM samplers, 2N-1 (playbook 5.3)."""
    return 2 * steps - 1 if kind in ("edm_heun", "edm_stochastic") else steps


def describe_sampler(kind: str, steps: int, eta: float, tau: str, variance: str, label: str = "") -> str:
    """The sampler's one-line name in grids, panels and messages: its label, else e.g. 'DDIM eta=0 N=50 linear'."""
    if label:
        return label
    if kind == "ddim":
        return f"DDIM eta={eta:g} N={steps} {tau}"
    if kind == "ddpm":
        return f"DDPM {variance} N={steps}"
    if kind == "covariance":
        return f"few-step {variance} N={steps}"
    return f"{kind} N={steps}"


def sampler_error(spec: SamplerLike, *, objective: str, variance: str, T: int) -> str | None:
    """Why `spec` does not apply to a model trained with `objective` ('ddpm' | 'edm'), `variance` and T steps.

    The rule the config model applies to a panel's grid sampler and the objective applies before sampling."""
    if objective == "edm":
        if spec.kind not in EDM_KINDS:
            return (f"sampler '{spec.describe()}': a model trained with the EDM loss samples with "
                    f"edm_euler, edm_heun or edm_stochastic, not '{spec.kind}'")
        if spec.variance != "fixed_small":
            return f"sampler '{spec.describe()}': EDM samplers take no variance (got '{spec.variance}')"
        return None
    if spec.variance == "learned" and variance != "learned":
        return (f"sampler '{spec.describe()}': variance 'learned' needs a model trained with learned "
                f"variance (this one: {variance})")
    if spec.variance == "ocm" and variance != "ocm":
        return (f"sampler '{spec.describe()}': variance 'ocm' needs a model trained with an OCM head "
                f"(this one: {variance})")
    if spec.kind in EDM_KINDS:
        if spec.variance != "fixed_small":
            return (f"sampler '{spec.describe()}': EDM samplers integrate the ODE/SDE and take no "
                    f"variance (got '{spec.variance}')")
        return None
    if spec.steps > T:
        return f"sampler '{spec.describe()}': {spec.steps} steps exceed the model's T = {T}"
    if spec.kind == "ddim" and spec.variance in ("fixed_large", "learned"):
        return (f"sampler '{spec.describe()}': DDIM's variance comes from eta; variance "
                f"'{spec.variance}' applies to kind 'ddpm' or 'covariance'")
    if spec.kind in ANCESTRAL_KINDS and spec.eta not in (0.0, 1.0):
        return (f"sampler '{spec.describe()}': eta applies to kind 'ddim' only "
                "(ddpm/covariance are the eta = 1 ancestral chain)")
    return None


#----------------------------------------------------------------------------
# Networks: the structural part of "the tier fits the data set" (playbook 1.7).

def halving_error(resolution: int, levels: int) -> str | None:
    """Why a U-Net with `levels` resolution stages (levels - 1 downsamplings) cannot take `resolution` px."""
    if resolution % (2 ** (levels - 1)):
        return f"resolution {resolution} does not halve {levels - 1} times"
    return None


def patch_error(resolution: int, patch_size: int) -> str | None:
    """Why a transformer with `patch_size` x `patch_size` patches cannot take `resolution` px."""
    if resolution % patch_size:
        return f"resolution {resolution} is not a multiple of patch size {patch_size}"
    return None
