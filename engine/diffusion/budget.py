"""DyDiT's training objective (P5): the diffusion loss plus the FLOPs-budget term, and, during the tier's warm-up,
the complete model's loss as well.

    loss = L_diffusion(dynamic model) + (mean F_dynamic/F_static - lambda)^2      playbook 3.5
         + L_diffusion(complete model)        while step < warmup_steps          playbook 4.4 / A.2

The wrapper holds the dynamic network it trains (its FLOPs ratio is read from the last forward), so the training loop
treats every objective alike: one call, a dict of terms, "loss" to backpropagate.
"""

from __future__ import annotations

import torch
from torch import nn

from ..config.model import SamplerSpec
from ..models.dydit import flops_loss
from .objective import Objective

__all__ = ["FlopsBudgetObjective"]


class FlopsBudgetObjective(Objective):
    def __init__(self, base: Objective, model: nn.Module, flops_lambda: float):
        self.base = base
        self.model = model                          # the DyDiT module itself (not a DDP or compiled wrapper)
        self.flops_lambda = flops_lambda
        self.kind = base.kind

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

    def check_spec(self, spec: SamplerSpec) -> None:
        self.base.check_spec(spec)

    def sample(self, net, x_T, spec, generator=None, y=None):
        return self.base.sample(net, x_T, spec, generator=generator, y=y)

    def nll_bpd(self, net, x0, spec=None, y=None, clip_denoised=True, generator=None):
        return self.base.nll_bpd(net, x0, spec, y=y, clip_denoised=clip_denoised, generator=generator)

    def __getattr__(self, name: str):
        # Sampler helpers of the base (eps_model, denoiser, diffusion, ...), e.g. for the evaluation panel.
        if name == "base":
            raise AttributeError(name)
        return getattr(self.base, name)
