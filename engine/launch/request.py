"""The new-run form as the engine reads it: the presets picked, the typed fields, resolved into a RunConfig, and the
facts the review screen shows beside it (parameters, MACs, tier status, device), all without torch.

The TUI's review screen builds a `LaunchRequest` on the UI thread and asks `resolve` and `review_facts` in a worker
(STYLE.md: the TUI asks the engine, it does not compute). The figures come from the tier cache (a subprocess measures
a network that is not cached yet), the device from the cached device probe.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from typing import Any

from difftui.engine.config.ladders import tier_status
from difftui.engine.config.model import PresetError, RunConfig
from difftui.engine.config.schema import parse_integer
from difftui.engine.launch.checks import default_max_steps
from difftui.engine.launch.devices import DeviceProbe, describe_device, device_error, probe_devices
from difftui.engine.text import one_line

__all__ = ["LaunchRequest", "resolve_new_run", "review_facts"]


def resolve_new_run(catalog: Any, *, max_steps: int | str | None = None, overrides: list[str] | tuple = (),
                    probe: DeviceProbe | None = None, **choices: Any) -> tuple[RunConfig, bool]:
    """`catalog.resolve(...)` for a new run, with the max steps that fit the device when the user chose none
    (neither `max_steps` nor a --set recipe.total_steps): `checks.default_max_steps`.

    Returns (config, defaulted): `defaulted` is True when the device default replaced the recipe's steps."""
    overrides = list(overrides)
    config = catalog.resolve(max_steps=max_steps, overrides=overrides, **choices)
    chosen = max_steps is not None or any(o.split("=", 1)[0].strip() == "recipe.total_steps" for o in overrides)
    if chosen:
        return config, False
    steps = default_max_steps(config, probe)
    if steps == config.recipe.total_steps:
        return config, False
    return catalog.resolve(max_steps=steps, overrides=overrides, **choices), True


@dataclass(frozen=True)
class LaunchRequest:
    """What the form says, read on the UI thread and handed to a worker."""
    choices: tuple[tuple[str, str], ...]
    batch_size: str
    max_steps: str
    overrides: str
    off_tier: bool
    device: str = "auto"
    gpus: str = ""                                  # e.g. "0,1": one process per GPU through torchrun (DDP)
    slurm: dict[str, Any] | None = None             # a Slurm profile's options (the "where" choice): submit there

    def plan(self) -> Any:
        """How the run is launched (launch/plan.py's LaunchPlan); PresetError (one line) for a bad GPUs field."""
        from difftui.engine.launch.plan import LaunchPlan, plan_from_options
        if self.slurm is not None:
            if self.gpus.strip():
                raise PresetError("GPUs names this machine's GPUs; on Slurm the profile's gpus_per_node says how many")
            plan = LaunchPlan(slurm=dict(self.slurm))
            plan.slurm_options()                    # PresetError (one line) for a bad profile
            return plan
        try:
            return plan_from_options(self.gpus or None, option="GPUs")
        except ValueError as e:
            raise PresetError(str(e)) from None

    def resolve(self, preset_dirs: list, *, cwd: str | os.PathLike[str] | None = None,
                probe: DeviceProbe | None = None) -> RunConfig:
        """The RunConfig this form describes; PresetError (one line) when it does not compose.

        An empty max-steps field takes the default that fits the device (`checks.default_max_steps`), unless a
        --set recipe.total_steps chose it."""
        from difftui.engine.config.catalog import Catalog
        sets, max_steps = self._fields()
        choices = dict(self.choices)
        config, _ = resolve_new_run(Catalog(preset_dirs), max_steps=max_steps, overrides=sets, probe=probe,
                                    dataset=choices.get("datasets"), backbone=choices.get("backbones"),
                                    sampler=choices.get("samplers"), recipe=choices.get("recipes"),
                                    off_tier=self.off_tier, device=self.device, cwd=cwd)
        return config

    def spec(self) -> Any:
        """The run options this form describes (a sweeps.RunSpec, e.g. the base of a sweep); PresetError (one line)
        for a malformed field."""
        from difftui.engine.sweeps.spec import RunSpec
        sets, max_steps = self._fields()
        choices = dict(self.choices)
        return RunSpec(dataset=choices.get("datasets"), backbone=choices.get("backbones"),
                       sampler=choices.get("samplers"), recipe=choices.get("recipes"), overrides=tuple(sets),
                       max_steps=max_steps, device=self.device, off_tier=self.off_tier)

    def _fields(self) -> tuple[list[str], int | None]:
        """The typed fields as --set overrides and a max-steps count (None: the device default)."""
        try:
            sets = shlex.split(self.overrides)
        except ValueError as e:
            raise PresetError(f"--set: {e}") from None
        if self.batch_size.strip():
            try:
                batch = parse_integer(self.batch_size)
            except ValueError:
                raise PresetError(f"batch size: expected a whole number, got {self.batch_size.strip()!r}") from None
            sets.insert(0, f"recipe.batch_size={batch}")
        max_steps = None
        if self.max_steps.strip():
            try:
                max_steps = parse_integer(self.max_steps)
            except ValueError:
                max_steps = -1
            if max_steps < 1:
                raise PresetError(f"max steps: expected a whole number >= 1, got {self.max_steps.strip()!r}")
        return sets, max_steps


def review_facts(config: RunConfig, *, probe: DeviceProbe | None = None, measure: bool = True) -> dict[str, Any]:
    """What the review screen shows beside the config: params and macs of the run's network (or `error`), the tier
    status, the device in words (or `device_error`), and the new run's warnings.

    May take seconds the first time (a network not yet in the tier cache is measured in a subprocess, the device
    probe runs once per process): call it from a worker."""
    from difftui.engine.config.tier_figures import MeasureError, run_figures
    facts: dict[str, Any] = {"tier": tier_status(config.backbone), "warnings": config.warnings()}
    try:
        fig = run_figures(config, measure=measure)
    except (MeasureError, PresetError) as e:
        facts["error"] = one_line(e)
    else:
        if fig is not None:
            facts["params"], facts["macs"] = fig.params, fig.macs
    probe = probe_devices() if probe is None else probe
    problem = device_error(config.device, probe)
    if problem is None:
        facts["device"] = describe_device(config.device, probe)
    else:
        facts["device_error"] = problem
    return facts
