"""difftui backbones: the paper-anchored networks, each built from plain keyword arguments with its paper's defaults.

    network                                                      defaults                          playbook
    UNet       P1 (Improved DDPM) U-Net; ADM on the same code     P1 ImageNet-64, C = 128           2.0-2.3, A.5, A.6
    SongUNet   P3 DDPM++ (VP) / NCSN++ (VE)                       DDPM++ CIFAR-10                   2.4, A.5
    DiT        DiT-S/B/XL, adaLN-Zero (P5 Table 7)                DiT-XL/2                          2.6*, A.1
    DyDiT      DyDiT: dynamic width + dynamic tokens (P5)         DyDiT-XL/2, routers of P5 code    2.6, 3.5, 4.4, A.2

Every model's forward is `forward(x [B,in,H,W], t [B] float, y [B] long | None = None) -> [B,out,H,W]`; `t` is the
DDPM timestep (U-Net, DiT, DyDiT) or c_noise (EDM nets); the diffusion core adds any preconditioning.

Conventions for the measured numbers (`count_params`, `count_macs`, `forward_macs`): parameters are the trainable
and frozen `nn.Parameter`s (buffers such as DiT's fixed sin-cos position table are not counted); MACs are
multiply-accumulates of one forward at batch 1, i.e. half of what `torch.utils.flop_counter` reports as FLOPs
(it counts 2 FLOPs per multiply-add), and they cover matmuls, convolutions and attention, not norms or activations.

This package imports nothing of difftui above it (an import-linter contract): the presets' tiers, their ladders and
the tier cache live in difftui.engine.config, and engine/run/builders.py turns a tier into these constructors'
arguments (`build_model`, `measure_macs`, `describe_tier`).
"""

from __future__ import annotations

from .dit import DiT
from .dydit import DyDiT
from .edm_nets import SongUNet
from .flops import count_macs, count_params, forward_macs
from .unet import UNet

__all__ = ["UNet", "SongUNet", "DiT", "DyDiT", "count_params", "count_macs", "forward_macs"]
