"""The tier ladders: which backbone sizes a paper defined, and the off-tier check (playbook 1.7-1.8).

A backbone preset with an anchor must sit on its ladder: the U-Net only at C = 64/96/128/192 with the P1 ImageNet-64
structure (or the P1 CIFAR-10 network), the P3 networks at their Table 8 configuration, DiT/DyDiT only at S/B/XL.
Anything else is refused with one line naming the allowed tiers, unless the user passed `--off-tier`, which sets
`BackboneTier.off_tier` and marks the run off-tier wherever it is shown. Tiers with `anchor: null` (the CPU demo
tier) are exempt and shown as "not a paper anchor". Dropout is a sweep knob (playbook 4.5), never part of a tier.

Torch-free: the run-config model (`RunConfig` in difftui.engine.config.model) asks `tier_violation`; the model builder
(engine/run/builders.py) asks `check_tier` before it builds a network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from difftui.engine.config.archs import arch_of
from difftui.engine.config.schema import PresetError

__all__ = ["Ladder", "LADDERS", "ladder_for", "tier_violation", "check_tier", "tier_status", "anchor_io",
           "anchor_classes"]


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


def ladder_for(tier: Any) -> Ladder:
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


HINT = "pass --off-tier to run it anyway"


def tier_violation(tier: Any) -> tuple[str, str] | None:
    """(key under the tier, one-line reason) when the tier is not on its paper's ladder, else None.

    Ignores `off_tier` (the caller decides); tiers without an anchor have no ladder. The arch mapping is validated
    into the family's class first, so defaults count: a preset that leaves `num_heads` out gets the family default
    and is compared with that.
    """
    if tier.anchor is None:
        return None
    arch = arch_of(tier.family, tier.arch, f"backbone '{tier.name}': arch")
    ladder = ladder_for(tier)
    for key, allowed in ladder.choices.items():
        value = getattr(arch, key)
        if value not in allowed:
            return (f"arch.{key}", f"{key}={_fmt(value)} is not a {ladder.title} "
                                   f"(allowed: {', '.join(_fmt(a) for a in allowed)}); {HINT}")
    for key, want in ladder.fixed.items():
        value = getattr(arch, key)
        if value != want:
            return f"arch.{key}", f"{key}={_fmt(value)} is not a {ladder.title} (allowed: {_fmt(want)}); {HINT}"
    if tier.family in ("dit", "dydit"):
        size = (arch.depth, arch.num_heads, arch.hidden_size)
        if size not in DIT_SIZES.values():
            allowed = "; ".join(f"{k}: depth={d}, num_heads={h}, hidden_size={w}" for k, (d, h, w) in DIT_SIZES.items())
            return ("arch", f"depth={size[0]}, num_heads={size[1]}, hidden_size={size[2]} is not a {ladder.title} "
                            f"(allowed: {allowed}); {HINT}")
    return None


def check_tier(tier: Any) -> None:
    """Refuse a tier that is not on its paper's ladder (one-line PresetError) unless `tier.off_tier`."""
    if tier.off_tier:
        return
    found = tier_violation(tier)
    if found is not None:
        raise PresetError(f"backbone '{tier.name}': {found[1]}")


def tier_status(tier: Any) -> str:
    """'paper anchor' | 'off-tier' | 'not a paper anchor' (what the screens print beside the tier).

    --off-tier on a tier that is on its ladder changes nothing."""
    if tier.anchor is None:
        return "not a paper anchor"
    if tier.off_tier and tier_violation(tier) is not None:
        return "off-tier"
    return "paper anchor"


#----------------------------------------------------------------------------
# The anchor convention: under which input, output and classes the paper counts a tier's figures.

def anchor_io(tier: Any) -> tuple[int, int]:
    """(in_channels, out_channels) under which the paper counts its anchor figures.

    U-Nets: RGB in, learned variance out (2 x 3 = 6, playbook 2.8). DiT/DyDiT: 4-channel latents, learned sigma
    (8 out). EDM nets: RGB in and out (P3 predicts only the denoised image).
    """
    if tier.family in ("dit", "dydit"):
        return 4, 8
    if tier.family == "unet":
        return 3, 6
    return 3, 3


def anchor_classes(tier: Any) -> int:
    """DiT's anchors count the 1000-class label embedder (P5 Table 7; DiT models.py); ADM is class-conditional on
    ImageNet (P3 Table 7). U-Net and EDM-net anchors are unconditional."""
    return 1000 if tier.family in ("dit", "dydit", "adm") else 0
