"""The tier ladders: which backbone sizes a paper defined, and the off-tier check (playbook 1.7-1.8).

A backbone preset with an anchor must sit on its ladder: the U-Net only at C = 64/96/128/192 with the P1 ImageNet-64
structure (or the P1 CIFAR-10 network), the P3 networks at their Table 8 configuration, DiT/DyDiT only at S/B/XL.
Anything else is refused with one line naming the allowed tiers, unless the user passed `--off-tier`, which sets
`BackboneTier.off_tier` and marks the run off-tier wherever it is shown. Tiers with `anchor: null` (the CPU demo
tier) are exempt and shown as "not a paper anchor". Dropout is a sweep knob (playbook 4.5), never part of a tier.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from difftui.engine.config import BackboneTier, PresetError

__all__ = ["Ladder", "LADDERS", "ladder_for", "check_tier", "tier_status"]


@dataclass(frozen=True)
class Ladder:
    """One paper's discrete tiers: `fixed` fields must equal these values, `choices[key]` lists allowed values."""
    title: str                                      # e.g. "P1 ImageNet-64 U-Net" (used in messages)
    family: str
    fixed: dict[str, Any]
    choices: dict[str, tuple[Any, ...]]


# playbook 2.0-2.1 / A.6 (P1 p11): C in {64, 96, 128, 192}, channels C/2C/3C/4C, 3 blocks, attention at 16 and 8,
# 4 heads. The P1 parameter anchors (30/68/121/272M) reproduce with three downsamplings 64->32->16->8 (mult 1,2,3,4);
# see unet.py.
P1_IMAGENET64 = Ladder(
    "P1 tier", "unet",
    fixed=dict(channel_mult=(1, 2, 3, 4), num_res_blocks=3, attention_resolutions=(16, 8), num_heads=4,
               num_head_channels=0, resblock_updown=False),
    choices=dict(model_channels=(64, 96, 128, 192)),
)
# playbook 2.1 (4): the P1 CIFAR-10 U-Net, 32 -> 4 with channels 128/256/256/256.
P1_CIFAR10 = Ladder(
    "P1 CIFAR-10 tier", "unet",
    fixed=dict(channel_mult=(1, 2, 2, 2), num_res_blocks=3, attention_resolutions=(16, 8), num_heads=4,
               num_head_channels=0, resblock_updown=False),
    choices=dict(model_channels=(128,)),
)
# playbook A.5 (P3 Table 8): DDPM++ / NCSN++ 4 blocks, attention at 16 with 1 head; ADM 3 blocks, 32/16/8, 64 ch/head.
P3_DDPMPP = Ladder(
    "P3 DDPM++ tier", "ddpmpp",
    fixed=dict(model_channels=128, channel_mult=(2, 2, 2), num_blocks=4, attn_resolutions=(16,), num_heads=1),
    choices={},
)
P3_NCSNPP = Ladder(
    "P3 NCSN++ tier", "ncsnpp",
    fixed=dict(model_channels=128, channel_mult=(2, 2, 2), num_blocks=4, attn_resolutions=(16,), num_heads=1),
    choices={},
)
P3_ADM = Ladder(
    "P3 ADM tier", "adm",
    fixed=dict(model_channels=192, channel_mult=(1, 2, 3, 4), num_res_blocks=3, attention_resolutions=(32, 16, 8),
               num_head_channels=64, resblock_updown=True),
    choices={},
)
# playbook 2.6* / A.1 (P5 Table 7): (layers, heads, width) in S (12, 6, 384), B (12, 12, 768), XL (28, 16, 1152);
# patch 2 is the anchor, 4 and 8 are DiT's other patch sizes.
DIT_SIZES = {"S": (12, 6, 384), "B": (12, 12, 768), "XL": (28, 16, 1152)}
P5_DIT = Ladder("P5 DiT tier", "dit", fixed={}, choices=dict(patch_size=(2, 4, 8)))
P5_DYDIT = Ladder("P5 DyDiT tier", "dydit", fixed={}, choices=dict(patch_size=(2, 4, 8)))

LADDERS: dict[str, Ladder] = {
    "p1-imagenet64": P1_IMAGENET64,
    "p1-cifar10": P1_CIFAR10,
    "p3-ddpmpp": P3_DDPMPP,
    "p3-ncsnpp": P3_NCSNPP,
    "p3-adm": P3_ADM,
    "p5-dit": P5_DIT,
    "p5-dydit": P5_DYDIT,
}
_DEFAULT_GROUP = {"ddpmpp": "p3-ddpmpp", "ncsnpp": "p3-ncsnpp", "adm": "p3-adm", "dit": "p5-dit", "dydit": "p5-dydit"}


def ladder_for(tier: BackboneTier) -> Ladder:
    """The ladder a tier belongs to: its `tier_group`, or the family's only ladder."""
    group = tier.tier_group or _DEFAULT_GROUP.get(tier.family, "")
    if not group and tier.family == "unet":                # P1 defines a 32x32 (CIFAR-10) and a 64x64 ladder
        group = "p1-cifar10" if tier.resolution == 32 else "p1-imagenet64"
    if group not in LADDERS:
        raise PresetError(f"backbone '{tier.name}': unknown tier_group '{tier.tier_group}' "
                          f"(allowed: {', '.join(LADDERS)})")
    ladder = LADDERS[group]
    if ladder.family != tier.family:
        raise PresetError(f"backbone '{tier.name}': tier_group '{group}' is for family '{ladder.family}', "
                          f"not '{tier.family}'")
    return ladder


def _fmt(v: Any) -> str:
    return ", ".join(str(x) for x in v) if isinstance(v, (tuple, list)) else str(v)


def check_tier(tier: BackboneTier) -> None:
    """Refuse a tier that is not on its paper's ladder (one-line PresetError) unless `tier.off_tier`.

    The arch mapping is validated into the family's dataclass first, so defaults count: a preset that leaves
    `num_heads` out gets the family default and is compared with that.
    """
    if tier.off_tier or tier.anchor is None:
        return
    from . import parse_arch                                                   # local: avoid an import cycle
    arch = parse_arch(tier)
    ladder = ladder_for(tier)
    hint = "pass --off-tier to run it anyway"
    for key, allowed in ladder.choices.items():
        value = getattr(arch, key)
        if value not in allowed:
            raise PresetError(f"backbone '{tier.name}': {key}={_fmt(value)} is not a {ladder.title} "
                              f"(allowed: {', '.join(_fmt(a) for a in allowed)}); {hint}")
    for key, want in ladder.fixed.items():
        value = getattr(arch, key)
        if value != want:
            raise PresetError(f"backbone '{tier.name}': {key}={_fmt(value)} is not a {ladder.title} "
                              f"(allowed: {_fmt(want)}); {hint}")
    if tier.family in ("dit", "dydit"):
        size = (arch.depth, arch.num_heads, arch.hidden_size)
        if size not in DIT_SIZES.values():
            allowed = "; ".join(f"{k}: depth={d}, num_heads={h}, hidden_size={w}" for k, (d, h, w) in DIT_SIZES.items())
            raise PresetError(f"backbone '{tier.name}': depth={size[0]}, num_heads={size[1]}, hidden_size={size[2]} "
                              f"is not a {ladder.title} (allowed: {allowed}); {hint}")


def tier_status(tier: BackboneTier) -> str:
    """'paper anchor' | 'off-tier' | 'not a paper anchor' (what the screens print beside the tier)."""
    if tier.anchor is None:
        return "not a paper anchor"
    if tier.off_tier:
        try:                                        # --off-tier on a tier that is on its ladder changes nothing
            check_tier(dataclasses.replace(tier, off_tier=False))
        except PresetError:
            return "off-tier"
    return "paper anchor"
