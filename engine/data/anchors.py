"""From a data set's profile to the nearest paper anchor and its tiers (playbook 1.6-1.8).

Playbook 1.7 (1) maps a data set to the closest task a paper reported, and starts from that paper's tiers:

    what the network sees            anchor task                 tier groups, in order
    32 x 32 pixels                   CIFAR-10                    P1 CIFAR-10 U-Net, P3 DDPM++, P3 NCSN++
    64 x 64 pixels                   ImageNet-64                 P1 ImageNet-64 ladder (C = 64/96/128/192), P3 ADM
    latents of 256 / 512 images      ImageNet-256/512 (P5)       DiT-S/B/XL, then DyDiT-S/B/XL (A.1)

Anything else has no anchor: playbook 1.7 (2) asks for a pilot at an anchor resolution (32/64/256) first; 256 or 512
pixels are pointed at their latents. Within a group the tiers are ordered small to large (playbook 1.8 (4): compare the
smallest two tiers first; A.1 (4): DiT-S to get the loop running).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from difftui.engine.config.model import BackboneTier, DatasetProfile

__all__ = ["AnchorSuggestion", "nearest_anchor", "rank_backbones", "tier_group"]


@dataclass(frozen=True)
class AnchorSuggestion:
    task: str                                       # the paper task, e.g. "CIFAR-10 32x32"
    groups: tuple[str, ...]                         # tier groups (models.tiers.LADDERS keys), preferred first
    note: str                                       # why, with the playbook section


def nearest_anchor(profile: DatasetProfile) -> AnchorSuggestion:
    c, h, w = profile.model_shape
    if profile.latents:
        if profile.resolution in (256, 512):
            return AnchorSuggestion(f"ImageNet-{profile.resolution} latents ({c}x{h}x{w})", ("p5-dit", "p5-dydit"),
                                    f"{profile.resolution}px images as SD-VAE latents -> DiT-S/B/XL, then DyDiT "
                                    f"(playbook 1.7, A.1: DiT-S to run the loop first, XL for the best FID)")
        return AnchorSuggestion(f"latents {c}x{h}x{w}", (),
                                f"P5 reports DiT at 256 and 512 px only; latents of {profile.resolution}px images "
                                f"have no anchor (playbook A.1 (3))")
    if h == w == 32:
        return AnchorSuggestion("CIFAR-10 32x32", ("p1-cifar10", "p3-ddpmpp", "p3-ncsnpp"),
                                "32x32 -> the CIFAR-10 anchor: P1's U-Net or P3's DDPM++/NCSN++ (playbook 1.7)")
    if h == w == 64:
        return AnchorSuggestion("ImageNet-64", ("p1-imagenet64", "p3-adm"),
                                "64x64 -> the ImageNet-64 anchor: the P1 ladder C = 64/96/128/192 (lr 1e-4/sqrt(C/128))"
                                " or P3's ADM (playbook 1.7, 2.0, A.6)")
    if h == w and h in (256, 512):
        return AnchorSuggestion(f"ImageNet-{h} (needs latents)", (),
                                f"{h}x{h} pixels: the DiT anchors train on SD-VAE latents; set dataset.latents=true "
                                f"(a local VAE) to get the DiT tiers (playbook 1.7, A.1)")
    return AnchorSuggestion("none", (), f"no paper anchor at {h}x{w}: run a pilot at 32, 64 or 256 px first "
                                        f"(playbook 1.7 (2))")


def tier_group(tier: BackboneTier) -> str:
    """The tier's ladder name ('' for a tier that is not a paper anchor)."""
    if tier.anchor is None:
        return ""
    from difftui.engine.config.ladders import LADDERS, ladder_for
    from difftui.engine.config.model import PresetError
    try:
        ladder = ladder_for(tier)
    except PresetError:
        return ""
    return next((name for name, lad in LADDERS.items() if lad is ladder), "")


def rank_backbones(profile: DatasetProfile, tiers: Iterable[tuple[str, BackboneTier | None]]
                   ) -> list[tuple[str, bool]]:
    """(name, suggested) for every tier: the anchor's tiers first (group order, then small to large by the paper's
    parameter count), then the rest in their given order. Unloadable presets (None) keep their place among the rest."""
    suggestion = nearest_anchor(profile)
    rank = {g: i for i, g in enumerate(suggestion.groups)}
    entries = list(tiers)
    suggested, rest = [], []
    for order, (name, tier) in enumerate(entries):
        group = tier_group(tier) if tier is not None else ""
        if group in rank:
            size = tier.anchor.params_m if tier.anchor and tier.anchor.params_m else float("inf")
            suggested.append(((rank[group], size, order), name))
        else:
            rest.append(name)
    return [(name, True) for _, name in sorted(suggested)] + [(name, False) for name in rest]
