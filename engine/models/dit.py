"""DiT: the diffusion transformer with adaLN-Zero blocks, in the tiers of P5 Table 7 (playbook 2.6*, A.1).

    tier     layers  heads  width   anchor (32x32x4 input, patch 2, learned sigma, 1000 classes)
    DiT-S    12       6      384     32.9M params,   6.06 GMACs
    DiT-B    12      12      768    130.3M params,  23.01 GMACs
    DiT-XL   28      16     1152    674.8M params, 118.6 GMACs

Building blocks in order: patch embedding, timestep embedder, label embedder, attention, MLP, the adaLN-Zero block,
the final layer, the model. Module names follow DiT's models.py so that its checkpoints load by key (the fixed
sin-cos position table is a buffer here, so it is not counted as a parameter; the anchors above do not count it).

The constructor takes plain keyword arguments with DiT-XL/2's defaults, as DiT's models.py (`DiT(depth=28,
hidden_size=1152, patch_size=2, num_heads=16, ...)`); DiT-S is `DiT(depth=12, hidden_size=384, num_heads=6)`, DiT-B
`DiT(depth=12, hidden_size=768, num_heads=12)`. engine/run/builders.py passes a preset's `arch:` by name.

`t` is the DDPM timestep as a float, embedded sinusoidally (256 frequencies) and passed through an MLP. Labels `y`
are [B] long; with `class_dropout_prob > 0` the embedder has one extra "null" row for classifier-free guidance, a
training-time label is replaced by it with that probability (DiT's convention), and `y=None` means the null label.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from difftui.engine.core_rules import patch_error

from .layers import timestep_embedding

__all__ = ["DiT", "DiTBlock", "Attention", "Mlp", "modulate", "sincos_pos_embed_2d"]


#----------------------------------------------------------------------------
# Embedders.

class PatchEmbed(nn.Module):
    """[B, C, H, W] -> [B, N, D] with N = (H/p)(W/p): a p x p conv with stride p, flattened row-major."""

    def __init__(self, patch_size: int, in_channels: int, hidden_size: int):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_channels, hidden_size, patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)                          # [B, N, D]


class TimestepEmbedder(nn.Module):
    """t [B] -> sinusoid(256) -> Linear -> SiLU -> Linear -> [B, D]."""

    def __init__(self, hidden_size: int, frequency_embedding_size: int = 256):
        super().__init__()
        self.frequency_embedding_size = frequency_embedding_size
        self.mlp = nn.Sequential(nn.Linear(frequency_embedding_size, hidden_size), nn.SiLU(),
                                 nn.Linear(hidden_size, hidden_size))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(timestep_embedding(t, self.frequency_embedding_size))


class LabelEmbedder(nn.Module):
    """y [B] -> [B, D]; row `num_classes` is the null label when label dropout is on."""

    def __init__(self, num_classes: int, hidden_size: int, dropout_prob: float):
        super().__init__()
        self.num_classes, self.dropout_prob = num_classes, dropout_prob
        self.embedding_table = nn.Embedding(num_classes + (dropout_prob > 0), hidden_size)

    def forward(self, y: torch.Tensor, train: bool) -> torch.Tensor:
        if train and self.dropout_prob > 0:
            drop = torch.rand(y.shape[0], device=y.device) < self.dropout_prob
            y = torch.where(drop, torch.full_like(y, self.num_classes), y)
        return self.embedding_table(y)


def sincos_pos_embed_2d(dim: int, grid: int) -> torch.Tensor:
    """MAE/DiT fixed 2-D sin-cos table, [grid*grid, dim]: first half encodes the column (w), second the row (h)."""
    def one_d(d: int, pos: torch.Tensor) -> torch.Tensor:
        omega = 1.0 / 10000 ** (torch.arange(d // 2, dtype=torch.float64) / (d / 2))
        out = pos.reshape(-1, 1).double() * omega[None]                         # [M, d/2]
        return torch.cat([out.sin(), out.cos()], dim=1)                         # [M, d]
    coords = torch.arange(grid, dtype=torch.float64)
    gw, gh = torch.meshgrid(coords, coords, indexing="xy")                      # w goes first, as in DiT
    return torch.cat([one_d(dim // 2, gw), one_d(dim // 2, gh)], dim=1).float()


#----------------------------------------------------------------------------
# Transformer block with adaLN-Zero.

def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)                   # [B, N, D]


class Attention(nn.Module):
    """Multi-head self-attention over tokens; qkv split as (3, heads, d_head) like timm."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def heads(self, x: torch.Tensor) -> torch.Tensor:
        """[B, N, D] -> attention output per head, [B, N, heads * d_head] (before the output projection)."""
        B, N, _ = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, -1, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)                                                 # [B, heads, N, d_head]
        h = F.scaled_dot_product_attention(q, k, v)
        return h.transpose(1, 2).reshape(B, N, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.heads(x))


class Mlp(nn.Module):
    """Linear -> GELU(tanh) -> Linear, hidden = mlp_ratio * D."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class DiTBlock(nn.Module):
    """x + gate_msa * Attn(modulate(LN(x))), then x + gate_mlp * MLP(modulate(LN(x))); 6 modulations from c."""

    def __init__(self, hidden_size: int, num_heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(hidden_size, num_heads)
        self.norm2 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(hidden_size, int(hidden_size * mlp_ratio))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 6 * hidden_size))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + gate_msa.unsqueeze(1) * self.attn(modulate(self.norm1(x), shift_msa, scale_msa))
        x = x + gate_mlp.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))
        return x


class FinalLayer(nn.Module):
    """modulate(LN(x)) -> Linear(D, p*p*out)."""

    def __init__(self, hidden_size: int, patch_size: int, out_channels: int):
        super().__init__()
        self.norm_final = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(hidden_size, patch_size * patch_size * out_channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 2 * hidden_size))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(self.norm_final(x), shift, scale))         # [B, N, p*p*out]


#----------------------------------------------------------------------------
# The model.

class DiT(nn.Module):
    """forward(x [B,in,H,W], t [B] float, y [B] long | None) -> [B,out,H,W]."""

    def __init__(self, *, in_channels: int, out_channels: int, resolution: int, num_classes: int = 0,
                 depth: int = 28, hidden_size: int = 1152, num_heads: int = 16,    # DiT-XL (P5 Table 7; A.1)
                 patch_size: int = 2,                                              # DiT-*/2, the anchor
                 mlp_ratio: float = 4.0,
                 class_dropout_prob: float = 0.1,                                  # label dropout (CFG)
                 frequency_embedding_size: int = 256):
        super().__init__()
        problem = patch_error(resolution, patch_size)
        if problem is not None:
            raise ValueError(problem)
        self.resolution, self.num_classes = resolution, num_classes
        self.in_channels, self.out_channels = in_channels, out_channels
        self.depth, self.hidden_size, self.num_heads, self.mlp_ratio = depth, hidden_size, num_heads, mlp_ratio
        self.patch_size, self.class_dropout_prob = patch_size, class_dropout_prob
        D, p = hidden_size, patch_size
        self.grid = resolution // p
        self.x_embedder = PatchEmbed(p, in_channels, D)
        self.t_embedder = TimestepEmbedder(D, frequency_embedding_size)
        self.y_embedder = LabelEmbedder(num_classes, D, class_dropout_prob) if num_classes > 0 else None
        self.register_buffer("pos_embed", sincos_pos_embed_2d(D, self.grid)[None], persistent=True)  # [1, N, D]
        self.blocks = nn.ModuleList([self.make_block() for _ in range(depth)])
        self.final_layer = FinalLayer(D, p, out_channels)
        self.initialize_weights()

    def make_block(self) -> nn.Module:
        return DiTBlock(self.hidden_size, self.num_heads, self.mlp_ratio)

    def initialize_weights(self) -> None:
        if self.pos_embed.is_meta:                                              # meta device: nothing to fill
            return
        # Transformer linears: Xavier-uniform, zero bias (DiT).
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        # Patch embedding like a Linear over the flattened patch.
        w = self.x_embedder.proj.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.x_embedder.proj.bias)
        if self.y_embedder is not None:
            nn.init.normal_(self.y_embedder.embedding_table.weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[2].weight, std=0.02)
        # adaLN-Zero: the last modulation layer of every block is zeroed on purpose, so gates start at 0 and each
        # block starts as the identity; the final layer's modulation and linear are zeroed too (output starts at 0).
        for block in self.blocks:
            nn.init.zeros_(block.adaLN_modulation[-1].weight)
            nn.init.zeros_(block.adaLN_modulation[-1].bias)
        nn.init.zeros_(self.final_layer.adaLN_modulation[-1].weight)
        nn.init.zeros_(self.final_layer.adaLN_modulation[-1].bias)
        nn.init.zeros_(self.final_layer.linear.weight)
        nn.init.zeros_(self.final_layer.linear.bias)

    def unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        """[B, N, p*p*c] -> [B, c, H, W]."""
        B, p, g, c = x.shape[0], self.patch_size, self.grid, self.out_channels
        x = x.reshape(B, g, g, p, p, c)
        return torch.einsum("nhwpqc->nchpwq", x).reshape(B, c, g * p, g * p)

    def embed(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None):
        """Tokens [B, N, D], the condition c = t_emb + y_emb [B, D] and t_emb [B, D] (DyDiT routes on t_emb)."""
        tokens = self.x_embedder(x) + self.pos_embed                           # [B, N, D]
        t_emb = self.t_embedder(t)                                              # [B, D]
        c = t_emb
        if self.y_embedder is not None:
            if y is None:
                if self.class_dropout_prob <= 0:
                    raise ValueError("y=None needs a null label (class_dropout_prob > 0)")
                y = torch.full((x.shape[0],), self.num_classes, dtype=torch.long, device=x.device)
            c = c + self.y_embedder(y, self.training)
        return tokens, c, t_emb

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h, c, _ = self.embed(x, t, y)
        for block in self.blocks:
            h = block(h, c)                                                     # [B, N, D]
        return self.unpatchify(self.final_layer(h, c))                          # [B, out, H, W]
