"""A grid preset and the user's choices -> the sweep's members, every one validated before anything is created.

The members are the cartesian product of the chosen values of each axis, in the preset's axis order. A value off the
paper's grid (playbook 1.8: discrete grids, so that results stay comparable) is refused with one line unless the user
says `off_grid`; such a member is marked off-grid wherever it is shown. Each member's config is resolved by
`Catalog.resolve` (through `RunSpec`) with its axis values as `--set` overrides or preset names, and checked against
the grid's scope (e.g. the A.2 lambda grids apply only to DyDiT tiers).
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import yaml

from difftui.engine.config.model import GRID_PRESET_AXES, PresetError, RunConfig, SweepGrid, same_value
from difftui.engine.numbers import format_setting
from difftui.engine.sweeps.spec import RunSpec, yaml_value

__all__ = ["Member", "SweepPlan", "plan_sweep", "parse_value", "parse_values_option", "member_label",
           "grid_record"]


@dataclass(frozen=True)
class Member:
    axis_values: dict[str, Any]                     # axis key -> value
    off_grid: bool
    config: RunConfig


@dataclass(frozen=True)
class SweepPlan:
    """What a sweep will run: the grid, the values chosen per axis, the base options and the resolved members."""
    grid: SweepGrid
    spec: RunSpec
    axes: dict[str, list[Any]]                      # chosen values per axis (grid order, then custom values)
    off_grid: dict[str, list[Any]] = field(default_factory=dict)
    members: list[Member] = field(default_factory=list)

    @property
    def total_steps(self) -> int:
        return sum(m.config.recipe.total_steps for m in self.members)


def parse_value(text: str) -> Any:
    """A value typed by the user, read as YAML ('0.1' -> 0.1, 'cosine' -> 'cosine', '1e-4' -> 0.0001)."""
    text = text.strip()
    if not text:
        raise PresetError("empty value")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = text
    if isinstance(value, str):
        try:
            value = float(value)                     # YAML 1.1 reads 1e-4 as a string
        except ValueError:
            pass
    if isinstance(value, (dict, list)) or value is None:
        raise PresetError(f"value {text!r}: expected a number, a word or true/false")
    return value


def parse_values_option(grid: SweepGrid, items: Iterable[str]) -> dict[str, list[Any]]:
    """`--values 0.1,0.3` (a grid with one axis) or `--values recipe.dropout=0.1,0.3` (repeatable) -> {axis: values}."""
    out: dict[str, list[Any]] = {}
    keys = list(grid.axes)
    for item in items:
        key, sep, rest = item.partition("=")
        if sep and key.strip() in grid.axes:
            key, text = key.strip(), rest
        elif sep and "." in key and not key.strip().replace(".", "").isdigit():
            raise PresetError(f"--values {item}: grid '{grid.name}' has no axis {key.strip()!r} "
                              f"(axes: {', '.join(keys)})")
        elif len(keys) == 1:
            key, text = keys[0], item
        else:
            raise PresetError(f"--values {item}: grid '{grid.name}' has {len(keys)} axes; name one, e.g. "
                              f"--values {keys[-1]}=...")
        values = [parse_value(v) for v in text.split(",") if v.strip()]
        if not values:
            raise PresetError(f"--values {item}: no values")
        out.setdefault(key, []).extend(values)
    return out


def member_label(axis_values: Mapping[str, Any]) -> str:
    """'dropout=0.1 schedule=cosine' (the last part of each key)."""
    return " ".join(f"{k.split('.')[-1]}={format_setting(v)}" for k, v in axis_values.items())


def _dedupe(values: Iterable[Any]) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if not any(same_value(v, o) for o in out):
            out.append(v)
    return out


def choose_values(grid: SweepGrid, values: Mapping[str, list[Any]] | None, off_grid: bool
                  ) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
    """The chosen values per axis (every grid value when an axis is not named) and the off-grid ones among them."""
    values = dict(values or {})
    unknown = [k for k in values if k not in grid.axes]
    if unknown:
        raise PresetError(f"grid '{grid.name}' has no axis {unknown[0]!r} (axes: {', '.join(grid.axes)})")
    axes: dict[str, list[Any]] = {}
    off: dict[str, list[Any]] = {}
    for key, paper in grid.axes.items():
        chosen = _dedupe(values.get(key, paper))
        if not chosen:
            raise PresetError(f"grid '{grid.name}': no value chosen for {key}")
        outside = [v for v in chosen if not grid.on_grid(key, v)]
        if outside and not off_grid:
            raise PresetError(f"{key}={format_setting(outside[0])} is off the '{grid.name}' grid (playbook "
                              f"{grid.playbook}: {', '.join(format_setting(v) for v in paper)}); choose off-grid "
                              f"(--off-grid) to run it anyway")
        # A value typed as 0.10 that is on the grid takes the grid's own spelling.
        axes[key] = [next((p for p in paper if grid.on_grid(key, v) and _eq(p, v)), v) for v in chosen]
        if outside:
            off[key] = outside
    return axes, off


def _eq(a: Any, b: Any) -> bool:
    return same_value(a, b)


def resolve_member(catalog: Any, grid: SweepGrid, spec: RunSpec, axis_values: Mapping[str, Any], *,
                   device: str | None = None, name: str = "") -> RunConfig:
    """One member's validated config: the base options with its axis values; refused when out of the grid's scope."""
    replace: dict[str, Any] = {"name": name}
    if device is not None:
        replace["device"] = device
    # The axis decides its key: a base override of that key (the base may itself be a member of an earlier sweep)
    # is dropped, and a preset axis (backbone: [...]) replaces the base's preset together with its overrides.
    def decided(override: str) -> bool:
        key = override.split("=", 1)[0].strip()
        return any(key == k or (k in GRID_PRESET_AXES and key.startswith(f"{k}.")) for k in axis_values)

    replace["overrides"] = tuple(o for o in spec.overrides if not decided(o))
    sets = []
    for key, value in axis_values.items():
        if key in GRID_PRESET_AXES:
            replace[key] = value
        else:
            sets.append(f"{key}={yaml_value(value)}")
    # The grid's scope first: a lambda grid on a static tier is refused as such, not by the rule its values break.
    from difftui.engine.config.catalog import DEFAULTS, new_run_choices
    from difftui.engine.config.model import to_dict
    recipe = replace.get("recipe", spec.recipe) or DEFAULTS["recipes"]
    backbone = replace.get("backbone", spec.backbone) or new_run_choices(
        to_dict(catalog.get("recipes", recipe)), dataset=replace.get("dataset", spec.dataset), backbone=None,
        sampler=None, recipe_name=recipe)["backbones"]
    refusal = grid.refusal(backbone=backbone, family=catalog.get("backbones", backbone).family, recipe=recipe)
    if refusal:
        raise PresetError(refusal)
    return spec.resolve(catalog, sets, **replace)


def plan_sweep(catalog: Any, grid: SweepGrid | str, spec: RunSpec, *, values: Mapping[str, list[Any]] | None = None,
               off_grid: bool = False, device: str | None = None, name: str = "sweep") -> SweepPlan:
    """Expand and validate every member (nothing is created). `device` replaces the base's (a GPU sweep runs each
    member on "cuda", its slot's GPU being the only one it sees)."""
    if isinstance(grid, str):
        grid = catalog.get("sweeps", grid)
    axes, off = choose_values(grid, values, off_grid)
    members = []
    for point in itertools.product(*axes.values()):
        axis_values = dict(zip(axes, point, strict=False))
        is_off = any(any(_eq(v, o) for o in off.get(k, ())) for k, v in axis_values.items())
        config = resolve_member(catalog, grid, spec, axis_values, device=device,
                                name=f"{name}-{member_label(axis_values).replace(' ', '-')}")
        members.append(Member(axis_values, is_off, config))
    return SweepPlan(grid=grid, spec=dataclasses.replace(spec, device=device) if device else spec, axes=axes,
                     off_grid=off, members=members)


def grid_record(plan: SweepPlan) -> dict[str, Any]:
    """What the sweeps.grid column keeps: the preset, its playbook section, the paper's values and the choice."""
    return {"preset": plan.grid.name, "playbook": plan.grid.playbook, "paper": dict(plan.grid.axes),
            "axes": plan.axes, "off_grid": plan.off_grid}
