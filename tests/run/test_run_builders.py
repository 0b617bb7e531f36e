"""engine/run/builders.py: the config model becomes the core's plain arguments, with nothing lost on the way."""

import dataclasses
import typing

import pytest
import torch
from torch import nn

from difftui.engine.config.catalog import Catalog
from difftui.engine.config.model import SamplerSpec
from difftui.engine.diffusion import DDPMObjective, EDMObjective, FlopsBudgetObjective, SamplerArgs
from difftui.engine.diffusion.samplers.args import SAMPLER_KINDS
from difftui.engine.run.builders import build_ema, build_objective, sampler_args, training_objective


def test_sampler_args_have_the_presets_fields_defaults_and_kinds():
    spec_fields = {f.name: f.default for f in dataclasses.fields(SamplerSpec)}
    args_fields = {f.name: f.default for f in dataclasses.fields(SamplerArgs)}
    assert spec_fields.keys() == args_fields.keys()
    kind = spec_fields.pop("kind"), args_fields.pop("kind")
    assert spec_fields == args_fields                                   # the playbook's defaults, once each
    assert all(k is dataclasses.MISSING for k in kind)
    assert set(typing.get_args(typing.get_type_hints(SamplerSpec)["kind"])) == set(SAMPLER_KINDS)


def test_every_shipped_sampler_translates_with_its_name_and_nfe():
    for f in Catalog().all("samplers"):
        for spec in (f.preset.grid, *f.preset.sweep):
            args = sampler_args(spec)
            assert dataclasses.asdict(args) == {k: getattr(spec, k) for k in dataclasses.asdict(args)}
            assert (args.describe(), args.nfe) == (spec.describe(), spec.nfe)


def test_the_recipe_becomes_the_objectives_plain_values():
    cat = Catalog()
    hybrid = build_objective(cat.get("recipes", "p1-hybrid-cosine"))
    assert isinstance(hybrid, DDPMObjective) and hybrid.clip
    assert (hybrid.loss, hybrid.variance, hybrid.hybrid_lambda) == ("hybrid", "learned", 0.001)    # playbook 3.2
    assert hybrid.diffusion.num_timesteps == cat.get("recipes", "p1-hybrid-cosine").diffusion_steps
    edm = build_objective(cat.get("recipes", "p3-cifar10"), clip=False)
    assert isinstance(edm, EDMObjective) and not edm.clip
    assert (edm.P_mean, edm.P_std, edm.sigma_data) == (-1.2, 1.2, 0.5)                           # playbook 3.4


def test_the_recipe_becomes_the_emas_numbers():
    p3 = Catalog().get("recipes", "p3-cifar10")
    ema = build_ema(nn.Linear(2, 2), p3)
    assert (ema.decay, ema.halflife_kimg, ema.batch_size) == (p3.ema_decay, p3.ema_halflife_kimg, p3.batch_size)
    assert ema.halflife_kimg == 500.0                                                              # playbook A.4


class FakeDynamicNet(nn.Module):
    """Anything with flops_ratio / in_warmup / complete is a dynamic net to the budget (no DyDiT needed)."""

    def __init__(self, ratio: float, warmup: int):
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))
        self.ratio, self.warmup, self.completes = torch.tensor(ratio), warmup, 0
        self.is_complete = False

    def forward(self, x, t, y=None):
        return x * self.w * (2.0 if self.is_complete else 1.0)

    def flops_ratio(self):
        return self.ratio

    def in_warmup(self, step):
        return step < self.warmup

    def complete(self):
        import contextlib

        @contextlib.contextmanager
        def ctx():
            self.is_complete, self.completes = True, self.completes + 1
            yield self
            self.is_complete = False
        return ctx()


def test_the_flops_budget_adds_the_squared_gap_and_the_complete_loss_in_warmup():
    config = Catalog().resolve(backbone="dydit-s-2", recipe="p5-dydit-finetune", off_tier=True,
                               overrides=["backbone.arch.depth=1", "backbone.arch.hidden_size=48"])
    base = build_objective(config.recipe)
    net = FakeDynamicNet(ratio=0.8, warmup=1)
    objective = training_objective(config, base, net)
    assert isinstance(objective, FlopsBudgetObjective) and objective.constants() == {"flops_target": 0.5}
    x0 = torch.zeros(4, 1, 2, 2)                                          # eps-prediction of a zero net
    torch.manual_seed(0)
    during = objective(net, x0)                                           # step 0: in the warm-up (playbook 4.4)
    torch.manual_seed(0)
    plain = base(net, x0)
    assert net.completes == 1 and "L_complete" in during
    gap = (0.8 - 0.5) ** 2                                                # playbook 3.5
    assert float(during["loss"].detach()) == pytest.approx(float(plain["loss"].detach()) + gap + float(during["L_complete"]), rel=1e-6)
    objective.step = 1
    after = objective(net, x0)
    assert net.completes == 1 and "L_complete" not in after and float(after["flops_ratio"]) == pytest.approx(0.8)
    static = Catalog().resolve(backbone="dit-s-2", off_tier=True,
                               overrides=["backbone.arch.depth=1", "backbone.arch.hidden_size=48"])
    assert training_objective(static, base, net) is base
