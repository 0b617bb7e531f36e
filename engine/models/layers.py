"""Shared building blocks of the difftui backbones.

In the order a network uses them: the noise-level embeddings (sinusoidal for the P1 U-Net and DiT, EDM's positional
and random-Fourier variants for DDPM++/NCSN++, playbook 2.4), group normalisation, the scale-shift condition of
playbook 2.3, and spatial self-attention through `torch.nn.functional.scaled_dot_product_attention` (playbook 2.2).

Everything here is plain PyTorch with no device or dtype baked in: it runs under bf16 autocast, accepts
channels_last inputs, and has no data-dependent Python control flow, so `torch.compile` traces it in one graph.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "timestep_embedding",
    "PositionalEmbedding",
    "FourierEmbedding",
    "group_norm",
    "zero_module",
    "scale_shift",
    "SpatialSelfAttention",
]


#----------------------------------------------------------------------------
# Noise-level embeddings.

def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0, endpoint: bool = False) -> torch.Tensor:
    """Sinusoidal embedding of a [B] float tensor -> [B, dim] as [cos | sin] (improved-diffusion / DiT convention).

    Frequencies are max_period^(-i/half), i = 0..half-1; `endpoint=True` uses i/(half-1) instead, as EDM's
    DDPM++ does (its PositionalEmbedding(endpoint=True)). Computed in float32 whatever the autocast dtype.
    """
    half = dim // 2
    denom = (half - 1) if endpoint else half
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / denom)
    args = t.float()[:, None] * freqs[None]                                     # [B, half]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)                 # [B, 2*half]
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class PositionalEmbedding(nn.Module):
    """DDPM++ noise embedding of c_noise (P3 Table 7 "positional"; playbook 2.4). No parameters."""

    def __init__(self, num_channels: int, max_positions: float = 10000.0, endpoint: bool = True):
        super().__init__()
        self.num_channels, self.max_positions, self.endpoint = num_channels, max_positions, endpoint

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return timestep_embedding(x, self.num_channels, self.max_positions, self.endpoint)


class FourierEmbedding(nn.Module):
    """NCSN++ random Fourier features of c_noise (P3 "Fourier"; playbook 2.4): fixed frequencies, a buffer."""

    def __init__(self, num_channels: int, scale: float = 16.0):
        super().__init__()
        self.register_buffer("freqs", torch.randn(num_channels // 2) * scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        args = x.float()[:, None] * (2 * math.pi * self.freqs.float())[None]     # [B, C/2]
        return torch.cat([torch.cos(args), torch.sin(args)], dim=1)             # [B, C]


#----------------------------------------------------------------------------
# Normalisation and the scale-shift condition.

def group_norm(channels: int, num_groups: int = 32, eps: float = 1e-5) -> nn.GroupNorm:
    """GroupNorm with 32 groups (improved-diffusion, EDM); halved until it divides `channels` (small demo nets)."""
    g = min(num_groups, channels)
    while channels % g:
        g //= 2
    return nn.GroupNorm(g, channels, eps=eps)


def zero_module(module: nn.Module) -> nn.Module:
    """Zero a layer's parameters: the last conv of every residual branch starts as the identity (improved-diffusion)."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


def scale_shift(h_normed: torch.Tensor, emb_out: torch.Tensor) -> torch.Tensor:
    """playbook 2.3: `GroupNorm(h) * (w + 1) + b`, with [w | b] = emb_out of shape [B, 2C] (per-channel)."""
    w, b = emb_out[:, :, None, None].chunk(2, dim=1)                            # [B, C, 1, 1] each
    return torch.addcmul(b, h_normed, w + 1)


#----------------------------------------------------------------------------
# Spatial self-attention (playbook 2.2: d_head = d_model / heads, Q/K/V keep d_model in total).

class SpatialSelfAttention(nn.Module):
    """Pre-norm multi-head self-attention over the H*W positions of a [B, C, H, W] map, with a residual.

    qkv and proj are 1x1 convolutions (parameter count of improved-diffusion's conv1d). The q/k/v split is
    channel-major (q of all heads, then k, then v), flattened so that a channels_last input needs no copy (an NCHW
    one is copied to that layout, so that q/k/v reach SDPA contiguous in the head dimension either way).
    The output projection is zero-initialised, so a fresh block is the identity.
    """

    def __init__(self, channels: int, num_heads: int, num_groups: int = 32, eps: float = 1e-5):
        super().__init__()
        if channels % num_heads:
            raise ValueError(f"attention: {channels} channels do not split into {num_heads} heads")
        self.num_heads = num_heads
        self.norm = group_norm(channels, num_groups, eps)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = zero_module(nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        qkv = self.qkv(self.norm(x))                                            # [B, 3C, H, W]
        # Channels last before the split, so that q/k/v are contiguous in d_head: SDPA's fused kernels (flash,
        # memory-efficient) need a unit last stride and fall back to the math kernel without it. A channels_last
        # input is already laid out so (no copy); an NCHW one (channels_last=false, the evaluator) is copied once.
        qkv = qkv.permute(0, 2, 3, 1).contiguous().reshape(B, H * W, 3, self.num_heads, C // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)                          # [B, heads, HW, d_head] each
        h = F.scaled_dot_product_attention(q, k, v)                             # [B, heads, HW, d_head]
        h = h.transpose(1, 2).reshape(B, H, W, C).permute(0, 3, 1, 2)           # [B, C, H, W]
        return x + self.proj(h)
