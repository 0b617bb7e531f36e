"""The preset catalog: finds, loads and validates YAML presets, and composes them into a `RunConfig`.

Presets ship in `difftui.presets/<kind>/*.yaml`; users add their own directories (`--presets DIR` or the
`DIFFTUI_PRESETS` path list), each with the same `<kind>/` sub-folders. A user preset with the same name as a shipped one
replaces it. Every file is read with `yaml.safe_load` and validated once here by the config model
(difftui.engine.config.model); errors name the file and the key. Imports no torch: the TUI lists and composes presets
in its own light process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml

from difftui.engine.config.model import (
    BackboneTier,
    DatasetProfile,
    PresetError,
    Recipe,
    RunConfig,
    SamplerPanel,
    SweepGrid,
    apply_overrides,
    from_mapping,
    parse_override,
    run_config_from_dict,
    to_dict,
)
from difftui.engine.config.schema import parse_integer

__all__ = ["KINDS", "Catalog", "PresetFile", "DEFAULTS", "default_sampler", "new_run_choices"]

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

def default_sampler(recipe: dict[str, Any]) -> str:
    """The sampler panel a new run gets when the user names none: the one its recipe's objective samples with.

    `recipe` is the recipe as trained (the preset with the user's `recipe.*` overrides). An EDM-trained denoiser
    samples with EDM Heun (P3 Alg. 1; playbook 5.3), a model with an OCM covariance head with the few-step
    covariance panel (P6; playbook 3.7, 5.8), every other DDPM-family model with DDIM (playbook 5.0). The CLI, the
    TUI's new-run flow and the sweep plans all ask this one rule."""
    if recipe.get("loss") == "edm":
        return "edm-heun"
    if recipe.get("variance") == "ocm":
        return "covariance-ocm"
    return DEFAULTS["samplers"]


def new_run_choices(recipe: dict[str, Any], *, dataset: str | None, backbone: str | None, sampler: str | None,
                    recipe_name: str) -> dict[str, str]:
    """The four preset names of a new run: the user's where named, else the defaults that fit `recipe` (a dict, as
    in default_sampler)."""
    # The recipe's anchor (the data set and backbone it was written for) applies only as a pair: with one of them
    # named, the other is the plain default and the config rules say what does not fit.
    anchor = (recipe.get("anchor") or {}) if dataset is None and backbone is None else {}
    return {
        "datasets": dataset or anchor.get("dataset") or DEFAULTS["datasets"],
        "backbones": backbone or anchor.get("backbone") or DEFAULTS["backbones"],
        "samplers": sampler or default_sampler(recipe),
        "recipes": recipe_name,
    }


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
                recipe: str | None = None, overrides: Iterable[str] = (), max_steps: int | str | None = None,
                device: str = "auto", off_tier: bool = False, name: str = "",
                cwd: str | os.PathLike[str] | None = None) -> RunConfig:
        """Compose four presets and the user's `--set key=value` overrides into one validated RunConfig.

        A preset the user does not name is the default that fits the recipe (new_run_choices: an EDM recipe samples
        with EDM Heun, not DDIM).
        The rules of a new run apply (the tier fits the data, the recipe fits the tier family), and path keys are
        stored absolute, resolved against `cwd` (default: this process's working directory, i.e. the user's)."""
        recipe_name = recipe or DEFAULTS["recipes"]
        recipe_preset = self.get("recipes", recipe_name)
        parsed = [parse_override(o) for o in overrides]
        if max_steps is not None:
            try:
                parsed.append(("recipe.total_steps", parse_integer(max_steps)))
            except ValueError:
                raise PresetError(f"--max-steps: expected an integer, got {max_steps!r}") from None
        if off_tier:
            parsed.append(("backbone.off_tier", True))
        as_trained = apply_overrides({"recipe": to_dict(recipe_preset)},
                                     [o for o in parsed if o[0].startswith("recipe.")])["recipe"]
        names = new_run_choices(as_trained, dataset=dataset, backbone=backbone, sampler=sampler,
                                recipe_name=recipe_name)
        def part(kind: str, named: str | None) -> Any:
            try:
                return self.get(kind, names[kind])
            except PresetError as e:
                if named is not None or kind == "samplers":
                    raise
                where = _display(self.files("recipes")[recipe_name])       # the recipe's anchor names it
                raise PresetError(f"{where}: key 'anchor.{kind[:-1]}': {e}") from None

        parts = {
            "dataset": part("datasets", dataset),
            "backbone": part("backbones", backbone),
            "sampler": part("samplers", sampler),
            "recipe": recipe_preset,
        }
        tree: dict[str, Any] = {k: to_dict(v) for k, v in parts.items()}
        tree.update(device=device, name=name)
        tree = apply_overrides(tree, parsed)
        return run_config_from_dict(tree, "run config", new_run=True, cwd=Path.cwd() if cwd is None else cwd)


def config_to_dict(config: RunConfig) -> dict[str, Any]:
    return to_dict(config)


def config_from_dict(data: dict[str, Any], where: str = "run config") -> RunConfig:
    """A stored run's config (runs.config); the rules of a new run do not apply to it."""
    return run_config_from_dict(data, where)
