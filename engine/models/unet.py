"""The P1 (Improved DDPM) U-Net, and the ADM network of P3 on the same code path.

Playbook 2.0-2.3 / A.6: resolution chain with `len(channel_mult) - 1` downsamplings, `num_res_blocks` residual blocks
per stage, a mirrored up path (one extra block per stage that eats the skip of the downsampler), channels
`C * channel_mult[level]`, self-attention at the listed resolutions with `d_head = d_model / num_heads`, and the
scale-shift condition `GroupNorm(h) * (w + 1) + b` in every residual block. The output has 2x channels when the
variance is learned; that is the caller's `out_channels`.

ADM (P3 Table 8 / playbook A.5; Dhariwal & Nichol's network as EDM re-implements it) is the same network with
resampling inside the residual blocks (`resblock_updown`), 64 channels per head (6-9-12 heads at 32/16/8 for
C=192) and a class embedding: `UNet(model_channels=192, channel_mult=(1, 2, 3, 4), num_res_blocks=3,
attention_resolutions=(32, 16, 8), num_head_channels=64, dropout=0.1, resblock_updown=True, ...)`.

The constructor takes plain keyword arguments with P1's defaults (as DiT's and EDM's networks do); the presets'
typed `arch:` mapping (difftui.engine.config.archs) is turned into them by engine/run/builders.py.

Conventions: `t` is a [B] float tensor (the DDPM timestep for P1, c_noise for ADM under EDM preconditioning),
embedded sinusoidally to C channels, then an MLP C -> 4C -> 4C. Labels `y` are [B] long; `y=None` leaves the class
embedding out. Zero-initialised: the last conv of every residual branch, every attention projection and the output
conv (improved-diffusion), so a fresh network outputs zeros.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from difftui.engine.core_rules import halving_error

from .layers import SpatialSelfAttention, group_norm, scale_shift, timestep_embedding, zero_module

__all__ = ["ResBlock", "UNet"]


#----------------------------------------------------------------------------
# Resamplers.

class Upsample(nn.Module):
    """Nearest x2, then a 3x3 conv (`use_conv=False`: resample only, as inside ADM residual blocks)."""

    def __init__(self, channels: int, use_conv: bool):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1) if use_conv else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return self.conv(x) if self.conv is not None else x


class Downsample(nn.Module):
    """3x3 conv with stride 2 (`use_conv=False`: 2x2 average pooling)."""

    def __init__(self, channels: int, use_conv: bool):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1) if use_conv else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) if self.conv is not None else F.avg_pool2d(x, 2)


#----------------------------------------------------------------------------
# Residual block with the scale-shift condition (playbook 2.3).

class ResBlock(nn.Module):
    """GN -> SiLU -> [resample] -> conv3x3 -> GN * (w + 1) + b -> SiLU -> dropout -> conv3x3 (zero), + skip.

    `emb` arrives already through SiLU (the network applies it once); [w | b] = Linear(emb).
    """

    def __init__(self, in_ch: int, out_ch: int, emb_ch: int, dropout: float, num_groups: int = 32,
                 up: bool = False, down: bool = False):
        super().__init__()
        self.norm0 = group_norm(in_ch, num_groups)
        self.resample = Upsample(in_ch, False) if up else Downsample(in_ch, False) if down else None
        self.conv0 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.emb = nn.Linear(emb_ch, 2 * out_ch)                                # -> [w | b], each of width out_ch
        self.norm1 = group_norm(out_ch, num_groups)
        self.dropout = nn.Dropout(dropout)
        self.conv1 = zero_module(nn.Conv2d(out_ch, out_ch, 3, padding=1))
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = F.silu(self.norm0(x))                                               # [B, in, H, W]
        if self.resample is not None:
            h, x = self.resample(h), self.resample(x)                           # [B, in, H', W']
        h = self.conv0(h)                                                       # [B, out, H', W']
        h = scale_shift(self.norm1(h), self.emb(emb))                           # GN(h) * (w + 1) + b
        h = self.conv1(self.dropout(F.silu(h)))
        return self.skip(x) + h


class UNetStage(nn.Module):
    """One residual block, optionally followed by self-attention (a U-Net 'level' element)."""

    def __init__(self, block: ResBlock, attn: SpatialSelfAttention | None):
        super().__init__()
        self.block, self.attn = block, attn

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        x = self.block(x, emb)
        return self.attn(x) if self.attn is not None else x


#----------------------------------------------------------------------------
# The network.

class UNet(nn.Module):
    """P1 U-Net / ADM. forward(x [B,in,H,W], t [B] float, y [B] long | None) -> [B,out,H,W].

    The defaults are P1's ImageNet-64 baseline, C = 128 (playbook 2.0-2.2, A.6); ADM passes its own
    (`resblock_updown=True`, `num_head_channels=64`, ...; playbook A.5).
    """

    def __init__(self, *, in_channels: int, out_channels: int, resolution: int, num_classes: int = 0,
                 model_channels: int = 128,                                    # C (P1 tiers: 64/96/128/192, A.6)
                 channel_mult: tuple[int, ...] = (1, 2, 3, 4),                 # stage widths in units of C (2.0-2.1)
                 num_res_blocks: int = 3,                                      # per down stage; up stages get +1
                 attention_resolutions: tuple[int, ...] = (16, 8),             # in pixels (2.2)
                 num_heads: int = 4,                                           # P1: 4 heads (2.2)
                 num_head_channels: int = 0,                                   # > 0: heads = channels / this (ADM 64)
                 dropout: float = 0.0,                                         # P1 grid {0.1, 0.2, 0.3} (4.5)
                 resblock_updown: bool = False,                                # ADM: resample inside the blocks
                 num_groups: int = 32,                                         # GroupNorm groups
                 time_embed_mult: int = 4):                                    # embedding width = 4C
        super().__init__()
        problem = halving_error(resolution, len(channel_mult))
        if problem is not None:
            raise ValueError(problem)
        levels = len(channel_mult)
        self.resolution, self.num_classes = resolution, num_classes
        self.in_channels, self.out_channels = in_channels, out_channels
        self.model_channels = model_channels
        C = model_channels
        emb_ch = time_embed_mult * C
        drop, G = dropout, num_groups

        def heads_at(ch: int) -> int:
            return ch // num_head_channels if num_head_channels > 0 else num_heads

        def attn(ch: int, res: int) -> SpatialSelfAttention | None:
            return SpatialSelfAttention(ch, heads_at(ch), G) if res in attention_resolutions else None

        # Noise-level and class embedding: sinusoid(C) -> Linear(C, 4C) -> SiLU -> Linear(4C, 4C) [+ label].
        self.time_embed = nn.Sequential(nn.Linear(C, emb_ch), nn.SiLU(), nn.Linear(emb_ch, emb_ch))
        self.label_embed = nn.Embedding(num_classes, emb_ch) if num_classes > 0 else None

        # Down path: in-conv, then per level num_res_blocks blocks and (except the last level) a downsampler.
        self.input_conv = nn.Conv2d(in_channels, C, 3, padding=1)
        self.down = nn.ModuleList()
        skips, ch, res = [C], C, resolution
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                self.down.append(UNetStage(ResBlock(ch, mult * C, emb_ch, drop, G), attn(mult * C, res)))
                ch = mult * C
                skips.append(ch)
            if level != levels - 1:
                if resblock_updown:
                    self.down.append(UNetStage(ResBlock(ch, ch, emb_ch, drop, G, down=True), None))
                else:
                    self.down.append(Downsample(ch, use_conv=True))
                skips.append(ch)
                res //= 2

        # Middle: ResBlock, attention, ResBlock at the lowest resolution.
        self.middle = nn.ModuleList([
            UNetStage(ResBlock(ch, ch, emb_ch, drop, G), SpatialSelfAttention(ch, heads_at(ch), G)),
            UNetStage(ResBlock(ch, ch, emb_ch, drop, G), None),
        ])

        # Up path (mirror): per level num_res_blocks + 1 blocks, each concatenating one skip; then an upsampler.
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mult))):
            for i in range(num_res_blocks + 1):
                skip_ch = skips.pop()
                layers = [UNetStage(ResBlock(ch + skip_ch, mult * C, emb_ch, drop, G), attn(mult * C, res))]
                ch = mult * C
                if level != 0 and i == num_res_blocks:
                    if resblock_updown:
                        layers.append(UNetStage(ResBlock(ch, ch, emb_ch, drop, G, up=True), None))
                    else:
                        layers.append(Upsample(ch, use_conv=True))
                    res *= 2
                self.up.append(nn.ModuleList(layers))

        # Output: GN -> SiLU -> conv3x3 (zero-initialised).
        self.out_norm = group_norm(ch, G)
        self.out_conv = zero_module(nn.Conv2d(ch, out_channels, 3, padding=1))

    @staticmethod
    def _run(layer: nn.Module, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        return layer(h, emb) if isinstance(layer, UNetStage) else layer(h)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.time_embed(timestep_embedding(t, self.model_channels))        # [B, 4C]
        if self.label_embed is not None and y is not None:
            emb = emb + self.label_embed(y)
        emb = F.silu(emb)                       # the SiLU that opens every block's emb layer, applied once
        h = self.input_conv(x)                                                  # [B, C, H, W]
        hs = [h]
        for layer in self.down:
            h = self._run(layer, h, emb)
            hs.append(h)
        for layer in self.middle:
            h = layer(h, emb)                                                   # [B, mult[-1]*C, H/2^L, W/2^L]
        for layers in self.up:
            h = torch.cat([h, hs.pop()], dim=1)
            for layer in layers:
                h = self._run(layer, h, emb)
        return self.out_conv(F.silu(self.out_norm(h)))                          # [B, out, H, W]
