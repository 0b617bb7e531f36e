"""The P3 (EDM) CIFAR-10 networks: DDPM++ (VP) and NCSN++ (VE), both a "SongUNet" (playbook 2.4, A.5).

    network   c_noise embedding            encoder    resample filter  noise channels  blocks  attention
    DDPM++    positional (endpoint=True)   standard   [1, 1]           C               4       16x16, 1 head
    NCSN++    random Fourier (scale 16)    residual   [1, 3, 3, 1]     2C              4       16x16, 1 head

with C = 128, channel_mult (2, 2, 2) (32 -> 16 -> 8), embedding width 4C, dropout 10% (13% in the P3 CIFAR-10
recipe, playbook A.4). Anchors: 55.7M (DDPM++) and 56.4M (NCSN++) parameters, P3 Table 7.

This follows P3's own network (EDM networks.py) block for block, including the two things where it differs from
the P1 U-Net: residual and attention branches are summed and scaled by sqrt(1/2), and the noise embedding is
*added* before the second GroupNorm (`adaptive_scale=False`) rather than the scale-shift of playbook 2.3; the
parameter anchors are those of this form. `adaptive_scale: true` switches to the scale-shift form (off-anchor).

The constructor takes plain keyword arguments with the DDPM++ CIFAR-10 defaults (as EDM's `SongUNet`); NCSN++ is
`SongUNet(embedding_type="fourier", channel_mult_noise=2, encoder_type="residual", resample_filter=(1, 3, 3, 1))`.
The presets' typed `arch:` mapping (difftui.engine.config.archs) is turned into them by engine/run/builders.py.

The network is raw: `t` is c_noise = log(sigma)/4 from the EDM preconditioning in the diffusion core.
Initialisation follows P3: Xavier-uniform, the last conv of each branch scaled by 1e-5, qkv by sqrt(0.2).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from difftui.engine.core_rules import halving_error

from .layers import FourierEmbedding, PositionalEmbedding, SpatialSelfAttention, group_norm

__all__ = ["SongUNet"]


#----------------------------------------------------------------------------
# Resampling with an FIR filter (box [1,1] = average pool / nearest; [1,3,3,1] = the blur of StyleGAN/NCSN++).

class Resample(nn.Module):
    """Depthwise 2x up- or down-sampling of [B, C, H, W] with the separable filter f (f outer f / sum(f)^2)."""

    def __init__(self, channels: int, filt: tuple[int, ...], mode: Literal["up", "down"]):
        super().__init__()
        self.channels, self.mode, self.box = channels, mode, tuple(filt) == (1, 1)
        f = torch.as_tensor(filt, dtype=torch.float32)
        f = torch.outer(f, f)[None, None] / f.sum().square()                   # [1, 1, k, k]
        self.register_buffer("filter", f.repeat(channels, 1, 1, 1), persistent=False)
        self.pad = (len(filt) - 1) // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.box:                                                            # identical, and cheaper
            return F.avg_pool2d(x, 2) if self.mode == "down" else F.interpolate(x, scale_factor=2.0, mode="nearest")
        f = self.filter.to(x.dtype)
        if self.mode == "down":
            return F.conv2d(x, f, stride=2, padding=self.pad, groups=self.channels)
        return F.conv_transpose2d(x, f * 4, stride=2, padding=self.pad, groups=self.channels)


class FusedDownConv(nn.Module):
    """NCSN++ residual-encoder path: 3x3 conv with extra padding, then the filter with stride 2 (EDM fused_resample)."""

    def __init__(self, in_ch: int, out_ch: int, filt: tuple[int, ...]):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 3, padding=1 + (len(filt) - 1) // 2)
        self.down = Resample(out_ch, filt, "down")
        self.down.pad = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.conv(x))


#----------------------------------------------------------------------------
# Residual block (EDM UNetBlock as configured by SongUNet).

class SongBlock(nn.Module):
    """GN -> SiLU -> [resample] conv3x3 -> (+emb | GN*(w+1)+b) -> SiLU -> dropout -> conv3x3, + skip, * sqrt(1/2);
    then optional 1-head self-attention, again scaled by sqrt(1/2)."""

    def __init__(self, in_ch: int, out_ch: int, emb_ch: int, *, dropout: float, filt: tuple[int, ...],
                 adaptive_scale: bool, up: bool = False, down: bool = False, attention: bool = False,
                 num_heads: int = 1):
        super().__init__()
        self.adaptive_scale = adaptive_scale
        self.skip_scale = math.sqrt(0.5)
        self.norm0 = group_norm(in_ch, 32, eps=1e-6)
        self.resample = Resample(in_ch, filt, "up" if up else "down") if (up or down) else None
        self.conv0 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.affine = nn.Linear(emb_ch, out_ch * (2 if adaptive_scale else 1))
        self.norm1 = group_norm(out_ch, 32, eps=1e-6)
        self.dropout = nn.Dropout(dropout)
        self.conv1 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        # Skip: resample then 1x1 projection whenever shape changes (SongUNet's resample_proj=True).
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if (in_ch != out_ch or up or down) else None
        self.attn = SpatialSelfAttention(out_ch, num_heads, 32, eps=1e-6) if attention else None

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        orig = x
        h = F.silu(self.norm0(x))
        if self.resample is not None:
            h, orig = self.resample(h), self.resample(orig)
        h = self.conv0(h)                                                       # [B, out, H', W']
        params = self.affine(emb)[:, :, None, None]
        if self.adaptive_scale:
            scale, shift = params.chunk(2, dim=1)
            h = F.silu(torch.addcmul(shift, self.norm1(h), scale + 1))
        else:
            h = F.silu(self.norm1(h + params))                                  # P3 DDPM++/NCSN++ form
        h = self.conv1(self.dropout(h))
        x = (h + (self.skip(orig) if self.skip is not None else orig)) * self.skip_scale
        if self.attn is not None:
            x = self.attn(x) * self.skip_scale                                  # (x + proj(attn)) * sqrt(1/2)
        return x


#----------------------------------------------------------------------------
# The network.

class SongUNet(nn.Module):
    """DDPM++ / NCSN++. forward(x [B,in,H,W], t=c_noise [B], y [B] long | None, augment_labels=None) -> [B,out,H,W]."""

    def __init__(self, *, in_channels: int, out_channels: int, resolution: int, num_classes: int = 0,
                 augment_dim: int = 0,                                         # 9 with P3's augment labels (A.4)
                 model_channels: int = 128,                                    # P3 CIFAR-10 (playbook A.5)
                 channel_mult: tuple[int, ...] = (2, 2, 2),
                 channel_mult_emb: int = 4,
                 num_blocks: int = 4,                                          # blocks per resolution (A.5: 4)
                 attn_resolutions: tuple[int, ...] = (16,),                    # A.5: {16}
                 num_heads: int = 1,                                           # A.5: 1 head
                 dropout: float = 0.10,                                        # 13% in the CIFAR-10 recipe (A.4)
                 embedding_type: Literal["positional", "fourier"] = "positional",   # DDPM++; NCSN++: fourier
                 channel_mult_noise: int = 1,                                  # NCSN++: 2
                 encoder_type: Literal["standard", "residual"] = "standard",   # NCSN++: residual
                 resample_filter: tuple[int, ...] = (1, 1),                    # NCSN++: (1, 3, 3, 1)
                 adaptive_scale: bool = False):                                # P3 adds the embedding (2.3: True)
        super().__init__()
        problem = halving_error(resolution, len(channel_mult))
        if problem is not None:
            raise ValueError(problem)
        self.resolution, self.num_classes, self.augment_dim = resolution, num_classes, augment_dim
        self.in_channels, self.out_channels = in_channels, out_channels
        C, filt = model_channels, tuple(resample_filter)
        emb_ch, noise_ch = C * channel_mult_emb, C * channel_mult_noise
        blk = dict(emb_ch=emb_ch, dropout=dropout, filt=filt, adaptive_scale=adaptive_scale, num_heads=num_heads)

        # Mapping: c_noise -> embedding (+ label, + augment) -> Linear -> SiLU -> Linear -> SiLU.
        self.map_noise = (PositionalEmbedding(noise_ch, endpoint=True) if embedding_type == "positional"
                          else FourierEmbedding(noise_ch))
        self.map_label = nn.Linear(num_classes, noise_ch) if num_classes > 0 else None
        self.map_augment = nn.Linear(augment_dim, noise_ch, bias=False) if augment_dim > 0 else None
        self.map_layer0 = nn.Linear(noise_ch, emb_ch)
        self.map_layer1 = nn.Linear(emb_ch, emb_ch)

        # Encoder. Each entry: (kind, module); skips are pushed after every non-aux entry.
        self.enc = nn.ModuleDict()
        cout, caux = in_channels, in_channels
        for level, mult in enumerate(channel_mult):
            res = resolution >> level
            if level == 0:
                self.enc[f"{res}x{res}_conv"] = nn.Conv2d(cout, C, 3, padding=1)
                cout = C
            else:
                self.enc[f"{res}x{res}_down"] = SongBlock(cout, cout, down=True, **blk)
                if encoder_type == "residual":
                    self.enc[f"{res}x{res}_aux_residual"] = FusedDownConv(caux, cout, filt)
                    caux = cout
            for i in range(num_blocks):
                cin, cout = cout, C * mult
                self.enc[f"{res}x{res}_block{i}"] = SongBlock(cin, cout, attention=res in attn_resolutions, **blk)
        skips = [m.conv0.out_channels if isinstance(m, SongBlock) else m.out_channels
                 for name, m in self.enc.items() if "aux" not in name]

        # Decoder: (in0 with attention, in1) at the lowest resolution, an up block elsewhere, then blocks + 1.
        self.dec = nn.ModuleDict()
        self.dec_concat: dict[str, bool] = {}
        for level, mult in reversed(list(enumerate(channel_mult))):
            res = resolution >> level
            if level == len(channel_mult) - 1:
                self.dec[f"{res}x{res}_in0"] = SongBlock(cout, cout, attention=True, **blk)
                self.dec[f"{res}x{res}_in1"] = SongBlock(cout, cout, **blk)
            else:
                self.dec[f"{res}x{res}_up"] = SongBlock(cout, cout, up=True, **blk)
            for i in range(num_blocks + 1):
                cin, cout = cout + skips.pop(), C * mult
                name = f"{res}x{res}_block{i}"
                self.dec[name] = SongBlock(cin, cout, attention=(i == num_blocks and res in attn_resolutions),
                                           **blk)
                self.dec_concat[name] = True
        self.out_norm = group_norm(cout, 32, eps=1e-6)
        self.out_conv = nn.Conv2d(cout, out_channels, 3, padding=1)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        if self.map_layer0.weight.is_meta:
            return
        # P3: Xavier-uniform everywhere, zero bias.
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        # P3 "init_zero": the last conv of every residual branch, the attention projection and the output conv
        # start at 1e-5 of Xavier (near the identity, not exactly zero); qkv at sqrt(0.2) of Xavier.
        with torch.no_grad():
            for m in self.modules():
                if isinstance(m, SongBlock):
                    m.conv1.weight.mul_(1e-5)
                    if m.attn is not None:
                        m.attn.qkv.weight.mul_(math.sqrt(0.2))
                        nn.init.xavier_uniform_(m.attn.proj.weight)
                        m.attn.proj.weight.mul_(1e-5)
            self.out_conv.weight.mul_(1e-5)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None,
                augment_labels: torch.Tensor | None = None) -> torch.Tensor:
        # Mapping.
        emb = self.map_noise(t)                                                 # [B, noise_ch] as [cos | sin]
        emb = emb.reshape(emb.shape[0], 2, -1).flip(1).reshape(emb.shape)       # -> [sin | cos], as P3
        if self.map_label is not None and y is not None:
            onehot = F.one_hot(y, self.num_classes).to(emb.dtype)
            emb = emb + self.map_label(onehot * math.sqrt(self.num_classes))
        if self.map_augment is not None:
            # P3's non-leaky augmentation (playbook 1.3): the augment parameters join the noise embedding. No labels
            # means no augmentation, a = 0 (sampling, evaluation); the zero vector adds exactly nothing (no bias),
            # and the layer stays in the graph, so DDP sees every parameter used at every step.
            if augment_labels is None:
                augment_labels = emb.new_zeros(emb.shape[0], self.augment_dim)
            elif augment_labels.shape != (emb.shape[0], self.augment_dim):
                raise ValueError(f"augment_labels: expected [{emb.shape[0]}, {self.augment_dim}], got "
                                 f"{list(augment_labels.shape)}")
            emb = emb + self.map_augment(augment_labels.to(emb.dtype))
        emb = F.silu(self.map_layer1(F.silu(self.map_layer0(emb))))             # [B, emb_ch]

        # Encoder.
        skips = []
        aux = x
        for name, block in self.enc.items():
            if "aux_residual" in name:
                x = aux = (x + block(aux)) * math.sqrt(0.5)
                skips[-1] = x
            else:
                x = block(x, emb) if isinstance(block, SongBlock) else block(x)
                skips.append(x)

        # Decoder.
        for name, block in self.dec.items():
            if name in self.dec_concat:
                x = torch.cat([x, skips.pop()], dim=1)
            x = block(x, emb)
        return self.out_conv(F.silu(self.out_norm(x)))                          # [B, out, H, W]
