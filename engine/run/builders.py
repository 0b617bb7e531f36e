"""From a run's typed config to the core's plain arguments: the network, the objective, the EMA, the samplers.

    build_model(tier, in_channels=, out_channels=, resolution=, num_classes=, dropout=)   the tier's network
    network_kwargs(tier, dropout=None)          the keyword arguments it passes (the arch, every field by name)
    measure_macs(tier, ...), describe_tier(tier), measure_net(key)    a tier's figures, measured on the meta device
    build_objective(recipe, clip=)              DDPMObjective or EDMObjective with the recipe's values
    training_objective(config, base, net)       what the loop trains: a dynamic backbone adds its FLOPs budget
    build_ema(net, recipe)                      the EMA with the recipe's decay or half-life
    sampler_args(spec)                          a sampler preset as the core's SamplerArgs

The core (difftui.engine.models, difftui.engine.diffusion) takes plain arguments and imports nothing of ours above
it; this module is where the config model meets it, so the rules of the config (the tier ladder, the arch classes)
are asked here, once, before anything is built.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from difftui.engine.config.archs import parse_arch
from difftui.engine.config.ladders import anchor_classes, anchor_io, check_tier
from difftui.engine.config.model import BackboneTier, Recipe, RunConfig, SamplerSpec
from difftui.engine.config.tier_figures import NetKey, tier_row
from difftui.engine.core_rules import objective_error
from difftui.engine.diffusion import (
    DDPMObjective,
    EDMObjective,
    FlopsBudgetObjective,
    GaussianDiffusion,
    Objective,
    SamplerArgs,
    get_named_beta_schedule,
)
from difftui.engine.models import DiT, DyDiT, SongUNet, UNet, count_params, forward_macs
from difftui.engine.run.ema import EMA

__all__ = ["NETWORKS", "build_model", "network_kwargs", "measure_macs", "describe_tier", "measure_net",
           "build_objective", "training_objective", "build_ema", "sampler_args"]

# family -> network (the arch classes of difftui.engine.config.archs name the same families).
NETWORKS: dict[str, type[nn.Module]] = {
    "unet": UNet,
    "adm": UNet,
    "ddpmpp": SongUNet,
    "ncsnpp": SongUNet,
    "dit": DiT,
    "dydit": DyDiT,
}
_DROPOUT_FREE = ("dit", "dydit")                   # DiT has no dropout; DiTArch keeps the key so an override is harmless


#----------------------------------------------------------------------------
# Networks.

def network_kwargs(tier: BackboneTier, dropout: float | None = None) -> dict[str, Any]:
    """The tier's arch (its family's defaults filled in) as the network's keyword arguments.

    `dropout` (the recipe's, playbook 4.5) replaces the arch's own when it is not None."""
    arch = parse_arch(tier)
    kwargs = {f.name: getattr(arch, f.name) for f in dataclasses.fields(arch)}
    if tier.family in _DROPOUT_FREE:
        kwargs.pop("dropout")
    elif dropout is not None:
        kwargs["dropout"] = dropout
    return kwargs


def build_model(tier: BackboneTier, *, in_channels: int, out_channels: int, resolution: int,
                num_classes: int = 0, dropout: float | None = None) -> nn.Module:
    """Build the tier's network (on the current default device). Off-ladder tiers are refused (one-line
    PresetError, playbook 1.7-1.8) unless `tier.off_tier`; a resolution the network cannot take is a ValueError.

    `dropout=None` keeps the arch's own value (the recipe may override it, playbook 4.5).
    """
    check_tier(tier)
    return NETWORKS[tier.family](in_channels=in_channels, out_channels=out_channels, resolution=resolution,
                                 num_classes=num_classes, **network_kwargs(tier, dropout))


def _meta_net(tier: BackboneTier, in_channels: int, out_channels: int, resolution: int, num_classes: int):
    with torch.device("meta"):                      # no memory, no time: DiT-XL is measured for free
        return build_model(tier, in_channels=in_channels, out_channels=out_channels, resolution=resolution,
                           num_classes=num_classes)


def measure_macs(tier: BackboneTier, *, in_channels: int, out_channels: int, resolution: int,
                 num_classes: int | None = None) -> int:
    """Multiply-adds per forward at batch 1 of the tier's (static / complete) network, built on the meta device.

    For DyDiT this is F_static (every head, channel group and token active). `num_classes` defaults to the anchor
    convention of the family (1000 for DiT/DyDiT/ADM, 0 otherwise); the label embedding costs no MACs either way."""
    n_cls = anchor_classes(tier) if num_classes is None else num_classes
    return forward_macs(_meta_net(tier, in_channels, out_channels, resolution, n_cls))


def describe_tier(tier: BackboneTier, in_channels: int | None = None, out_channels: int | None = None) -> dict:
    """Measured parameters and GMACs beside the paper's anchor (`tier_row`'s keys, difftui.engine.config.tier_figures).

    Channels default to the anchor convention (`anchor_io`)."""
    a_in, a_out = anchor_io(tier)
    in_ch = a_in if in_channels is None else in_channels
    out_ch = a_out if out_channels is None else out_channels
    n_cls = anchor_classes(tier)
    net = _meta_net(tier, in_ch, out_ch, tier.resolution, n_cls)
    return tier_row(tier, params=count_params(net), macs=forward_macs(net), in_channels=in_ch, out_channels=out_ch,
                    num_classes=n_cls)


def measure_net(key: NetKey) -> tuple[int, int]:
    """(parameters, MACs) of the network a tier cache key names, built on the meta device."""
    tier = BackboneTier(name=key.family, description="measured network", family=key.family,
                        resolution=key.resolution, arch=key.to_json()["arch"])
    net = _meta_net(tier, key.in_channels, key.out_channels, key.resolution, key.num_classes)
    return count_params(net), forward_macs(net)


#----------------------------------------------------------------------------
# Objectives and the EMA.

def build_objective(recipe: Recipe, *, clip: bool = True) -> Objective:
    """The objective a recipe asks for (loss, variance, schedule, T, lambda, importance sampling, EDM constants).

    `clip=False` for latent data sets (`dataset.latents`): samples are not clipped to [-1, 1]."""
    found = objective_error(recipe.loss, recipe.variance, recipe.importance_sampling)
    if found is not None:
        raise ValueError(found[1])
    if recipe.loss == "edm":
        # playbook 2.4, 3.4: P_mean, P_std and sigma_data.
        return EDMObjective(recipe.P_mean, recipe.P_std, recipe.sigma_data, clip=clip)
    betas = get_named_beta_schedule(recipe.schedule, recipe.diffusion_steps)
    diffusion = GaussianDiffusion(betas, learned_range_clamp=recipe.learned_range_clamp)
    return DDPMObjective(diffusion, loss=recipe.loss, variance=recipe.variance, hybrid_lambda=recipe.hybrid_lambda,
                         importance_sampling=recipe.importance_sampling, clip=clip)


def training_objective(config: RunConfig, base: Objective, net: nn.Module) -> Objective:
    """The objective the training loop runs on `net` (the module itself, not a DDP or compiled wrapper): a dynamic
    backbone trains toward the recipe's FLOPs ratio (playbook 3.5, 4.4), every other the base objective."""
    if config.backbone.family == "dydit":
        return FlopsBudgetObjective(base, net, config.recipe.flops_lambda)
    return base


def build_ema(net: nn.Module, recipe: Recipe) -> EMA:
    """P1's fixed decay (playbook 4.0), or P3's half-life when the recipe sets one (playbook A.4)."""
    return EMA(net, recipe.ema_decay, halflife_kimg=recipe.ema_halflife_kimg, batch_size=recipe.batch_size)


#----------------------------------------------------------------------------
# Samplers.

def sampler_args(spec: SamplerSpec) -> SamplerArgs:
    """A sampler preset (validated) as the core's plain SamplerArgs: the same fields, by name."""
    return SamplerArgs(**{f.name: getattr(spec, f.name) for f in dataclasses.fields(SamplerArgs)})

