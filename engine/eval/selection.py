"""The fixed deterministic sampler an evaluation measures FID with (playbook 5.6), decided from the config alone, so
that the evaluator, the doctor's re-check and the front ends ask one rule without importing torch."""

from __future__ import annotations

from difftui.engine.config.model import RunConfig, SamplerSpec

__all__ = ["deterministic", "selection_spec"]


def deterministic(spec: SamplerSpec) -> bool:
    return (spec.kind == "ddim" and spec.eta == 0.0 and spec.variance == "fixed_small") or \
        (spec.kind in ("edm_euler", "edm_heun") and spec.S_churn == 0.0)


def selection_spec(config: RunConfig) -> SamplerSpec:
    """The fixed deterministic sampler FID is measured with (playbook 5.6): the panel's grid sampler when it is
    deterministic, else DDIM eta = 0, N = 50 (playbook 5.0) for the DDPM family and EDM Heun N = 18, NFE 35
    (P3's CIFAR-10 protocol, playbook 5.6) for the EDM loss."""
    grid = config.sampler.grid
    if deterministic(grid):
        return grid
    if config.recipe.loss == "edm":
        return SamplerSpec(kind="edm_heun", steps=18)
    return SamplerSpec(kind="ddim", steps=50, eta=0.0, tau="linear")
