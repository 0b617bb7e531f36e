"""The `arch:` mapping of each backbone family, typed and checked without torch (playbook 2.0-2.6*, A.1, A.5, A.6).

    family    arch class    network (engine/models)
    unet      UNetArch      P1 (Improved DDPM) U-Net, ImageNet-64 and CIFAR-10    playbook 2.0-2.3, A.6
    adm       ADMArch       ADM as P3 trains it on ImageNet-64                    A.5
    ddpmpp    DDPMppArch    P3 DDPM++ (VP), SongUNet with positional c_noise      2.4, A.5
    ncsnpp    NCSNppArch    P3 NCSN++ (VE), SongUNet with Fourier c_noise         2.4, A.5
    dit       DiTArch       DiT-S/B/XL, adaLN-Zero (P5 Table 7)                   2.6*, A.1
    dydit     DyDiTArch     DyDiT: dynamic width + dynamic tokens (P5)            2.6, 3.5, 4.4, A.2

`BackboneTier` validates its `arch` against `ARCHS[family]`, so `import difftui.engine.config.model` (the CLI, the TUI)
never loads torch. The networks in engine/models take plain keyword arguments, not these objects: the builders
(engine/run/builders.py) pass each field by name. Each class also says whether its network can be built at a
resolution (`fits`, the rule of difftui.engine.core_rules that the networks check too), the structural part of
"the tier fits the data set" (playbook 1.7).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import model_validator

from difftui.engine.config.schema import PresetError, config_model, rule, validate
from difftui.engine.core_rules import halving_error, patch_error

__all__ = ["ARCHS", "UNetArch", "ADMArch", "SongUNetArch", "DDPMppArch", "NCSNppArch", "DiTArch", "DyDiTArch",
           "parse_arch", "arch_of"]


#----------------------------------------------------------------------------
# U-Net (P1) and ADM (P3).

@config_model
class UNetArch:
    model_channels: int                             # C, the first-layer width (P1 tiers: 64/96/128/192, A.6)
    channel_mult: tuple[int, ...]                   # width of each resolution stage in units of C (2.0-2.1)
    num_res_blocks: int                             # residual blocks per down stage; up stages get one more (2.1)
    attention_resolutions: tuple[int, ...]          # in pixels, e.g. (16, 8) (2.2)
    num_heads: int = 4                              # P1: 4 heads, d_head = d_model / 4 (2.2)
    num_head_channels: int = 0                      # > 0: heads = channels / this (ADM: 64); overrides num_heads
    dropout: float = 0.0                            # P1 grid {0.1, 0.2, 0.3} (4.5)
    resblock_updown: bool = False                   # resample inside residual blocks (ADM) instead of conv resamplers
    num_groups: int = 32                            # GroupNorm groups (halved for narrow demo nets)
    time_embed_mult: int = 4                        # embedding width = time_embed_mult * C

    @model_validator(mode="after")
    def _rules(self):
        if self.model_channels < 1:
            raise rule("model_channels", f"expected >= 1, got {self.model_channels}")
        if not self.channel_mult or min(self.channel_mult) < 1:
            raise rule("channel_mult", f"expected positive multipliers, got {list(self.channel_mult)}")
        if self.num_res_blocks < 1:
            raise rule("num_res_blocks", f"expected >= 1, got {self.num_res_blocks}")
        if not 0.0 <= self.dropout < 1.0:
            raise rule("dropout", f"expected 0 <= dropout < 1, got {self.dropout}")
        if self.num_heads < 1 or self.num_head_channels < 0:
            raise rule("num_heads", "expected >= 1 (and num_head_channels >= 0)")
        if self.num_groups < 1 or self.time_embed_mult < 1:
            raise rule("num_groups", "expected num_groups >= 1 and time_embed_mult >= 1")
        return self

    def heads_at(self, channels: int) -> int:
        return channels // self.num_head_channels if self.num_head_channels > 0 else self.num_heads

    def fits(self, resolution: int) -> str | None:
        """Why the network cannot be built at `resolution` (None when it can)."""
        return halving_error(resolution, len(self.channel_mult))


@config_model
class ADMArch(UNetArch):
    """ADM as P3 trains it on ImageNet-64 (playbook A.5): 3 blocks, attention at 32/16/8, 64 channels per head."""
    model_channels: int = 192
    channel_mult: tuple[int, ...] = (1, 2, 3, 4)
    num_res_blocks: int = 3
    attention_resolutions: tuple[int, ...] = (32, 16, 8)
    num_head_channels: int = 64
    dropout: float = 0.1                            # P3 Table 7 ImageNet: dropout 10% (playbook A.4)
    resblock_updown: bool = True


#----------------------------------------------------------------------------
# The P3 SongUNet: DDPM++ and NCSN++.

@config_model
class SongUNetArch:
    model_channels: int = 128                       # P3 CIFAR-10 (playbook A.5)
    channel_mult: tuple[int, ...] = (2, 2, 2)
    channel_mult_emb: int = 4
    num_blocks: int = 4                             # residual blocks per resolution (A.5: 4)
    attn_resolutions: tuple[int, ...] = (16,)       # A.5: {16}
    num_heads: int = 1                              # A.5: 1 head
    dropout: float = 0.10
    embedding_type: Literal["positional", "fourier"] = "positional"
    channel_mult_noise: int = 1
    encoder_type: Literal["standard", "residual"] = "standard"
    resample_filter: tuple[int, ...] = (1, 1)
    adaptive_scale: bool = False                    # P3 adds the embedding; true: playbook 2.3 scale-shift
    augment_dim: int = 0                            # 9 when the recipe's augmentation passes augment labels (A.4)

    @model_validator(mode="after")
    def _rules(self):
        if self.num_blocks < 1 or not self.channel_mult:
            raise rule("num_blocks", "expected at least one block and one level (channel_mult)")
        if not 0.0 <= self.dropout < 1.0:
            raise rule("dropout", f"expected 0 <= dropout < 1, got {self.dropout}")
        if self.resample_filter not in ((1, 1), (1, 3, 3, 1)):
            raise rule("resample_filter", f"expected [1, 1] or [1, 3, 3, 1], got {list(self.resample_filter)}")
        return self

    def fits(self, resolution: int) -> str | None:
        return halving_error(resolution, len(self.channel_mult))


@config_model
class DDPMppArch(SongUNetArch):
    """DDPM++ (VP): positional c_noise embedding, standard encoder, box filter."""


@config_model
class NCSNppArch(SongUNetArch):
    """NCSN++ (VE): Fourier c_noise embedding with 2C channels, residual encoder, [1, 3, 3, 1] filter."""
    embedding_type: Literal["positional", "fourier"] = "fourier"
    channel_mult_noise: int = 2
    encoder_type: Literal["standard", "residual"] = "residual"
    resample_filter: tuple[int, ...] = (1, 3, 3, 1)


#----------------------------------------------------------------------------
# DiT and DyDiT (P5).

@config_model
class DiTArch:
    depth: int                                      # layers (P5 Table 7: 12 / 12 / 28)
    num_heads: int                                  # heads (6 / 12 / 16)
    hidden_size: int                                # width (384 / 768 / 1152)
    patch_size: int = 2                             # DiT-*/2 is the anchor; 4 and 8 allowed
    mlp_ratio: float = 4.0
    class_dropout_prob: float = 0.1                 # DiT's label dropout for classifier-free guidance
    dropout: float = 0.0                            # not used by DiT (kept so recipes' dropout override is harmless)
    frequency_embedding_size: int = 256

    @model_validator(mode="after")
    def _rules(self):
        if self.depth < 1 or self.patch_size < 1 or self.num_heads < 1:
            raise rule("depth", "expected depth, num_heads and patch_size >= 1")
        if self.hidden_size % self.num_heads:
            raise rule("hidden_size", f"{self.hidden_size} does not split into {self.num_heads} heads")
        if not 0.0 <= self.class_dropout_prob < 1.0:
            raise rule("class_dropout_prob", f"expected 0 <= p < 1, got {self.class_dropout_prob}")
        return self

    def fits(self, resolution: int) -> str | None:
        return patch_error(resolution, self.patch_size)


@config_model
class DyDiTArch(DiTArch):
    dynamic_width: bool = True                      # TDW: heads and MLP channel groups per timestep (2.6)
    dynamic_tokens: bool = True                     # SDT: per-token MLP bypass (2.6)
    router_tau: float = 5.0                         # Gumbel-sigmoid temperature (P5 code)
    router_threshold: float = 0.5                   # on/off threshold on the sigmoid (P5 code)
    width_router_bias: float = 15.0                 # initial logit: every head / channel group on (P5 code)
    token_router_bias: float = 35.0                 # initial logit: every token through the MLP (P5 code)
    warmup_steps: int = 0                           # A.2: complete-model loss kept this long (XL: 30000, S/B: 0)

    @model_validator(mode="after")
    def _dynamic_rules(self):
        if int(self.hidden_size * self.mlp_ratio) % self.num_heads:
            raise rule("mlp_ratio", "the MLP width must split into num_heads channel groups")
        if self.router_tau <= 0:
            raise rule("router_tau", f"expected > 0, got {self.router_tau}")
        if not 0.0 < self.router_threshold < 1.0:
            raise rule("router_threshold", f"expected 0 < threshold < 1, got {self.router_threshold}")
        if self.warmup_steps < 0:
            raise rule("warmup_steps", f"expected >= 0, got {self.warmup_steps}")
        return self


#----------------------------------------------------------------------------

ARCHS: dict[str, type] = {
    "unet": UNetArch,
    "adm": ADMArch,
    "ddpmpp": DDPMppArch,
    "ncsnpp": NCSNppArch,
    "dit": DiTArch,
    "dydit": DyDiTArch,
}


def arch_of(family: str, arch: dict[str, Any], where: str) -> Any:
    """The `arch:` mapping validated into its family's class; PresetError names `where` and the key."""
    if family not in ARCHS:
        raise PresetError(f"{where}: unknown family '{family}' (allowed: {', '.join(ARCHS)})")
    return validate(ARCHS[family], arch, where)


def parse_arch(tier: Any) -> Any:
    """A BackboneTier's arch as its family's typed object."""
    return arch_of(tier.family, tier.arch, f"backbone '{tier.name}': arch")
