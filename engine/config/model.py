"""Typed run configuration: every field and every rule of a run's config, in one model (issue 11 item 10).

A run is four presets (dataset profile, backbone tier, sampler panel, training recipe) plus the user's overrides.
Each class below is a frozen pydantic dataclass (`difftui.engine.config.schema.config_model`: unknown keys refused, strict
types, numbers such as 1e-4 / 2e5 / 1_000 accepted wherever a number is expected). Rules live with the class they
constrain: ranges on the field, cross-field rules in the class's `_rules` validator, rules across presets in
`RunConfig._rules`, and the rules only a new run must pass (the tier fits the data, the recipe fits the tier family,
paths resolved against the user's directory) in `RunConfig._new_run_rules`. The CLI, the TUI's launch checks, the
catalog and the engine all ask this model; a fault is one line naming the file (or source) and the key
(`PresetError`). Adding a field is one line here (plus its rule). Inside the engine the config is trusted.

This module imports neither torch nor the TUI. The rules it shares with the diffusion core and the networks
(`objective_error`, `sampler_error`, `output_channels`, `sampler_nfe`) live in difftui.engine.core_rules, which both
ask (and are re-exported here); the builders (engine/run/builders.py) turn this model into the core's plain arguments.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Annotated, Any, Literal, Mapping

from annotated_types import Ge, Gt, Interval
from pydantic import ValidationInfo, model_validator

from difftui.engine.config import schema
from difftui.engine.config.archs import ARCHS, arch_of
from difftui.engine.config.ladders import tier_violation
from difftui.engine.config.schema import NEW_RUN, Path, PresetError, config_model, first_fault, rule, to_dict
from difftui.engine.core_rules import (
    describe_sampler,
    objective_error,
    output_channels,
    sampler_error,
    sampler_nfe,
)

__all__ = [
    "PresetError",
    "Anchor",
    "DatasetProfile",
    "BackboneTier",
    "SamplerSpec",
    "SamplerPanel",
    "Recipe",
    "RunConfig",
    "GridScope",
    "SweepGrid",
    "from_mapping",
    "to_dict",
    "apply_overrides",
    "parse_override",
    "run_config_from_dict",
    "objective_error",
    "sampler_error",
    "output_channels",
    "sampler_nfe",
    "DEVICE_SPEC",
    "device_spec_error",
]

Positive = Annotated[int, Ge(1)]
P3_AUGMENT_DIM = 9                                  # P3's augment labels (x/y-flip, scale, rotate 2, aniso 2, translate 2)
Fraction = Annotated[float, Interval(ge=0.0, lt=1.0)]


#----------------------------------------------------------------------------
# Dataset profiles (playbook 1.0-1.8).

@config_model
class DatasetProfile:
    name: str
    description: str
    source: Literal["digits", "cifar10", "image_folder", "imagenet64", "celeba"]
    resolution: int                                 # a power of two >= 8
    channels: Literal[1, 3, 4]
    anchor: str                                     # the paper task it stands for (playbook 1.6-1.7), or "none"
    root: Path | None = None                        # local data directory (cifar10: torchvision root; folder: images)
    download: bool = False                          # cifar10: try torchvision's download when the files are missing
    x_flip: bool = False                            # playbook 1.0 / A.4: no x-flips unless asked
    crop: Literal["center", "none", "celeba"] = "center"    # playbook 1.1: center crop then area downsample
    num_classes: Annotated[int, Ge(0)] = 0
    split: Literal["train", "test"] = "train"
    # -- the data side (issue 10; engine/data) ----------------------------------------------------------------------
    # Playbook 1.0 (4) / 1.5 (1): where the data came from, its licence and its risks; the user fills these in and
    # the data card (runs/<id>/datacard.md) prints them.
    data_source: str = ""
    licence: str = ""
    risks: str = ""
    files_hint: str = ""                            # what belongs in `root` (the one-line "put these files there")
    test_root: Path | None = None                    # image folders: the data set's own test/val folder or zip
    labels: Literal["none", "subfolders"] = "none"  # image folders: a class per top-level sub-folder (ImageFolder)
    heldout: float = 0.0                            # digits / image folders: fraction held out as split "test"
    split_seed: int = 0                             # seeds the held-out subset (recorded with every run)
    cache_dir: Path | None = None                    # preprocessed-data cache (default ~/.cache/difftui/data)
    latents: bool = False                           # train on VAE latents of the images (the DiT anchors, A.1)
    vae: Path | None = None                          # local AutoencoderKL folder (default $DIFFTUI_VAE)
    latent_scale: float = 0.18215                   # the SD VAE's scale factor (as DiT)
    md5: dict[str, str] = dataclasses.field(default_factory=dict)   # cifar10: md5 per file of a copy you vouch for
                                                    # (empty: the published CIFAR-10 checksums, checked at each load)

    @property
    def model_shape(self) -> tuple[int, int, int]:
        """(C, H, W) the network sees: the pixels, or the SD VAE's 4 x H/8 x W/8 latents."""
        if self.latents:
            return (4, self.resolution // 8, self.resolution // 8)
        return (self.channels, self.resolution, self.resolution)

    @model_validator(mode="after")
    def _rules(self):
        if self.resolution < 8 or self.resolution & (self.resolution - 1):
            raise rule("resolution", f"expected a power of two >= 8, got {self.resolution}")
        if not 0.0 <= self.heldout < 1.0:
            raise rule("heldout", f"expected a fraction 0 <= heldout < 1, got {self.heldout}")
        if self.latents and (self.channels != 3 or self.resolution < 64):
            raise rule("latents", f"the SD VAE encodes RGB images of 64 px or more (got {self.channels} channels "
                                  f"at {self.resolution} px)")
        if self.latent_scale <= 0:
            raise rule("latent_scale", f"expected > 0, got {self.latent_scale}")
        return self


#----------------------------------------------------------------------------
# Backbone tiers (playbook 1.7-1.8, 2.0-2.6, A.1, A.5, A.6).

@config_model
class Anchor:
    """What the paper reports for this tier; difftui measures its own numbers beside these."""
    paper: str                                      # e.g. "P1 Table ... / playbook A.6"
    params_m: float | None = None                   # millions of parameters
    gmacs: float | None = None                      # giga multiply-adds per forward at `resolution`
    img_per_s_ref: float | None = None              # reference training throughput, when the issue gives one
    note: str = ""


@config_model
class BackboneTier:
    name: str
    description: str
    family: str                                     # a key of difftui.engine.config.archs.ARCHS ("unet", "dit", ...)
    resolution: int                                 # the resolution the tier is anchored to
    arch: dict[str, Any]                            # checked against ARCHS[family] (difftui.engine.config.archs)
    anchor: Anchor | None = None                    # None: not a paper anchor (e.g. the CPU demo tier)
    tier_group: str = ""                            # tiers of one group form the allowed ladder (playbook 1.7)
    lr_rule: Literal["fixed", "p1_sqrt"] = "fixed"  # p1_sqrt: lr = 1e-4 / sqrt(C/128) (playbook A.6)
    off_tier: bool = False                          # set by the user's explicit --off-tier
    channels: tuple[int, ...] = ()                  # data channels the anchor is defined on (playbook 1.7); () any

    @model_validator(mode="after")
    def _rules(self):
        if self.family not in ARCHS:
            raise rule("family", f"unknown family {self.family!r} (known: {', '.join(sorted(ARCHS))})")
        found = first_fault(ARCHS[self.family], self.arch)            # the family's arch class (archs.py)
        if found is not None:
            raise rule(f"arch.{found[0]}" if found[0] else "arch", found[1])
        arch = arch_of(self.family, self.arch, f"backbone {self.name!r}: arch")
        # Store what the schema read (e.g. "1e-1" from a --set becomes 0.1), keeping only the keys given.
        object.__setattr__(self, "arch", {k: to_dict(getattr(arch, k)) for k in self.arch})
        if self.lr_rule == "p1_sqrt" and "model_channels" not in self.arch:
            raise rule("lr_rule", "p1_sqrt needs arch.model_channels (lr = 1e-4 / sqrt(C/128), playbook A.6)")
        return self

    def learning_rate(self, base_lr: float) -> float:
        if self.lr_rule == "p1_sqrt":
            # playbook A.6: baseline C=128 at lr=1e-4; lr = 1e-4 / sqrt(C/128).
            return 1e-4 / math.sqrt(self.arch["model_channels"] / 128)
        return base_lr


#----------------------------------------------------------------------------
# Samplers and panels (playbook 0.3, 5.0-5.4, 5.7-5.8, A.3, A.7).

@config_model
class SamplerSpec:
    kind: Literal["ddim", "ddpm", "edm_euler", "edm_heun", "edm_stochastic", "covariance"]
    steps: Positive = 50                            # N (DDIM sub-sequence length, EDM steps, few-step count)
    eta: Annotated[float, Interval(ge=0.0, le=1.0)] = 0.0   # DDIM eta; 0 = deterministic (playbook 0.3)
    tau: Literal["linear", "quadratic"] = "linear"  # DDIM sub-sequence rule (playbook A.7)
    variance: Literal["fixed_small", "fixed_large", "learned", "ocm"] = "fixed_small"
    sigma_min: Annotated[float, Gt(0.0)] = 0.002    # EDM (playbook 5.3)
    sigma_max: Annotated[float, Gt(0.0)] = 80.0
    rho: Annotated[float, Gt(0.0)] = 7.0
    S_churn: Annotated[float, Ge(0.0)] = 0.0        # EDM stochastic (playbook 5.4, A.3)
    S_tmin: Annotated[float, Ge(0.0)] = 0.0
    S_tmax: Annotated[float, Ge(0.0)] = float("inf")
    S_noise: Annotated[float, Gt(0.0)] = 1.0
    label: str = ""

    @model_validator(mode="after")
    def _rules(self):
        if self.sigma_min >= self.sigma_max:
            raise rule("sigma_min", f"expected sigma_min < sigma_max, got {self.sigma_min} >= {self.sigma_max}")
        return self

    def describe(self) -> str:
        return describe_sampler(self.kind, self.steps, self.eta, self.tau, self.variance, self.label)

    @property
    def nfe(self) -> int:
        return sampler_nfe(self.kind, self.steps)


@config_model
class SamplerPanel:
    name: str
    description: str
    grid: SamplerSpec                               # draws the fixed-x_T 8x8 grid (playbook 5.0)
    sweep: tuple[SamplerSpec, ...] = ()             # evaluated together as the panel (playbook 5.1, 5.8)


#----------------------------------------------------------------------------
# Training recipes (playbook 2.9, 3.0-3.4, 4.0-4.5, A.4).

@config_model
class Recipe:
    name: str
    description: str
    # The data set and backbone the recipe was written for, taken together when the user names neither (a P3
    # recipe's augmentation trains only the EDM networks; engine/config/catalog.py new_run_choices).
    anchor: dict[Literal["dataset", "backbone"], str] = dataclasses.field(default_factory=dict)
    # Optimisation (playbook 4.0): Adam, batch 128, lr 1e-4, EMA 0.9999.
    optimizer: Literal["adam", "adamw"] = "adam"
    lr: Annotated[float, Gt(0.0)] = 1e-4
    batch_size: Positive = 128
    total_steps: Positive = 500_000
    ema_decay: Fraction = 0.9999
    ema_halflife_kimg: Annotated[float, Gt(0.0)] | None = None   # P3 form; overrides ema_decay (playbook A.4)
    lr_rampup_kimg: Annotated[float, Ge(0.0)] = 0.0              # P3: 10 Mimg ramp-up (playbook A.4)
    grad_clip: Annotated[float, Gt(0.0)] | None = None
    dropout: Fraction | None = None                 # None: the backbone's own value
    augment_p: Annotated[float, Interval(ge=0.0, le=1.0)] = 0.0  # P3 non-leaky augmentation (playbook 1.3, A.4)
    # Objective (playbook 0.2, 2.8, 2.9, 3.0-3.4).
    schedule: Literal["linear", "cosine"] = "linear"
    diffusion_steps: Positive = 1000                # T
    loss: Literal["simple", "hybrid", "vlb", "edm"] = "simple"
    variance: Literal["fixed_small", "fixed_large", "learned", "ocm"] = "fixed_small"
    hybrid_lambda: Annotated[float, Ge(0.0)] = 0.001   # playbook 3.2
    learned_range_clamp: bool = True                # playbook 2.8: keep Sigma in [beta_tilde, beta] (P1 leaves v free)
    importance_sampling: bool = False               # playbook 3.3
    # EDM training noise and weighting (playbook 2.4, 3.4).
    P_mean: float = -1.2
    P_std: Annotated[float, Gt(0.0)] = 1.2
    sigma_data: Annotated[float, Gt(0.0)] = 0.5
    # DyDiT FLOPs budget (playbook 3.5); only used by dynamic backbones.
    flops_lambda: Annotated[float, Interval(gt=0.0, le=1.0)] | None = None
    # Intervals, in optimizer steps.
    log_every: Positive = 10
    grid_every: Positive = 500
    snapshot_every: Positive = 1000
    keep_snapshots: Positive = 3
    class_conditional: bool = False                 # feed the data set's labels (the DiT/ADM anchors are conditional)
    # Network snapshots and their evaluation (playbook 5.5-5.6): EMA weights every K kimg, kept apart from the
    # rolling checkpoints above; each optionally evaluated (FID at the quick count, the run's fixed deterministic
    # sampler and NFE) in a process of its own, and the lowest FID marked as the run's best snapshot.
    snapshot_kimg: Annotated[float, Ge(0.0)] = 2500.0                   # playbook 5.6: P3 saves a snapshot every 2.5 Mimg; 0 = none
    snapshot_eval: bool = False                     # evaluate each snapshot as it is written (needs Inception weights)
    eval_quick_samples: Annotated[int, Ge(2)] = 10_000                # playbook 5.5: P1's 10K-sample FID for quick comparisons
    seed: int = 0
    # Mixed precision (playbook 4.3: the log states the precision, the loss scaling and every non-finite step).
    # auto: bf16 autocast on a CUDA device that has it, fp32 on the CPU; fp16 runs with a dynamic loss scaler.
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    max_nonfinite_steps: Positive = 20              # skipped (non-finite loss or gradient) steps in a row that fail
    # The CUDA fast path (ignored on the CPU, where none of it applies).
    tf32: bool = True                               # TF32 for the fp32 matmuls and convolutions
    cudnn_benchmark: bool = True                    # cuDNN picks the fastest convolution for the fixed shapes
    channels_last: bool = True                      # NHWC memory format for the conv nets (U-Net, ADM, DDPM++, NCSN++)
    fused_optimizer: bool = True                    # one fused Adam/AdamW kernel (also skips non-finite steps on-device)
    compile: bool = False                           # torch.compile (opt-in; the first steps compile, shown as such)
    compile_backend: Literal["inductor", "aot_eager", "eager"] = "inductor"   # eager/aot_eager: capture only
    data_on_device: bool = True                     # a data set that fits in a quarter of GPU memory lives there

    @model_validator(mode="after")
    def _rules(self):
        found = objective_error(self.loss, self.variance, self.importance_sampling)
        if found is not None:
            raise rule(*found)
        if self.schedule == "linear" and self.diffusion_steps <= 20:
            raise rule("diffusion_steps", f"the linear schedule needs T > 20 (its last beta is 20/T); "
                                          f"got {self.diffusion_steps}")
        return self

    def out_channels(self, in_channels: int) -> int:
        return output_channels(self.variance, in_channels)


#----------------------------------------------------------------------------
# A run: the four presets plus run-level settings.

DEVICE_SPEC = re.compile(r"auto|cpu|cuda(:\d+)?")


def device_spec_error(spec: str) -> str | None:
    """Why `spec` is not a device spec at all (None when it is one); whether that device exists here is the launch
    rule's question (engine/launch/devices.py)."""
    if DEVICE_SPEC.fullmatch((spec or "auto").strip().lower()):
        return None
    return f"unknown device '{(spec or '').strip()}' (expected auto, cpu, cuda or cuda:K)"


@config_model
class RunConfig:
    dataset: DatasetProfile
    backbone: BackboneTier
    sampler: SamplerPanel
    recipe: Recipe
    device: str = "auto"                            # "auto" | "cpu" | "cuda" | "cuda:K"
    name: str = ""

    @property
    def learning_rate(self) -> float:
        return self.backbone.learning_rate(self.recipe.lr)

    @property
    def out_channels(self) -> int:
        return self.recipe.out_channels(self.dataset.model_shape[0])

    @property
    def num_classes(self) -> int:
        """Classes the network embeds: the data set's when the recipe trains class-conditionally, else 0."""
        return self.dataset.num_classes if self.recipe.class_conditional else 0

    @model_validator(mode="after")
    def _rules(self, info: ValidationInfo):
        d, b, s, r = self.dataset, self.backbone, self.sampler, self.recipe
        if not b.off_tier:
            found = tier_violation(b)
            if found is not None:
                raise rule(f"backbone.{found[0]}", found[1])
        if r.class_conditional and d.num_classes == 0:
            raise rule("recipe.class_conditional", f"dataset {d.name!r} has no class labels (num_classes 0)")
        if b.family == "dydit" and r.flops_lambda is None:
            # playbook 3.5 / A.2: a dynamic backbone trains toward a target FLOPs ratio; there is no silent default.
            raise rule("recipe.flops_lambda", f"backbone {b.name!r} is dynamic: set recipe.flops_lambda "
                                              f"(playbook A.2 grid: 0.9, 0.8, 0.7, 0.5, 0.4, 0.3 for S/B; "
                                              f"0.7, 0.6, 0.5, 0.3 for XL)")
        objective = "edm" if r.loss == "edm" else "ddpm"
        # The grid sampler must apply to this objective; panel entries that do not are reported per row.
        found_s = sampler_error(s.grid, objective=objective, variance=r.variance, T=r.diffusion_steps)
        if found_s is not None:
            raise rule("sampler.grid", f"{found_s} (recipe {r.name!r})")
        if (problem := device_spec_error(self.device)) is not None:
            raise rule("device", problem)
        if r.augment_p > 0:
            # playbook 1.3 / A.4: P3's non-leaky augmentation conditions the EDM networks on its labels, and draws
            # its own (labelled) x-flips, on pixels.
            if r.loss != "edm" or b.family not in ("ddpmpp", "ncsnpp") or \
                    b.arch.get("augment_dim", 0) != P3_AUGMENT_DIM:
                raise rule("recipe.augment_p", f"{r.augment_p:g}: P3's non-leaky augmentation conditions the EDM "
                                               f"networks (loss edm, backbone ddpmpp/ncsnpp with arch.augment_dim "
                                               f"{P3_AUGMENT_DIM}); got loss {r.loss!r}, backbone {b.name!r} "
                                               f"(playbook 1.3); set recipe.augment_p=0")
            if d.x_flip or d.latents:
                raise rule("recipe.augment_p", f"{r.augment_p:g}: the augmentation draws its own labelled x-flips "
                                               f"on pixels; set dataset.x_flip=false and dataset.latents=false "
                                               f"(P3: dataset x-flips off; playbook 1.3 (4))")
        if info.context and info.context.get(NEW_RUN):
            self._new_run_rules()
        return self

    def _new_run_rules(self) -> None:
        """What a new run must also pass (issue 11 item 6); a stored run's config is loaded without these."""
        d, b, r = self.dataset, self.backbone, self.recipe
        channels, side, _ = d.model_shape                 # what the network sees: pixels, or VAE latents
        if b.family in ("dit", "dydit") and not b.off_tier:
            # playbook A.1: the DiT tiers are anchored on 4x32x32 latents of 256x256 images (P5 also reports 512).
            fits = side in (32, 64) if d.latents else side == b.resolution
            if not fits:
                what = f"{channels}x{side}x{side} {'latents' if d.latents else 'pixels'}"
                raise rule(None, f"backbone {b.name!r} is a latent tier (4x32x32 latents of 256x256 images, "
                                 f"playbook A.1); dataset {d.name!r} gives {what}: use a {b.resolution}x"
                                 f"{b.resolution} data set or the latents of 256/512 px images "
                                 f"(dataset.latents=true), or pass --off-tier")
        arch = arch_of(b.family, b.arch, "")
        problem = arch.fits(side)
        if problem is not None:
            raise rule("dataset.resolution", f"backbone {b.name!r} cannot be built for dataset {d.name!r}: "
                                             f"{problem}")
        if b.anchor is not None and not b.off_tier:
            # playbook 1.7: a paper tier is the baseline of its anchor task; other resolutions are first brought to
            # the anchor's (center crop + area downsample, playbook 1.1).
            if side != b.resolution and not (d.latents and side == 2 * b.resolution):
                raise rule(None, f"backbone {b.name!r} is anchored at {b.resolution}x{b.resolution} but dataset "
                                 f"{d.name!r} gives {side}x{side} (playbook 1.7: train a tier at its anchor "
                                 f"resolution); pass --off-tier to run it anyway")
            if b.channels and channels not in b.channels:
                allowed = " or ".join(str(c) for c in b.channels)
                raise rule(None, f"backbone {b.name!r} is anchored on {allowed}-channel data but dataset "
                                 f"{d.name!r} has {channels} (playbook 1.7); pass --off-tier to run it anyway")
        if r.flops_lambda is not None and b.family != "dydit":
            raise rule("recipe.flops_lambda", f"recipe {r.name!r} sets a DyDiT FLOPs target (playbook 3.5, A.2) "
                                              f"but backbone {b.name!r} is a static {b.family} network; pick a "
                                              f"dydit-* backbone or --set recipe.flops_lambda=null")

    def warnings(self) -> list[str]:
        """What a new run may do but probably should not (shown, not refused)."""
        d, b, r = self.dataset, self.backbone, self.recipe
        out = []
        if r.total_steps < r.grid_every:
            out.append(f"max steps {r.total_steps:,} < recipe.grid_every {r.grid_every:,}: no grid until the "
                       f"final one at step {r.total_steps:,}")
        if r.total_steps < r.snapshot_every:
            out.append(f"max steps {r.total_steps:,} < recipe.snapshot_every {r.snapshot_every:,}: no checkpoint "
                       f"before the end, so a crash would lose the whole run")
        if b.anchor is None and d.resolution != b.resolution:
            out.append(f"backbone {b.name!r} was sized for {b.resolution}x{b.resolution}; dataset {d.name!r} is "
                       f"{d.resolution}x{d.resolution}")
        return out


#----------------------------------------------------------------------------
# Building the model from mappings.

def from_mapping(cls: type, data: Any, where: str) -> Any:
    """Build config class `cls` from a mapping, refusing unknown keys, missing fields, wrong types and broken rules.

    `where` names the source for the error message, e.g. "presets/recipes/p1.yaml" or "run 3 config".
    """
    return schema.validate(cls, data, where)


def run_config_from_dict(data: Mapping[str, Any], where: str = "config", *, new_run: bool = False,
                         cwd: Any = None) -> RunConfig:
    """A RunConfig from its dict (a stored run's config, or a new run's tree with `new_run=True`)."""
    return schema.validate(RunConfig, data, where, new_run=new_run, cwd=cwd)


#----------------------------------------------------------------------------
# Sweep grids (presets/sweeps/*.yaml; playbook 1.8, 4.5, A.2, A.6). A grid is one or more axes, `key: [values]`,
# expanded as a cartesian product. A key is a dotted config key (`recipe.dropout`, `backbone.arch.depth`) or a preset
# kind (`backbone: [unet-c64, ...]`: each value is a preset of that kind). The values are the paper's grid; a value
# off it is taken only when the user says so (the member is then marked off-grid).

GRID_PRESET_AXES = ("dataset", "backbone", "sampler", "recipe")


@config_model
class GridScope:
    """Which runs a grid applies to; an empty list allows any. `reason` says why, for the refusal."""
    families: tuple[str, ...] = ()                  # backbone families (difftui.engine.models.ARCHS keys)
    backbones: tuple[str, ...] = ()                 # backbone preset names
    recipes: tuple[str, ...] = ()                   # recipe preset names
    reason: str = ""

    def describe(self) -> str:
        parts = []
        if self.backbones:
            parts.append("backbones " + ", ".join(self.backbones))
        if self.families:
            parts.append("families " + ", ".join(self.families))
        if self.recipes:
            parts.append("recipes " + ", ".join(self.recipes))
        return "; ".join(parts) or "any run"


@config_model
class SweepGrid:
    name: str
    description: str
    playbook: str                                   # the playbook section the grid comes from, e.g. "4.5"
    axes: dict[str, Any]                            # key -> list of values (the paper's grid)
    applies_to: GridScope = dataclasses.field(default_factory=GridScope)

    @model_validator(mode="after")
    def _rules(self):
        if not self.axes:
            raise rule("axes", "expected at least one axis (key: [values])")
        for key, values in self.axes.items():
            where = f"axes.{key}"
            if not isinstance(values, list) or not values:
                raise rule(where, "expected a non-empty list of values")
            for v in values:
                if isinstance(v, (dict, list)) or v is None:
                    raise rule(where, f"expected plain values (numbers, strings, true/false), got {v!r}")
            if len({repr(v) for v in values}) != len(values):
                raise rule(where, "a value is listed twice")
            parts = str(key).split(".")
            if key in GRID_PRESET_AXES:
                if not all(isinstance(v, str) and v for v in values):
                    raise rule(where, f"expected a list of {key} preset names")
            elif len(parts) < 2 or parts[0] not in GRID_PRESET_AXES:
                raise rule(where, f"expected a preset kind ({', '.join(GRID_PRESET_AXES)}) or a dotted config key "
                                  f"such as recipe.dropout")
            elif not (parts[:2] == ["backbone", "arch"] and len(parts) == 3):
                cls = {"dataset": DatasetProfile, "backbone": BackboneTier, "sampler": SamplerPanel,
                       "recipe": Recipe}[parts[0]]
                names = {f.name for f in dataclasses.fields(cls)}
                if len(parts) != 2 or parts[1] not in names or parts[1] == "name":
                    raise rule(where, f"{parts[0]} has no key {'.'.join(parts[1:])!r}")
        return self

    def axis_values(self, key: str) -> tuple[Any, ...]:
        return tuple(self.axes[key])

    def on_grid(self, key: str, value: Any) -> bool:
        """Whether `value` is one of the paper's values for axis `key` (0.1 == 0.10; 1 == 1.0)."""
        return any(same_value(value, v) for v in self.axes[key])

    def refusal(self, *, backbone: str, family: str, recipe: str) -> str | None:
        """One line when this grid does not apply to a run of this backbone and recipe, else None."""
        s = self.applies_to
        wrong = None
        if s.backbones and backbone not in s.backbones:
            wrong = f"backbone {backbone!r}"
        elif s.families and family not in s.families:
            wrong = f"backbone {backbone!r} (family {family})"
        elif s.recipes and recipe not in s.recipes:
            wrong = f"recipe {recipe!r}"
        if wrong is None:
            return None
        why = f": {s.reason}" if s.reason else ""
        return (f"grid '{self.name}' (playbook {self.playbook}) applies to {s.describe()}, not to {wrong}{why}")


def same_value(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return a == b


#----------------------------------------------------------------------------
# `--set key=value` overrides on a resolved config dict.

def parse_override(text: str) -> tuple[str, Any]:
    """'recipe.batch_size=16' -> ('recipe.batch_size', 16); the value is parsed as YAML (a number that YAML 1.1
    leaves a string, such as 1e6, is read as a number by the field it sets)."""
    import yaml
    if "=" not in text:
        raise PresetError(f"--set {text!r}: expected key=value, e.g. recipe.batch_size=16")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise PresetError(f"--set {text!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, value


def apply_overrides(config: dict[str, Any], overrides: list[tuple[str, Any]]) -> dict[str, Any]:
    """Set dotted keys in a nested config dict (a deep copy); refuse keys that do not exist.

    Keys under `backbone.arch` are checked by the family's arch class, so they may be new.
    """
    import copy
    out = copy.deepcopy(config)
    for key, value in overrides:
        parts = key.split(".")
        node = out
        for i, part in enumerate(parts[:-1]):
            if not isinstance(node, dict) or part not in node or not isinstance(node[part], dict):
                raise PresetError(f"--set {key}: unknown key '{'.'.join(parts[: i + 1])}'")
            node = node[part]
        leaf = parts[-1]
        free = parts[:-1] == ["backbone", "arch"]
        if not free and leaf not in node:
            raise PresetError(f"--set {key}: unknown key '{key}'")
        node[leaf] = value
    return out
