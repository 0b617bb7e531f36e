"""difftui backbones: the paper-anchored tiers and the registry the engine builds them from.

    family    arch dataclass   network                                          playbook
    unet      UNetArch         P1 (Improved DDPM) U-Net, ImageNet-64 and CIFAR-10  2.0-2.3, A.6
    adm       ADMArch          ADM as P3 trains it on ImageNet-64                A.5
    ddpmpp    DDPMppArch       P3 DDPM++ (VP), SongUNet with positional c_noise  2.4, A.5
    ncsnpp    NCSNppArch       P3 NCSN++ (VE), SongUNet with Fourier c_noise     2.4, A.5
    dit       DiTArch          DiT-S/B/XL, adaLN-Zero (P5 Table 7)               2.6*, A.1
    dydit     DyDiTArch        DyDiT: dynamic width + dynamic tokens (P5)        2.6, 3.5, 4.4, A.2

Every model's forward is `forward(x [B,in,H,W], t [B] float, y [B] long | None = None) -> [B,out,H,W]`; `t` is the
DDPM timestep (U-Net, DiT, DyDiT) or c_noise (EDM nets); the diffusion core adds any preconditioning.

Conventions for the measured numbers (`count_params`, `measure_macs`, `describe_tier`): parameters are the trainable
and frozen `nn.Parameter`s (buffers such as DiT's fixed sin-cos position table are not counted); MACs are
multiply-accumulates of one forward at batch 1, i.e. half of what `torch.utils.flop_counter` reports as FLOPs
(it counts 2 FLOPs per multiply-add), and they cover matmuls, convolutions and attention, not norms or activations.

The arch classes, `ARCHS`, `parse_arch` and the tier ladders are torch-free (difftui.engine.config.archs and
difftui.engine.config.ladders; the config model checks presets with them) and re-exported here. The TUI never measures in
its own process: it reads the figures from difftui.engine.config.tier_figures.
"""

from __future__ import annotations

from torch import nn

from difftui.engine.config.archs import ARCHS, ADMArch, DDPMppArch, DiTArch, DyDiTArch, NCSNppArch, UNetArch, parse_arch
from difftui.engine.config.ladders import LADDERS, check_tier, tier_status
from difftui.engine.config.model import BackboneTier

from .dit import DiT
from .dydit import DyDiT, flops_loss
from .edm_nets import SongUNet
from .flops import count_params, describe_tier, measure_macs
from .unet import UNet

__all__ = [
    "ARCHS",
    "parse_arch",
    "build_model",
    "count_params",
    "measure_macs",
    "describe_tier",
    "check_tier",
    "tier_status",
    "flops_loss",
    "LADDERS",
    "UNet", "UNetArch", "ADMArch",
    "SongUNet", "DDPMppArch", "NCSNppArch",
    "DiT", "DiTArch",
    "DyDiT", "DyDiTArch",
]

_NETWORKS: dict[str, type[nn.Module]] = {
    "unet": UNet,
    "adm": UNet,
    "ddpmpp": SongUNet,
    "ncsnpp": SongUNet,
    "dit": DiT,
    "dydit": DyDiT,
}


def build_model(tier: BackboneTier, *, in_channels: int, out_channels: int, resolution: int,
                num_classes: int = 0, dropout: float | None = None) -> nn.Module:
    """Build the tier's network (on the current default device). Off-ladder tiers are refused unless `off_tier`.

    `dropout=None` keeps the arch's own value (the recipe may override it, playbook 4.5).
    """
    check_tier(tier)
    arch = parse_arch(tier)
    net = _NETWORKS[tier.family](arch, in_channels=in_channels, out_channels=out_channels, resolution=resolution,
                                 num_classes=num_classes, dropout=dropout)
    net.tier_name = tier.name
    return net

