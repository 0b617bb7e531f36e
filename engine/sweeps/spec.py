"""The options of one run, as `difftui run` takes them, and the way back from a resolved config to those options.

A sweep member, a clone and the review screen's "sweep this config" all describe a run the same way: four preset
names, `--set key=value` overrides, the number of steps, the device, the off-tier switch and a name. `RunSpec.resolve`
hands these to `Catalog.resolve`, the one home of the config's rules, so a member is validated exactly as a run
started by hand. `RunSpec.from_config` goes the other way: the preset names of a resolved config and one `--set` for
every value that differs from those presets today (clone, sweep around an earlier run).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Iterable

import yaml

from difftui.engine.config.model import PresetError, RunConfig, to_dict

__all__ = ["RunSpec", "yaml_value", "flatten", "config_diff", "PRESET_SECTIONS"]

PRESET_SECTIONS = {"dataset": "datasets", "backbone": "backbones", "sampler": "samplers", "recipe": "recipes"}


def yaml_value(value: Any) -> str:
    """A value as `--set` text that `parse_override` reads back as the same value (1e-05 -> 1.0e-05: YAML 1.1
    reads a float only with a dot; strings that look like numbers stay quoted)."""
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value)
        if "e" in text and "." not in text.split("e")[0]:
            mantissa, exp = text.split("e")
            text = f"{mantissa}.0e{exp}"
        return text
    text = yaml.safe_dump(value, default_flow_style=True, width=1 << 30).strip()
    return text[:-3].strip() if text.endswith("...") else text


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """{'recipe': {'lr': 1e-4}} -> {'recipe.lr': 1e-4}; lists are leaves."""
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for k, v in tree.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: list(tree) if isinstance(tree, tuple) else tree}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def config_diff(configs: list[dict[str, Any]], *, skip: Iterable[str] = ("name",)) -> list[tuple[str, list[Any]]]:
    """The keys whose values differ between resolved configs: [(dotted key, [value per config, None if absent])]."""
    flat = [flatten(c) for c in configs]
    skip = set(skip)
    keys: list[str] = []
    for f in flat:
        keys.extend(k for k in f if k not in keys)
    out = []
    for key in keys:
        if key in skip:
            continue
        values = [f.get(key) for f in flat]
        if any(not _same(values[0], v) for v in values[1:]):
            out.append((key, values))
    return out


@dataclass(frozen=True)
class RunSpec:
    """The run options of `difftui run` (None: the catalog's default preset)."""
    dataset: str | None = None
    backbone: str | None = None
    sampler: str | None = None
    recipe: str | None = None
    overrides: tuple[str, ...] = ()
    max_steps: int | None = None
    device: str = "auto"
    off_tier: bool = False
    name: str = ""

    def resolve(self, catalog: Any, extra: Iterable[str] = (), **replace: Any) -> RunConfig:
        """The validated RunConfig of these options plus `extra` overrides (PresetError, one line, otherwise)."""
        spec = dataclasses.replace(self, **replace) if replace else self
        return catalog.resolve(dataset=spec.dataset, backbone=spec.backbone, sampler=spec.sampler,
                               recipe=spec.recipe, overrides=[*spec.overrides, *extra], max_steps=spec.max_steps,
                               device=spec.device, off_tier=spec.off_tier, name=spec.name)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["overrides"] = list(self.overrides)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunSpec":
        fields = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in fields}
        kwargs["overrides"] = tuple(kwargs.get("overrides") or ())
        return cls(**kwargs)

    @classmethod
    def from_config(cls, data: dict[str, Any], catalog: Any) -> "RunSpec":
        """The options that reproduce a resolved config with today's presets: its preset names, its steps, device and
        off-tier switch, and `--set` for each value that differs from the presets (PresetError when a preset it
        names is gone)."""
        names: dict[str, str] = {}
        sets: list[str] = []
        for section, kind in PRESET_SECTIONS.items():
            if not isinstance(data.get(section), dict) or "name" not in data[section]:
                raise PresetError(f"run config: section '{section}' has no preset name")
            names[section] = data[section]["name"]
            preset = flatten(to_dict(catalog.get(kind, names[section])), section)
            ours = flatten(data[section], section)
            for key, value in ours.items():
                if key in ("recipe.total_steps", "backbone.off_tier", f"{section}.name"):
                    continue
                if key not in preset or not _same(preset[key], value):
                    sets.append(f"{key}={yaml_value(value)}")
        return cls(dataset=names["dataset"], backbone=names["backbone"], sampler=names["sampler"],
                   recipe=names["recipe"], overrides=tuple(sets), max_steps=int(data["recipe"]["total_steps"]),
                   device=str(data.get("device") or "auto"), off_tier=bool(data["backbone"].get("off_tier")),
                   name="")

    def describe(self) -> str:
        parts = [" / ".join(n or "default" for n in (self.dataset, self.backbone, self.sampler, self.recipe))]
        if self.max_steps:
            parts.append(f"{self.max_steps} steps")
        if self.overrides:
            parts.append("--set " + " ".join(self.overrides))
        if self.off_tier:
            parts.append("off-tier")
        return ", ".join(parts)
