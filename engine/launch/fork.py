"""Fork: a new run that starts from another run's checkpoint at a chosen step, with changed settings (issue 18 item 3;
W&B calls it rewind / fork). The one engine call that `difftui fork` and the TUI's fork review make.

    fork_points(db, run_id)                      the steps of the run's finished checkpoints (what a fork can start at)
    plan_fork(db, parent_id, step, overrides)    what a fork would do, known before anything is created (ForkPlan)
    fork_run(db, parent_id, step, overrides)     plan it, run the launch checks, create the child, copy the parent's
                                                 checkpoint and x_T into the child's folder, start it -> Outcome

The child's config is the parent's stored config with the `--set KEY=VALUE` overrides, validated by the config model
exactly as `--set` on a new run is (catalog.resolve does the same two steps on a tree of presets). It continues from
the parent's checkpoint at the asked step, or the nearest one before it (said so): model, EMA, optimizer moments, the
objective's state, the data position and the RNG streams, with the new config (an lr change applies from the fork
on; the trainer keeps the optimizer's moments and takes the new config's optimizer settings). Its metrics start at
that step, so the compare view aligns parent and child by step. The checkpoint and x_T are copied, never linked: the
fork keeps working when the parent is deleted. A running parent can be forked: checkpoints are written atomically
(temp file, fsync, rename), only finished `ckpt-<step>.pt` files are listed, and the file is opened before it is
copied, so a rotation that deletes it meanwhile leaves the copy whole.

A change of the network's shape (the backbone's structure, the data's channels or resolution, the objective's output
channels, the objective family) cannot continue from a checkpoint: the fork says so in one line, and with
`fresh=True` starts the child from step 0 instead (its parent is still recorded, without a fork step).

Torch-free (the TUI and the CLI call it in their own light process).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from difftui.engine.atomic import atomic_write
from difftui.engine.config.archs import parse_arch
from difftui.engine.config.catalog import config_from_dict, config_to_dict
from difftui.engine.config.model import (
    PresetError,
    RunConfig,
    apply_overrides,
    parse_override,
    run_config_from_dict,
)
from difftui.engine.config.schema import parse_integer
from difftui.engine.launch import liveness
from difftui.engine.launch.checks import data_error, launch_checks
from difftui.engine.launch.outcome import LaunchError, Outcome
from difftui.engine.launch.plan import LaunchPlan
from difftui.engine.numbers import format_setting
from difftui.engine.store import Store
from difftui.engine.store.layout import remove_run_folder
from difftui.engine.sweeps.spec import config_diff

__all__ = ["ForkPlan", "fork_points", "plan_fork", "fork_run", "shape_change", "lineage"]

CHECKPOINTS = "checkpoints"
X_T = "x_T.pt"
CKPT_NAME = "ckpt-{step:07d}.pt"                   # engine/run/checkpoint.py's name (save_checkpoint)
# Arch keys that change no parameter's shape: a fork may change them and go on from the checkpoint. Every other arch
# key is structural (a conservative list: a key not named here refuses the continuation).
NON_STRUCTURAL_ARCH = ("dropout", "class_dropout_prob", "router_tau", "router_threshold", "width_router_bias",
                       "token_router_bias", "warmup_steps")
COPY_TRIES = 3                                      # a running parent's rotation may delete the file between list/open


@dataclass(frozen=True)
class ForkPlan:
    """What a fork would do: the child's config, what changed, and where it starts."""
    parent: dict[str, Any]                          # the parent's runs row
    config: RunConfig                               # the child's resolved config
    changes: tuple[tuple[str, Any, Any], ...]       # (dotted key, parent's value, child's value)
    asked: int | None                               # the step asked for (None: the newest checkpoint)
    step: int | None                                # the checkpoint's step the child starts at; None when fresh
    checkpoint: Path | None                         # the parent's checkpoint file; None when fresh
    shape: str | None                               # why the change cannot continue from a checkpoint (None: it can)
    same_data_shape: bool                           # x_T carries over

    @property
    def fresh(self) -> bool:
        return self.step is None

    def where(self) -> str:
        """Where the child starts, in words: 'at step 800 (ckpt-0000800.pt; asked 850)' or 'from step 0 (fresh)'."""
        if self.fresh:
            return "from step 0 (a fresh start with its settings)"
        note = f"; asked {self.asked:,}" if self.asked is not None and self.asked != self.step else ""
        return f"at step {self.step:,} ({self.checkpoint.name}{note})"

    def describe_changes(self) -> str:
        if not self.changes:
            return "no change"
        return ", ".join(f"{k} {format_setting(a)} -> {format_setting(b)}" for k, a, b in self.changes)


#----------------------------------------------------------------------------
# The parent's checkpoints.

def _checkpoint_dir(run: dict[str, Any]) -> Path | None:
    return Path(run["run_dir"]) / CHECKPOINTS if run.get("run_dir") else None


def _finished_checkpoints(folder: Path | None) -> list[tuple[int, Path]]:
    """(step, path) of every finished checkpoint, oldest first: `ckpt-<step>.pt` only (never an atomic write's
    `.ckpt-*.tmp`, never a quarantined `.bad`). engine/run/checkpoint.list_checkpoints' rule, without torch."""
    if folder is None or not folder.is_dir():
        return []
    found = []
    for p in folder.iterdir():
        name = p.name
        if name.startswith("ckpt-") and name.endswith(".pt") and name[5:-3].isdigit():
            found.append((int(name[5:-3]), p))
    return sorted(found)


def fork_points(db_path: str | os.PathLike[str], run_id: int) -> list[int]:
    """The steps a fork of run `run_id` can start at (its finished checkpoints, oldest first)."""
    with Store(db_path, create=False) as store:
        run = store.get_run(run_id)
    if run is None:
        raise LaunchError(f"no run {run_id} in {db_path}")
    return [s for s, _ in _finished_checkpoints(_checkpoint_dir(run))]


def _pick(run: dict[str, Any], asked: int | None) -> tuple[int, Path]:
    found = _finished_checkpoints(_checkpoint_dir(run))
    if not found:
        raise LaunchError(f"run {run['id']} has no checkpoint to fork from (it writes one every "
                          f"recipe.snapshot_every steps and when it stops)")
    if asked is None:
        return found[-1]
    before = [(s, p) for s, p in found if s <= asked]
    if not before:
        steps = ", ".join(f"{s:,}" for s, _ in found)
        raise LaunchError(f"run {run['id']} has no checkpoint at or before step {asked:,} (its checkpoints: {steps}; "
                          f"it keeps the newest recipe.keep_snapshots)")
    return before[-1]


#----------------------------------------------------------------------------
# Whether a change can continue from a checkpoint.

def _network(config: RunConfig) -> dict[str, Any]:
    """What fixes the shapes of the network's parameters (and what its output means): the family, the structural
    arch keys, the data's channels and resolution, the objective's output channels, the classes, the objective."""
    arch = parse_arch(config.backbone)
    structural = {f"backbone.arch.{k}": getattr(arch, k) for k in type(arch).__dataclass_fields__
                  if k not in NON_STRUCTURAL_ARCH}
    channels, side, _ = config.dataset.model_shape
    return {"backbone.family": config.backbone.family, **structural,
            "data channels": channels, "data resolution": side,
            "output channels (recipe.variance)": config.out_channels,
            "classes (recipe.class_conditional)": config.num_classes,
            "objective (recipe.loss edm or not)": "edm" if config.recipe.loss == "edm" else "ddpm"}


def shape_change(parent: RunConfig, child: RunConfig) -> str | None:
    """Why `child` cannot continue from a checkpoint of `parent` (None when it can): the first thing that changes the
    network's parameters or what its output means."""
    a, b = _network(parent), _network(child)
    for key in a:
        if a[key] != b.get(key):
            return f"{key} {format_setting(_plain(a[key]))} -> {format_setting(_plain(b.get(key)))}"
    return None


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


#----------------------------------------------------------------------------
# Planning.

def _child_config(parent: dict[str, Any], overrides: list[str], *, max_steps: int | None, name: str,
                  cwd: Any) -> RunConfig:
    """The parent's stored config with the overrides, validated as a new run's (PresetError: one line)."""
    tree = json.loads(parent["config"])
    parsed = [parse_override(o) for o in overrides]
    if max_steps is not None:
        parsed.append(("recipe.total_steps", max_steps))
    tree = apply_overrides(tree, parsed)
    tree["name"] = name
    return run_config_from_dict(tree, f"fork of run {parent['id']}", new_run=True,
                                cwd=Path.cwd() if cwd is None else cwd)


def plan_fork(db_path: str | os.PathLike[str], parent_id: int, step: int | str | None = None,
              overrides: list[str] | tuple = (), *, fresh: bool = False, max_steps: int | str | None = None,
              name: str = "", cwd: Any = None) -> ForkPlan:
    """What forking run `parent_id` at `step` (None: its newest checkpoint) with `overrides` would do. Refuses in one
    line (LaunchError, or PresetError for the config) when it cannot: no such run, no checkpoint at or before the
    step, a shape change without `fresh`, no step left to train."""
    asked = _steps(step, "--step")
    total = _steps(max_steps, "--max-steps")
    with Store(db_path, create=False) as store:
        liveness.reap_dead_runs(store)
        parent = store.get_run(parent_id)
    if parent is None:
        raise LaunchError(f"no run {parent_id} in {db_path}")
    config = _child_config(parent, list(overrides), max_steps=total, name=name, cwd=cwd)
    parent_config = config_from_dict(json.loads(parent["config"]), f"run {parent_id} config")
    child_dict, parent_dict = config_to_dict(config), json.loads(parent["config"])
    changes = tuple((k, v[0], v[1]) for k, v in config_diff([parent_dict, child_dict]))
    shape = shape_change(parent_config, config)
    same_data = parent_config.dataset.model_shape == config.dataset.model_shape
    if shape is not None and not fresh:
        raise LaunchError(f"run {parent_id} cannot be forked from a checkpoint with this change: {shape} changes "
                          f"the network's parameters (a checkpoint's weights do not fit it); fork --fresh starts "
                          f"the changed settings from step 0")
    if fresh:
        return ForkPlan(parent, config, changes, asked, None, None, shape, same_data)
    at, path = _pick(parent, asked)
    if at >= config.recipe.total_steps:
        raise LaunchError(f"the fork would start at step {at:,} of {config.recipe.total_steps:,}: nothing left to "
                          f"train; pass --max-steps N (N > {at:,})")
    return ForkPlan(parent, config, changes, asked, at, path, None, same_data)


def _steps(value: int | str | None, option: str) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        n = parse_integer(value) if isinstance(value, str) else int(value)
    except ValueError:
        raise LaunchError(f"{option}: expected a whole number, got {value!r}") from None
    if n < (0 if option == "--step" else 1):
        raise LaunchError(f"{option}: expected >= {0 if option == '--step' else 1}, got {n}")
    return n


#----------------------------------------------------------------------------
# Doing it.

def _copy_into(src: Path, folder: Path) -> Path:
    """Copy `src` into `folder` atomically (the reader sees the whole file or none). The source is opened first: a
    rotation that deletes it afterwards leaves the open file whole. A full disk is said as such, in one line."""
    need = src.stat().st_size
    free = shutil.disk_usage(folder if folder.exists() else folder.parent).free
    if free < need + 2**20:
        raise LaunchError(f"disk full: cannot copy {src.name} into {folder} (needs about {need / 2**20:.0f} MB, "
                          f"{free / 2**20:.0f} MB free on that device)")
    with open(src, "rb") as f:
        try:
            return atomic_write(folder / src.name, lambda out: shutil.copyfileobj(f, out, 1 << 20))
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise LaunchError(f"disk full: cannot copy {src.name} into {folder}") from None
            raise LaunchError(f"cannot copy {src} into {folder}: {e.strerror or e}") from None


def _copy_checkpoint(parent: dict[str, Any], plan: ForkPlan, folder: Path) -> tuple[int, Path]:
    """The plan's checkpoint copied into the child's checkpoints/ (a running parent may have rotated it away since
    the plan: then the nearest finished one at or before the asked step, said by the returned step)."""
    step, path = plan.step, plan.checkpoint
    for _ in range(COPY_TRIES):
        try:
            return step, _copy_into(path, folder / CHECKPOINTS)
        except FileNotFoundError:
            step, path = _pick(parent, plan.asked if plan.asked is not None else plan.step)
    raise LaunchError(f"run {parent['id']}'s checkpoints rotate faster than they can be copied; fork from its newest "
                      f"one or stop it first")


def fork_run(db_path: str | os.PathLike[str], parent_id: int, step: int | str | None = None,
             overrides: list[str] | tuple = (), *, fresh: bool = False, max_steps: int | str | None = None,
             name: str = "", plan: LaunchPlan | None = None,
             check_data: Callable[[Any], str | None] | None = data_error, probe: Any = None) -> Outcome:
    """Fork run `parent_id` (the module docstring): plan, launch checks, child row, copies, start. Nothing is left
    behind when a step before the start fails (the child's row and folder are removed, the one line raised)."""
    from difftui.engine.config.batch import batch_split_error
    from difftui.engine.launch.backends import SlurmJob
    from difftui.engine.launch.runs import create_run, start_run
    fork = plan_fork(db_path, parent_id, step, overrides, fresh=fresh, max_steps=max_steps, name=name)
    parent = fork.parent
    launch = plan or LaunchPlan.from_json(parent.get("launch"))
    if launch.slurm is not None:                    # a Slurm parent's fork is submitted as its parent was (issue 17)
        from difftui.engine.launch.slurm.checks import check_submission
        report = check_submission(db_path, fork.config, launch.slurm_options(), check_data=check_data)
    else:
        report = launch_checks(fork.config, probe=probe, check_data=check_data)
    if not report.ok:
        raise LaunchError(report.errors[0])
    if (problem := batch_split_error(fork.config.recipe.batch_size, launch.processes)) is not None:
        raise PresetError(problem)
    child = create_run(db_path, fork.config, parent_id=parent_id, plan=launch,
                       sink="spool" if launch.slurm is not None else "db")     # runs.new_run's rule
    try:
        with Store(db_path, create=False) as store:
            folder = Path(store.require_run(child)["run_dir"])
        where = f"from step 0 (fresh: {fork.shape or 'asked for'})"
        at = 0
        if not fork.fresh:
            at, copied = _copy_checkpoint(parent, fork, folder)
            asked = f"; asked {fork.asked:,}" if fork.asked not in (None, at) else ""
            where = f"at step {at:,} ({copied.name}{asked})"
        x_T = Path(parent["run_dir"]) / X_T if parent.get("run_dir") else None
        if fork.same_data_shape and x_T is not None and x_T.exists():
            _copy_into(x_T, folder)                 # playbook 5.0: the same fixed noise, so the grids compare
        with Store(db_path, create=False) as store:
            store.update_run(child, fork_step=at)
            store.add_event(child, "info", f"fork of run {parent_id} {where}; changed: {fork.describe_changes()}")
    except BaseException:
        _discard(db_path, child)
        raise
    started = start_run(db_path, child, launch)
    said = f"run {child} forked from run {parent_id} {where}; {fork.describe_changes()}"
    if isinstance(started, SlurmJob):               # the job's engine finds the copied checkpoint and resumes from it
        return Outcome(child, f"{said} (submitted to Slurm as job {started.key})", slurm_job=started.key)
    return Outcome(child, f"{said} (pid {started.pid})", proc=started)


def _discard(db_path: str | os.PathLike[str], run_id: int) -> None:
    """Remove a child that never started (its rows and its folder)."""
    with Store(db_path, create=False) as store:
        run = store.get_run(run_id)
        store.delete_run_rows(run_id)
    if run is not None:
        remove_run_folder(run)


#----------------------------------------------------------------------------
# Lineage, in words.

def lineage(run: dict[str, Any]) -> str:
    """'fork of 3 @ 400', 'fork of 3 @ 0' (a fresh start), 'clone of 3', or '' (what the history and `show` print)."""
    parent = run.get("parent_id")
    if not parent:
        return ""
    if run.get("fork_step") is not None:
        return f"fork of {parent} @ {run['fork_step']}"
    return f"clone of {parent}"
