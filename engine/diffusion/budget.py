"""DyDiT's training objective (P5): the diffusion loss plus the FLOPs-budget term, and, during the tier's warm-up,
the complete model's loss as well.

    loss = L_diffusion(dynamic model) + (mean F_dynamic/F_static - lambda)^2      playbook 3.5
         + L_diffusion(complete model)        while step < warmup_steps          playbook 4.4 / A.2

The wrapper holds the dynamic network it trains (its FLOPs ratio is read from the last forward), so the training loop
treats every objective alike: one call, a dict of terms, "loss" to backpropagate. The network is anything with the
three methods of `DynamicNet` (difftui.engine.models.dydit.DyDiT has them); this module imports no network.
"""

from __future__ import annotations

import contextlib
from typing import Protocol

import torch

from .objective import Objective
from .samplers.args import SamplerArgs

__all__ = ["FlopsBudgetObjective", "DynamicNet", "flops_loss"]


def flops_loss(ratio: torch.Tensor, target_lambda: float) -> torch.Tensor:
    """playbook 3.5: (mean(F_dynamic / F_static) - lambda)^2; `ratio` is the batch mean from `flops_ratio()`."""
    return (ratio - target_lambda) ** 2


class DynamicNet(Protocol):
    """What the budget reads of a dynamic network (P5's DyDiT)."""

    def __call__(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor: ...

    def flops_ratio(self) -> torch.Tensor:
        """mean(F_dynamic / F_static) of the last dynamic forward (differentiable in training)."""

    def in_warmup(self, step: int) -> bool:
        """True while the complete model's loss is kept (playbook 4.4, A.2)."""

    def complete(self) -> contextlib.AbstractContextManager:
        """A context in which the network runs complete: every head, channel and token."""


class FlopsBudgetObjective(Objective):
    def __init__(self, base: Objective, model: DynamicNet, flops_lambda: float):
        self.base = base
        self.model = model                          # the DyDiT module itself (not a DDP or compiled wrapper)
        self.flops_lambda = flops_lambda
        self.kind = base.kind
        self.clip = base.clip

    def out_channels(self, in_channels: int) -> int:
        return self.base.out_channels(in_channels)

    def constants(self) -> dict[str, float]:
        return {"flops_target": self.flops_lambda}

    def __call__(self, net, x0: torch.Tensor, y: torch.Tensor | None = None,
                 augment_labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        terms = self.base(net, x0, y, augment_labels=augment_labels)
        ratio = self.model.flops_ratio()
        loss = terms["loss"] + flops_loss(ratio, self.flops_lambda)      # playbook 3.5
        terms["flops_ratio"] = ratio.detach()
        if self.model.in_warmup(self.step):
            # playbook 4.4: keep the complete model's loss during the warm-up (through the module itself, so that a
            # DDP wrapper sees one forward per backward).
            with self.model.complete():
                complete = self.base(self.model, x0, y)["loss"]
            loss = loss + complete
            terms["L_complete"] = complete.detach()
        terms["loss"] = loss
        return terms

    # -- everything else is the base objective's ---------------------------------------------------------------------

    def state_dict(self) -> dict:
        return self.base.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.base.load_state_dict(state)

    def check_spec(self, spec: SamplerArgs) -> None:
        self.base.check_spec(spec)

    def sample(self, net, x_T, spec: SamplerArgs, generator=None, y=None):
        return self.base.sample(net, x_T, spec, generator=generator, y=y)

    def nll_bpd(self, net, x0, spec=None, y=None, clip_denoised=True, generator=None):
        return self.base.nll_bpd(net, x0, spec, y=y, clip_denoised=clip_denoised, generator=generator)
