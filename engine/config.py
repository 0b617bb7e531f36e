"""Typed run configuration, composed from presets and validated once at the edge.

A run is four presets (dataset profile, backbone tier, sampler panel, training recipe) plus the user's overrides.
Every YAML file is read with `yaml.safe_load` and turned into frozen dataclasses by `from_mapping`, which refuses an
unknown key, a wrong type or a missing field with one line naming the file and the key (`PresetError`). Inside the
engine the config is trusted.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, Mapping

__all__ = [
    "PresetError",
    "Anchor",
    "DatasetProfile",
    "BackboneTier",
    "SamplerSpec",
    "SamplerPanel",
    "Recipe",
    "RunConfig",
    "from_mapping",
    "to_dict",
    "apply_overrides",
    "parse_override",
]


class PresetError(ValueError):
    """A preset or override is malformed. The message is one line naming the file (or source) and the key."""


#----------------------------------------------------------------------------
# Generic mapping -> dataclass validation.

def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        args = typing.get_args(tp)
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        return "mapping"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, where: str) -> Any:
    """Check `value` against the annotation `tp`; return it converted (lists -> tuples, ints -> floats)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
        raise PresetError(f"{where}: expected one of {_type_name(tp)}, got {value!r}")
    if origin in (typing.Union, types.UnionType):
        errors = []
        for arg in typing.get_args(tp):
            try:
                return _convert(value, arg, where)
            except PresetError as e:
                errors.append(e)
        raise PresetError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    if tp is type(None):
        if value is None:
            return None
        raise PresetError(f"{where}: expected null, got {value!r}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise PresetError(f"{where}: expected {_type_name(tp)}, got {value!r}")
        (arg, *_rest) = typing.get_args(tp) or (Any,)
        return tuple(_convert(v, arg, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise PresetError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        return from_mapping(tp, value, where)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise PresetError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise PresetError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if math.isnan(float(value)):
                raise PresetError(f"{where}: expected a number, got {value!r}")
            return float(value)
        raise PresetError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise PresetError(f"{where}: expected a string, got {value!r}")
    raise TypeError(f"unsupported annotation {tp!r} at {where}")


def from_mapping(cls: type, data: Any, where: str) -> Any:
    """Build dataclass `cls` from a mapping, refusing unknown keys, missing fields and wrong types.

    `where` names the source for the error message, e.g. "presets/recipes/p1.yaml" or "p1.yaml: recipe".
    """
    if not isinstance(data, Mapping):
        raise PresetError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise PresetError(f"{where}: unknown key '{unknown[0]}' (allowed: {', '.join(fields)})")
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], f"{where}: key '{name}'")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise PresetError(f"{where}: missing key '{name}'")
    try:
        obj = cls(**kwargs)
    except PresetError:
        raise
    except (TypeError, ValueError) as e:
        raise PresetError(f"{where}: {e}") from None
    check = getattr(obj, "validate", None)
    if check is not None:
        try:
            check()
        except PresetError as e:
            raise PresetError(f"{where}: {e}") from None
    return obj


def to_dict(obj: Any) -> Any:
    """Dataclass -> plain dict / list tree (tuples become lists), suitable for YAML and JSON."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


#----------------------------------------------------------------------------
# Dataset profiles (playbook 1.0-1.8).

@dataclass(frozen=True)
class DatasetProfile:
    name: str
    description: str
    source: Literal["digits", "cifar10", "image_folder"]
    resolution: int
    channels: int
    anchor: str                                     # the paper task it stands for (playbook 1.6-1.7), or "none"
    root: str | None = None                         # local data directory (cifar10: torchvision root; folder: images)
    download: bool = False                          # cifar10: try torchvision's download when the files are missing
    x_flip: bool = False                            # playbook 1.0 / A.4: no x-flips unless asked
    crop: Literal["center", "none"] = "center"      # playbook 1.1: center crop then area downsample
    num_classes: int = 0
    split: Literal["train", "test"] = "train"

    def validate(self) -> None:
        if self.resolution < 8 or self.resolution & (self.resolution - 1):
            raise PresetError(f"key 'resolution': expected a power of two >= 8, got {self.resolution}")
        if self.channels not in (1, 3, 4):
            raise PresetError(f"key 'channels': expected 1, 3 or 4, got {self.channels}")


#----------------------------------------------------------------------------
# Backbone tiers (playbook 1.7-1.8, 2.0-2.6, A.1, A.5, A.6).

@dataclass(frozen=True)
class Anchor:
    """What the paper reports for this tier; difftui measures its own numbers beside these."""
    paper: str                                      # e.g. "P1 Table ... / playbook A.6"
    params_m: float | None = None                   # millions of parameters
    gmacs: float | None = None                      # giga multiply-adds per forward at `resolution`
    img_per_s_ref: float | None = None              # reference training throughput, when the issue gives one
    note: str = ""


@dataclass(frozen=True)
class BackboneTier:
    name: str
    description: str
    family: str                                     # a key of difftui.engine.models.ARCHS ("unet", "dit", ...)
    resolution: int                                 # the resolution the tier is anchored to
    arch: dict[str, Any]                            # validated by the family's arch dataclass at build time
    anchor: Anchor | None = None                    # None: not a paper anchor (e.g. the CPU demo tier)
    tier_group: str = ""                            # tiers of one group form the allowed ladder (playbook 1.7)
    lr_rule: Literal["fixed", "p1_sqrt"] = "fixed"  # p1_sqrt: lr = 1e-4 / sqrt(C/128) (playbook A.6)
    off_tier: bool = False                          # set by the user's explicit --off-tier

    def learning_rate(self, base_lr: float) -> float:
        if self.lr_rule == "p1_sqrt":
            # playbook A.6: baseline C=128 at lr=1e-4; lr = 1e-4 / sqrt(C/128).
            return 1e-4 / math.sqrt(self.arch["model_channels"] / 128)
        return base_lr


#----------------------------------------------------------------------------
# Samplers and panels (playbook 0.3, 5.0-5.4, 5.7-5.8, A.3, A.7).

@dataclass(frozen=True)
class SamplerSpec:
    kind: Literal["ddim", "ddpm", "edm_euler", "edm_heun", "edm_stochastic", "covariance"]
    steps: int = 50                                 # N (DDIM sub-sequence length, EDM steps, few-step count)
    eta: float = 0.0                                # DDIM eta; 0 = deterministic (playbook 0.3)
    tau: Literal["linear", "quadratic"] = "linear"  # DDIM sub-sequence rule (playbook A.7)
    variance: Literal["fixed_small", "fixed_large", "learned", "ocm"] = "fixed_small"
    sigma_min: float = 0.002                        # EDM (playbook 5.3)
    sigma_max: float = 80.0
    rho: float = 7.0
    S_churn: float = 0.0                            # EDM stochastic (playbook 5.4, A.3)
    S_tmin: float = 0.0
    S_tmax: float = float("inf")
    S_noise: float = 1.0
    label: str = ""

    def validate(self) -> None:
        if self.steps < 1:
            raise PresetError(f"key 'steps': expected >= 1, got {self.steps}")
        if not 0.0 <= self.eta <= 1.0:
            raise PresetError(f"key 'eta': expected 0 <= eta <= 1, got {self.eta}")

    def describe(self) -> str:
        if self.label:
            return self.label
        if self.kind == "ddim":
            return f"DDIM eta={self.eta:g} N={self.steps} {self.tau}"
        if self.kind == "ddpm":
            return f"DDPM {self.variance} N={self.steps}"
        if self.kind == "covariance":
            return f"few-step {self.variance} N={self.steps}"
        return f"{self.kind} N={self.steps}"


@dataclass(frozen=True)
class SamplerPanel:
    name: str
    description: str
    grid: SamplerSpec                               # draws the fixed-x_T 8x8 grid (playbook 5.0)
    sweep: tuple[SamplerSpec, ...] = ()             # evaluated together as the panel (playbook 5.1, 5.8)


#----------------------------------------------------------------------------
# Training recipes (playbook 2.9, 3.0-3.4, 4.0-4.5, A.4).

@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    # Optimisation (playbook 4.0): Adam, batch 128, lr 1e-4, EMA 0.9999.
    optimizer: Literal["adam", "adamw"] = "adam"
    lr: float = 1e-4
    batch_size: int = 128
    total_steps: int = 500_000
    ema_decay: float = 0.9999
    ema_halflife_kimg: float | None = None          # P3 form; overrides ema_decay when set (playbook A.4)
    lr_rampup_kimg: float = 0.0                     # P3: 10 Mimg ramp-up (playbook A.4)
    grad_clip: float | None = None
    dropout: float | None = None                    # None: the backbone's own value
    augment_p: float = 0.0
    # Objective (playbook 0.2, 2.8, 2.9, 3.0-3.4).
    schedule: Literal["linear", "cosine"] = "linear"
    diffusion_steps: int = 1000                     # T
    loss: Literal["simple", "hybrid", "vlb", "edm"] = "simple"
    variance: Literal["fixed_small", "fixed_large", "learned", "ocm"] = "fixed_small"
    hybrid_lambda: float = 0.001                    # playbook 3.2
    learned_range_clamp: bool = True                # playbook 2.8: keep Sigma in [beta_tilde, beta] (P1 leaves v free)
    importance_sampling: bool = False               # playbook 3.3
    # EDM training noise and weighting (playbook 2.4, 3.4).
    P_mean: float = -1.2
    P_std: float = 1.2
    sigma_data: float = 0.5
    # DyDiT FLOPs budget (playbook 3.5); only used by dynamic backbones.
    flops_lambda: float | None = None
    # Intervals, in optimizer steps.
    log_every: int = 10
    grid_every: int = 500
    snapshot_every: int = 1000
    keep_snapshots: int = 3
    class_conditional: bool = False                 # feed the data set's labels (the DiT/ADM anchors are conditional)
    # Network snapshots and their evaluation (playbook 5.5-5.6): EMA weights every K kimg, kept apart from the
    # rolling checkpoints above; each optionally evaluated (FID at the quick count, the run's fixed deterministic
    # sampler and NFE) in a process of its own, and the lowest FID marked as the run's best snapshot.
    snapshot_kimg: float = 2500.0                   # playbook 5.6: P3 saves a snapshot every 2.5 Mimg; 0 = none
    snapshot_eval: bool = False                     # evaluate each snapshot as it is written (needs Inception weights)
    eval_quick_samples: int = 10_000                # playbook 5.5: P1's 10K-sample FID for quick comparisons
    seed: int = 0
    precision: Literal["fp32", "bf16"] = "fp32"

    def validate(self) -> None:
        for key in ("batch_size", "total_steps", "diffusion_steps", "log_every", "grid_every", "snapshot_every"):
            if getattr(self, key) < 1:
                raise PresetError(f"key '{key}': expected >= 1, got {getattr(self, key)}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise PresetError(f"key 'ema_decay': expected 0 <= decay < 1, got {self.ema_decay}")
        if self.lr <= 0:
            raise PresetError(f"key 'lr': expected > 0, got {self.lr}")
        if self.flops_lambda is not None and not 0.0 < self.flops_lambda <= 1.0:
            raise PresetError(f"key 'flops_lambda': expected 0 < lambda <= 1, got {self.flops_lambda}")
        if self.snapshot_kimg < 0 or self.eval_quick_samples < 2:
            raise PresetError("key 'snapshot_kimg'/'eval_quick_samples': expected snapshot_kimg >= 0 and "
                              f"eval_quick_samples >= 2, got {self.snapshot_kimg} and {self.eval_quick_samples}")
        if self.augment_p > 0:
            raise PresetError("key 'augment_p': the P3 non-leaky augmentation pipeline is not built yet; set 0")
        if self.loss in ("hybrid", "vlb") and self.variance != "learned":
            raise PresetError(f"key 'variance': loss '{self.loss}' trains the variance, so variance must be 'learned'")


#----------------------------------------------------------------------------
# A run: the four presets plus run-level settings.

@dataclass(frozen=True)
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


#----------------------------------------------------------------------------
# `--set key=value` overrides on a resolved config dict.

def parse_override(text: str) -> tuple[str, Any]:
    """'recipe.batch_size=16' -> ('recipe.batch_size', 16); the value is parsed as YAML."""
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

    Keys under `backbone.arch` are checked later by the family's arch dataclass, so they may be new.
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


def run_config_from_dict(data: Mapping[str, Any], where: str = "config") -> RunConfig:
    return from_mapping(RunConfig, data, where)
