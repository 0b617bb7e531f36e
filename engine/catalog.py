"""The preset catalog: finds, loads and validates YAML presets, and composes them into a `RunConfig`.

Presets ship in `difftui.presets/<kind>/*.yaml`; users add their own directories (`--presets DIR` or the
`DIFFTUI_PRESETS` path list), each with the same `<kind>/` sub-folders. A user preset with the same name as a shipped one
replaces it. Every file is read with `yaml.safe_load` and validated once here; errors name the file and the key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml

from difftui.engine.config import (BackboneTier, DatasetProfile, PresetError, Recipe, RunConfig, SamplerPanel,
                                   SweepGrid, apply_overrides, from_mapping, parse_override, run_config_from_dict,
                                   to_dict)

__all__ = ["KINDS", "Catalog", "PresetFile"]

KINDS: dict[str, type] = {
    "datasets": DatasetProfile,
    "backbones": BackboneTier,
    "samplers": SamplerPanel,
    "recipes": Recipe,
    "sweeps": SweepGrid,                            # sweep grids (playbook 1.8, 4.5, A.2, A.6); difftui.engine.sweeps
}

# The defaults a new user gets with no flags: the offline data, the CPU demo tier, the playbook 5.0 grid sampler and
# the P1 recipe (playbook 4.0).
DEFAULTS = {"datasets": "digits", "backbones": "unet-demo", "samplers": "ddim", "recipes": "p1-default"}


def builtin_dir() -> Path:
    import difftui.presets
    return Path(difftui.presets.__file__).parent


@dataclass(frozen=True)
class PresetFile:
    kind: str
    name: str
    path: Path
    preset: Any


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def load_preset(kind: str, path: Path) -> Any:
    """Read and validate one preset file; PresetError names the file and key on any fault."""
    where = _display(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = f" ({e.problem})" if getattr(e, "problem", None) else ""
        raise PresetError(f"{where}: not valid YAML{at}{problem}") from None
    except OSError as e:
        raise PresetError(f"{where}: cannot read ({e.strerror})") from None
    preset = from_mapping(KINDS[kind], data, where)
    if kind == "backbones":
        # The arch mapping is typed by the model family; validate it here too, so a bad key fails at load time.
        from difftui.engine.models import ARCHS
        if preset.family not in ARCHS:
            raise PresetError(f"{where}: key 'family': unknown family {preset.family!r} "
                              f"(known: {', '.join(sorted(ARCHS))})")
        from_mapping(ARCHS[preset.family], preset.arch, f"{where}: arch")
    if preset.name != path.stem:
        raise PresetError(f"{where}: key 'name': {preset.name!r} must match the file name {path.stem!r}")
    return preset


class Catalog:
    """All presets visible to this process: the shipped ones, then each user directory in order."""

    def __init__(self, extra_dirs: Iterable[str | os.PathLike[str]] = ()):
        env = [d for d in os.environ.get("DIFFTUI_PRESETS", "").split(os.pathsep) if d]
        self.dirs = [builtin_dir(), *(Path(d).expanduser() for d in [*env, *extra_dirs])]

    def files(self, kind: str) -> dict[str, Path]:
        if kind not in KINDS:
            raise PresetError(f"unknown preset kind {kind!r} (kinds: {', '.join(KINDS)})")
        found: dict[str, Path] = {}
        for d in self.dirs:
            sub = d / kind
            if sub.is_dir():
                for path in sorted(sub.glob("*.yaml")):
                    found[path.stem] = path
        return found

    def names(self, kind: str) -> list[str]:
        return list(self.files(kind))

    def get(self, kind: str, name: str) -> Any:
        files = self.files(kind)
        if name not in files:
            raise PresetError(f"no {kind[:-1]} preset named {name!r} (available: {', '.join(files) or 'none'})")
        return load_preset(kind, files[name])

    def all(self, kind: str) -> list[PresetFile]:
        """Every preset of a kind; raises on the first malformed file."""
        return [PresetFile(kind, n, p, load_preset(kind, p)) for n, p in self.files(kind).items()]

    def resolve(self, *, dataset: str | None = None, backbone: str | None = None, sampler: str | None = None,
                recipe: str | None = None, overrides: Iterable[str] = (), max_steps: int | None = None,
                device: str = "auto", off_tier: bool = False, name: str = "") -> RunConfig:
        """Compose four presets and the user's `--set key=value` overrides into one validated RunConfig."""
        parts = {
            "dataset": self.get("datasets", dataset or DEFAULTS["datasets"]),
            "backbone": self.get("backbones", backbone or DEFAULTS["backbones"]),
            "sampler": self.get("samplers", sampler or DEFAULTS["samplers"]),
            "recipe": self.get("recipes", recipe or DEFAULTS["recipes"]),
        }
        tree: dict[str, Any] = {k: to_dict(v) for k, v in parts.items()}
        tree.update(device=device, name=name)
        parsed = [parse_override(o) for o in overrides]
        if max_steps is not None:
            parsed.append(("recipe.total_steps", max_steps))
        if off_tier:
            parsed.append(("backbone.off_tier", True))
        tree = apply_overrides(tree, parsed)
        config = run_config_from_dict(tree, "run config (after --set)")
        from difftui.engine.models import ARCHS, check_tier
        from_mapping(ARCHS[config.backbone.family], config.backbone.arch, "run config (after --set): backbone.arch")
        check_tier(config.backbone)
        if config.recipe.class_conditional and config.dataset.num_classes == 0:
            raise PresetError(f"recipe.class_conditional: dataset {config.dataset.name!r} has no class labels "
                              f"(num_classes 0)")
        if config.backbone.family == "dydit" and config.recipe.flops_lambda is None:
            # playbook 3.5 / A.2: a dynamic backbone trains toward a target FLOPs ratio; there is no silent default.
            raise PresetError(f"backbone {config.backbone.name!r} is dynamic: set recipe.flops_lambda "
                              f"(playbook A.2 grid: 0.9, 0.8, 0.7, 0.5, 0.4, 0.3 for S/B; 0.7, 0.6, 0.5, 0.3 for XL)")
        from difftui.engine.diffusion import build_objective
        try:
            # The grid sampler must apply to this objective; panel entries that do not are reported per row.
            build_objective(config.recipe).check_spec(config.sampler.grid)
        except ValueError as e:
            raise PresetError(f"recipe {config.recipe.name!r} with sampler {config.sampler.name!r}: {e}") from None
        return config


def config_to_dict(config: RunConfig) -> dict[str, Any]:
    return to_dict(config)


def config_from_dict(data: dict[str, Any], where: str = "run config") -> RunConfig:
    return run_config_from_dict(data, where)
