"""DyDiT: the Dynamic Diffusion Transformer of P5 on a DiT-S/B/XL tier (playbook 2.6, 3.5, 4.4, A.1, A.2).

Two kinds of dynamic computation, both learned with a straight-through Gumbel-sigmoid router (playbook 4.4):

- Timestep-wise dynamic width (TDW). In each block a router reads the timestep embedding t_emb [B, D] and switches
  attention heads on or off ([B, heads]) and, with a second router, the MLP's hidden channels in `heads` groups of
  mlp_ratio*D/heads ([B, heads]). The masks depend only on t, so for inference they are computed once per
  timestep (`precompute_masks`) and the weights are sliced: switched-off heads and channel groups are not computed.
- Spatial-wise dynamic tokens (SDT). A small MLP router (D -> D/16 -> 1) on each token after attention decides
  whether the token goes through the MLP; a bypassed token keeps its residual only (attention still sees every
  token, playbook 2.6 (2)). At inference only the kept tokens are gathered and run through the MLP.

The FLOPs budget (playbook 3.5). Every forward records, per sample, F_dynamic/F_static from the active heads h,
channel groups g and kept tokens n of each block (multiply-adds, `DyDiTFlops`):

    F_dynamic = F_embed + sum_blocks [ F_adaLN + F_routers + h * F_head + n * g * F_token_group ]
    F_static  = F_embed + depth * [ F_adaLN + heads * F_head + N * heads * F_token_group ]   (the plain DiT)

`model.flops_ratio()` is the batch mean, differentiable through the straight-through masks, and
`flops_loss(ratio, lam) = (ratio - lam)^2` is the constraint term (the objective's: difftui.engine.diffusion.budget,
whose `FlopsBudgetObjective` is what the training loop runs). With every router on the ratio is slightly
above 1 (the routers' own multiply-adds are counted).

How the training loop uses it (playbook 3.5, 4.4, A.2):

    out = model(x_t, t, y)                                    # dynamic forward; records the ratio
    loss = diffusion_loss(out) + flops_loss(model.flops_ratio(), recipe.flops_lambda)
    if model.in_warmup(step):                                  # keep the complete model's loss for a while
        with model.complete():
            loss = loss + diffusion_loss(model(x_t, t, y))      # all heads/channels/tokens; ratio untouched
    log("flops_ratio", model.flops_ratio().item()); log("flops_target", recipe.flops_lambda)

For sampling, `model.eval(); model.precompute_masks(sampler_timesteps)`, then every `model(x, t, y)` under
`torch.no_grad()` whose batch shares one t runs the sliced form (fewer heads, channels and tokens really computed);
a batch with mixed t, or a forward with gradients, runs the masked form (same output, no saving).

The constructor takes DiT's keyword arguments (DiT-XL/2 defaults) plus the routers' settings with the P5 code's
values; `warmup_steps` comes from the tier (A.2: 30,000 for DiT-XL, 0 for S/B; the default here is 0). A static DiT checkpoint loads with
`load_static_state_dict` (P5 fine-tunes from the pre-trained DiT); the routers start fully on (bias +15 / +35, as
the P5 code does), so a fresh DyDiT computes exactly the static DiT.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .dit import DiT, DiTBlock, modulate

__all__ = ["DyDiT", "DyDiTBlock", "DyDiTFlops", "gumbel_sigmoid_ste", "LAMBDA_GRID_SB", "LAMBDA_GRID_XL"]

# playbook A.2 (P5 Table 6): the target FLOPs ratios lambda that P5 trains.
LAMBDA_GRID_SB: tuple[float, ...] = (0.9, 0.8, 0.7, 0.5, 0.4, 0.3)             # DiT-S / DiT-B
LAMBDA_GRID_XL: tuple[float, ...] = (0.7, 0.6, 0.5, 0.3)                       # DiT-XL


#----------------------------------------------------------------------------
# Routers (playbook 4.4: straight-through Gumbel-sigmoid).

def gumbel_sigmoid_ste(logits: torch.Tensor, tau: float, threshold: float, training: bool) -> torch.Tensor:
    """Hard 0/1 mask in the forward pass, gradient of sigmoid((logits + g1 - g2) / tau) in the backward pass.

    Training adds the difference of two Gumbel(0, 1) samples (a logistic sample); evaluation is deterministic.
    """
    if training:
        u = torch.rand_like(logits, dtype=torch.float32).clamp_(1e-10, 1 - 1e-10)
        logits = logits.float() + (torch.log(u) - torch.log1p(-u))             # g1 - g2 ~ Logistic(0, 1)
    soft = torch.sigmoid(logits.float() / tau)
    hard = (soft > threshold).to(soft.dtype)
    return hard - soft.detach() + soft


class WidthRouter(nn.Module):
    """t_emb [B, D] -> [B, groups] 0/1 mask (heads, or MLP channel groups)."""

    def __init__(self, dim: int, groups: int):
        super().__init__()
        self.router = nn.Linear(dim, groups)

    def forward(self, t_emb: torch.Tensor, tau: float, threshold: float) -> torch.Tensor:
        return gumbel_sigmoid_ste(self.router(t_emb), tau, threshold, self.training)


class TokenRouter(nn.Module):
    """x [B, N, D] -> [B, N, 1] 0/1 mask: Linear(D, D/16) -> ReLU -> Linear(D/16, 1)."""

    def __init__(self, dim: int):
        super().__init__()
        self.mlp_head = nn.Sequential(nn.Linear(dim, dim // 16), nn.ReLU(), nn.Linear(dim // 16, 1))

    def forward(self, x: torch.Tensor, tau: float, threshold: float) -> torch.Tensor:
        return gumbel_sigmoid_ste(self.mlp_head(x), tau, threshold, self.training)


#----------------------------------------------------------------------------
# Multiply-add accounting (analytic, per sample; checked against torch.utils.flop_counter in the tests).

@dataclass(frozen=True)
class DyDiTFlops:
    tokens: int                                     # N
    per_head: int                                   # qkv + scores + AV + proj for one head over N tokens
    per_token_group: int                            # fc1 + fc2 for one token and one channel group
    block_const: int                                # adaLN modulation
    router_const: int                               # the routers' own work, per block (0 for the static DiT)
    model_const: int                                # patch embed, timestep MLP, final layer
    heads: int
    depth: int

    @classmethod
    def of(cls, *, in_channels: int, out_channels: int, resolution: int, depth: int, hidden_size: int,
           num_heads: int, patch_size: int, mlp_ratio: float, frequency_embedding_size: int, dynamic_width: bool,
           dynamic_tokens: bool) -> "DyDiTFlops":
        D, H, p = hidden_size, num_heads, patch_size
        N, d = (resolution // p) ** 2, D // H
        G = int(D * mlp_ratio) // H
        f = frequency_embedding_size
        routers = (2 * D * H if dynamic_width else 0) + (N * (D * (D // 16) + D // 16) if dynamic_tokens else 0)
        return cls(
            tokens=N,
            per_head=N * D * 3 * d + 2 * N * N * d + N * d * D,
            per_token_group=2 * D * G,
            block_const=6 * D * D,
            router_const=routers,
            model_const=N * in_channels * p * p * D + f * D + D * D + 2 * D * D + N * D * p * p * out_channels,
            heads=H,
            depth=depth,
        )

    @property
    def static(self) -> int:
        """F_static: the plain DiT (equals measure_macs of the DiT tier)."""
        return self.model_const + self.depth * (self.block_const + self.heads * self.per_head
                                                + self.tokens * self.heads * self.per_token_group)

    def block(self, h: torch.Tensor, g: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        """Dynamic MACs of one block for per-sample counts h, g, n ([B] float; differentiable)."""
        return self.block_const + self.router_const + h * self.per_head + n * g * self.per_token_group


#----------------------------------------------------------------------------
# The dynamic block.

class DyDiTBlock(DiTBlock):
    """A DiT block (same parameters and names) plus the head, channel-group and token routers."""

    def __init__(self, hidden_size: int, num_heads: int, mlp_ratio: float = 4.0, *, dynamic_width: bool = True,
                 dynamic_tokens: bool = True, router_tau: float = 5.0, router_threshold: float = 0.5,
                 width_router_bias: float = 15.0, token_router_bias: float = 35.0):
        super().__init__(hidden_size, num_heads, mlp_ratio)
        D, H = hidden_size, num_heads
        self.router_tau, self.router_threshold = router_tau, router_threshold
        self.width_router_bias, self.token_router_bias = width_router_bias, token_router_bias
        self.heads, self.head_dim = H, D // H
        self.group = int(D * mlp_ratio) // H
        self.attn_router = WidthRouter(D, H) if dynamic_width else None
        self.mlp_router = WidthRouter(D, H) if dynamic_width else None
        self.token_router = TokenRouter(D) if dynamic_tokens else None

    def init_routers(self) -> None:
        for r in (self.attn_router, self.mlp_router):
            if r is not None:
                nn.init.constant_(r.router.bias, self.width_router_bias)
        if self.token_router is not None:
            nn.init.constant_(self.token_router.mlp_head[2].bias, self.token_router_bias)

    def width_masks(self, t_emb: torch.Tensor, force_on: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, heads] head mask and [B, heads] MLP channel-group mask (ones without dynamic width)."""
        if self.attn_router is None or force_on:
            ones = t_emb.new_ones(t_emb.shape[0], self.heads, dtype=torch.float32)
            return ones, ones
        return (self.attn_router(t_emb, self.router_tau, self.router_threshold),
                self.mlp_router(t_emb, self.router_tau, self.router_threshold))

    def token_mask(self, x: torch.Tensor, force_on: bool) -> torch.Tensor:
        if self.token_router is None or force_on:
            return x.new_ones(x.shape[0], x.shape[1], 1, dtype=torch.float32)
        return self.token_router(x, self.router_tau, self.router_threshold)

    def forward_masked(self, x: torch.Tensor, c: torch.Tensor, t_emb: torch.Tensor, force_on: bool = False):
        """Training form: every head/channel/token is computed and multiplied by its 0/1 mask.

        Returns x and the per-sample counts (h, g, n), each [B] float with straight-through gradients.
        """
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(c).chunk(6, dim=1)
        head_mask, group_mask = self.width_masks(t_emb, force_on)              # [B, H], [B, H]
        a = self.attn.heads(modulate(self.norm1(x), shift_msa, scale_msa))      # [B, N, H*d]
        a = a * head_mask.repeat_interleave(self.head_dim, dim=1)[:, None].to(a.dtype)
        x = x + gate_msa.unsqueeze(1) * self.attn.proj(a)
        tok = self.token_mask(x, force_on)                                      # [B, N, 1]
        m = self.mlp.fc1(modulate(self.norm2(x), shift_mlp, scale_mlp))         # [B, N, H*G]
        m = m * group_mask.repeat_interleave(self.group, dim=1)[:, None].to(m.dtype)
        m = self.mlp.fc2(self.mlp.act(m))                                       # [B, N, D]
        x = x + tok.to(m.dtype) * (gate_mlp.unsqueeze(1) * m)
        return x, (head_mask.sum(1), group_mask.sum(1), tok.sum((1, 2)))

    def forward_sliced(self, x: torch.Tensor, c: torch.Tensor, head_idx: torch.Tensor, group_idx: torch.Tensor,
                       force_on: bool = False):
        """Inference form for a batch that shares one timestep: only the active heads and channel groups
        (`head_idx`, `group_idx`: sorted long indices) and only the kept tokens are computed."""
        B, N, D = x.shape
        d, G = self.head_dim, self.group
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(c).chunk(6, dim=1)

        # Attention on the active heads: slice q/k/v rows and the projection's input columns.
        h_act = head_idx.numel()
        if h_act:
            cols = (head_idx[:, None] * d + torch.arange(d, device=x.device)).flatten()     # [h*d]
            rows = torch.cat([cols, cols + D, cols + 2 * D])                                  # q | k | v rows
            qkv = F.linear(modulate(self.norm1(x), shift_msa, scale_msa),
                           self.attn.qkv.weight[rows], self.attn.qkv.bias[rows])             # [B, N, 3*h*d]
            q, k, v = qkv.reshape(B, N, 3, h_act, d).permute(2, 0, 3, 1, 4).unbind(0)
            a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, N, h_act * d)
            a = F.linear(a, self.attn.proj.weight[:, cols], self.attn.proj.bias)              # [B, N, D]
        else:
            a = self.attn.proj.bias.to(x.dtype).expand(B, N, D)
        x = x + gate_msa.unsqueeze(1) * a

        # MLP on the kept tokens and the active channel groups.
        tok = self.token_mask(x, force_on)[..., 0] > 0.5                        # [B, N] bool
        keep = tok.reshape(-1).nonzero().squeeze(1)                             # [M] indices into B*N
        g_act = group_idx.numel()
        x_flat = x.reshape(B * N, D)
        if keep.numel():
            sample = keep // N
            hm = modulate(self.norm2(x), shift_mlp, scale_mlp).reshape(B * N, D)[keep]        # [M, D]
            if g_act:
                ch = (group_idx[:, None] * G + torch.arange(G, device=x.device)).flatten()    # [g*G]
                m = self.mlp.act(F.linear(hm, self.mlp.fc1.weight[ch], self.mlp.fc1.bias[ch]))
                m = F.linear(m, self.mlp.fc2.weight[:, ch], self.mlp.fc2.bias)                # [M, D]
            else:
                m = self.mlp.fc2.bias.to(hm.dtype).expand(keep.numel(), D)
            x_flat = x_flat.index_add(0, keep, (gate_mlp[sample] * m).to(x_flat.dtype))
        n = tok.sum(1).to(torch.float32)                                        # [B]
        h = torch.full((B,), float(h_act), device=x.device)
        g = torch.full((B,), float(g_act), device=x.device)
        return x_flat.reshape(B, N, D), (h, g, n)


#----------------------------------------------------------------------------
# The model.

class DyDiT(DiT):
    """DiT with dynamic width and dynamic tokens. forward(x, t, y) -> [B, out, H, W] like DiT, plus
    `flops_ratio()`, `complete()`, `in_warmup(step)`, `precompute_masks(timesteps)`, `routers_forced_on()`."""

    def __init__(self, *, in_channels: int, out_channels: int, resolution: int, num_classes: int = 0,
                 depth: int = 28, hidden_size: int = 1152, num_heads: int = 16, patch_size: int = 2,
                 mlp_ratio: float = 4.0, class_dropout_prob: float = 0.1, frequency_embedding_size: int = 256,
                 dynamic_width: bool = True,                   # TDW: heads and MLP channel groups per timestep (2.6)
                 dynamic_tokens: bool = True,                  # SDT: per-token MLP bypass (2.6)
                 router_tau: float = 5.0,                      # Gumbel-sigmoid temperature (P5 code)
                 router_threshold: float = 0.5,                # on/off threshold on the sigmoid (P5 code)
                 width_router_bias: float = 15.0,              # initial logit: every head / group on (P5 code)
                 token_router_bias: float = 35.0,              # initial logit: every token through the MLP (P5 code)
                 warmup_steps: int = 0):                       # A.2: complete-model loss kept (the XL tier: 30000)
        # Read by make_block() while DiT.__init__ builds the blocks, so it is set first (a plain dict, no module).
        self.router_settings = dict(dynamic_width=dynamic_width, dynamic_tokens=dynamic_tokens,
                                    router_tau=router_tau, router_threshold=router_threshold,
                                    width_router_bias=width_router_bias, token_router_bias=token_router_bias)
        super().__init__(in_channels=in_channels, out_channels=out_channels, resolution=resolution,
                         num_classes=num_classes, depth=depth, hidden_size=hidden_size, num_heads=num_heads,
                         patch_size=patch_size, mlp_ratio=mlp_ratio, class_dropout_prob=class_dropout_prob,
                         frequency_embedding_size=frequency_embedding_size)
        self.flops = DyDiTFlops.of(in_channels=in_channels, out_channels=out_channels, resolution=resolution,
                                   depth=depth, hidden_size=hidden_size, num_heads=num_heads, patch_size=patch_size,
                                   mlp_ratio=mlp_ratio, frequency_embedding_size=frequency_embedding_size,
                                   dynamic_width=dynamic_width, dynamic_tokens=dynamic_tokens)
        self.warmup_steps = warmup_steps
        self._complete = False
        self._force_on = False
        self._last_ratio: torch.Tensor | None = None
        self._mask_cache: dict[float, list[tuple[torch.Tensor, torch.Tensor]]] = {}

    def make_block(self) -> nn.Module:
        return DyDiTBlock(self.hidden_size, self.num_heads, self.mlp_ratio, **self.router_settings)

    def initialize_weights(self) -> None:
        super().initialize_weights()
        if self.pos_embed.is_meta:
            return
        # Routers start fully on (P5 code: width-router bias +15, token-router bias +35), so a fresh DyDiT, or one
        # loaded from a static checkpoint, computes the static DiT until the FLOPs term teaches it otherwise.
        for block in self.blocks:
            block.init_routers()

    # -- modes -------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def complete(self):
        """Run the complete model (every head, channel and token; no routers): L_complete (4.4), F_static."""
        prev, self._complete = self._complete, True
        try:
            yield self
        finally:
            self._complete = prev

    @contextlib.contextmanager
    def routers_forced_on(self):
        """Routers evaluated but every mask forced to 1 (the dynamic code path computing the static model)."""
        prev, self._force_on = self._force_on, True
        try:
            yield self
        finally:
            self._force_on = prev

    def in_warmup(self, step: int) -> bool:
        """True while the complete-model loss is kept (playbook 4.4; A.2 gives the step counts)."""
        return step < self.warmup_steps

    def flops_ratio(self) -> torch.Tensor:
        """mean(F_dynamic / F_static) of the last dynamic forward (differentiable in training)."""
        if self._last_ratio is None:
            raise RuntimeError("flops_ratio(): run a dynamic forward first")
        return self._last_ratio

    def load_static_state_dict(self, state_dict: dict) -> None:
        """Load a static DiT checkpoint; only router parameters may be missing."""
        missing, unexpected = self.load_state_dict(state_dict, strict=False)
        bad = [k for k in missing if "router" not in k] + list(unexpected)
        if bad:
            raise KeyError(f"static DiT state dict does not match: {bad[:5]}")

    # -- timestep masks for inference ---------------------------------------------------------------------

    @torch.no_grad()
    def _width_indices(self, t_emb1: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        out = []
        for block in self.blocks:
            hm, gm = block.width_masks(t_emb1, self._force_on)
            out.append((hm[0].nonzero().squeeze(1), gm[0].nonzero().squeeze(1)))
        return out

    @torch.no_grad()
    def precompute_masks(self, timesteps) -> None:
        """Compute the per-block head and channel-group indices of each timestep once (they depend only on t)."""
        was = self.training
        self.eval()
        device = self.pos_embed.device
        for tv in timesteps:
            t = torch.tensor([float(tv)], device=device)
            self._mask_cache[float(tv)] = self._width_indices(self.t_embedder(t))
        self.train(was)

    def clear_mask_cache(self) -> None:
        self._mask_cache.clear()

    # -- forward -----------------------------------------------------------------------------------------

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h, c, t_emb = self.embed(x, t, y)
        if self._complete:
            for block in self.blocks:
                h = DiTBlock.forward(block, h, c)
            return self.unpatchify(self.final_layer(h, c))

        f = self.flops
        total = torch.full((x.shape[0],), float(f.model_const), device=x.device)
        sliced = not self.training and not torch.is_grad_enabled() and bool((t == t[0]).all())
        if sliced:
            key = float(t[0])
            indices = self._mask_cache.get(key)
            if indices is None:
                indices = self._width_indices(t_emb[:1])
            for block, (hi, gi) in zip(self.blocks, indices, strict=False):
                h, (nh, ng, nt) = block.forward_sliced(h, c, hi, gi, self._force_on)
                total = total + f.block(nh, ng, nt)
        else:
            for block in self.blocks:
                h, (nh, ng, nt) = block.forward_masked(h, c, t_emb, self._force_on)
                total = total + f.block(nh, ng, nt)
        self._last_ratio = (total / f.static).mean()
        return self.unpatchify(self.final_layer(h, c))
