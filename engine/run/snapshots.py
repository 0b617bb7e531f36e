"""Network snapshots every K kimg (playbook 5.6; P3 saves one every 2.5 Mimg and reports the best by FID).

A snapshot is the EMA weights alone, `runs/<id>/snapshots/snapshot-<step>.pt` (edm's network-snapshot-*.pkl), kept
apart from the rolling resume checkpoints: checkpoints are rotated away, snapshots never are. Each may be evaluated
as soon as it is written, in an evaluator process of its own (`python -m difftui.engine eval ... --pending-snapshots`),
with the run's fixed deterministic sampler and NFE at the quick sample count, so training never waits for it; the
evaluator marks the best snapshot in runs.db (`runs.best_snapshot`).

The training loop calls one function after each optimizer step:

    if snapshots.maybe_write(run_dir, step, batch_size, ema_net, recipe.snapshot_kimg) is not None:
        if recipe.snapshot_eval:
            snapshots.start_evaluation(db_path, run_id)          # (job id, process)

Files are written atomically and loaded with `weights_only=True` (tensors and plain numbers only).
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

import torch

from difftui.engine.atomic import atomic_write

__all__ = ["SNAPSHOT_FORMAT", "snapshot_dir", "snapshot_path", "is_due", "write_snapshot", "maybe_write",
           "list_snapshots", "load_snapshot", "start_evaluation"]

SNAPSHOT_FORMAT = "difftui-snapshot-1"
_NAME = re.compile(r"^snapshot-(\d+)\.pt$")


def snapshot_dir(run_dir: str | os.PathLike[str]) -> Path:
    return Path(run_dir) / "snapshots"


def snapshot_path(run_dir: str | os.PathLike[str], step: int) -> Path:
    return snapshot_dir(run_dir) / f"snapshot-{step:07d}.pt"


def is_due(step: int, batch_size: int, every_kimg: float) -> bool:
    """True when the images seen cross a multiple of `every_kimg` thousand at this step (every_kimg <= 0: never)."""
    if every_kimg <= 0 or step <= 0:
        return False
    before = (step - 1) * batch_size / 1000.0
    after = step * batch_size / 1000.0
    return math.floor(after / every_kimg) > math.floor(before / every_kimg)


def write_snapshot(run_dir: str | os.PathLike[str], step: int, batch_size: int, ema_net: torch.nn.Module) -> Path:
    """Write the EMA weights (on the CPU) as snapshot-<step>.pt, atomically; a resumed run rewrites the same name."""
    state: dict[str, Any] = {
        "format": SNAPSHOT_FORMAT,
        "step": int(step),
        "kimg": step * batch_size / 1000.0,
        "ema": {k: v.detach().to("cpu", copy=True) for k, v in ema_net.state_dict().items()},
    }
    return atomic_write(snapshot_path(run_dir, step), lambda f: torch.save(state, f))


def maybe_write(run_dir: str | os.PathLike[str], step: int, batch_size: int, ema_net: torch.nn.Module,
                every_kimg: float) -> Path | None:
    """The loop's hook after each optimizer step: write a snapshot when `step` crosses a multiple of `every_kimg`
    kimg; returns its path, or None when none was due."""
    if not is_due(step, batch_size, every_kimg):
        return None
    return write_snapshot(run_dir, step, batch_size, ema_net)


def list_snapshots(run_dir: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    """(step, path) of every snapshot of the run, oldest first (temp files ignored)."""
    folder = snapshot_dir(run_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return sorted(found)


def load_snapshot(path: str | os.PathLike[str], map_location: torch.device | str = "cpu") -> dict[str, Any]:
    """{"format", "step", "kimg", "ema": state dict}; ValueError (one line naming the file) when unreadable."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        raise ValueError(f"{path}: not a readable snapshot ({type(e).__name__}: {' '.join(str(e).split())[:160]})") \
            from None
    if not isinstance(state, dict) or state.get("format") != SNAPSHOT_FORMAT:
        raise ValueError(f"{path}: not a difftui snapshot (format {state.get('format') if isinstance(state, dict) else '?'})")
    return state


def start_evaluation(db_path: str | os.PathLike[str] | None, run_id: int, *, device: str | None = None,
                     spool: str | os.PathLike[str] | None = None):
    """Start the evaluator for the run's snapshots that have no FID yet (own process, own session); returns
    (job id, Popen). One evaluator per run: if one is already at work it takes the new snapshot before it exits.
    A spool-mode engine passes its run folder (`spool`): the evaluator writes records there too, and names its job
    itself (job id None here)."""
    from difftui.engine.eval.jobs import spawn_evaluator, spawn_spool_evaluator
    args = ["--pending-snapshots"] + (["--device", device] if device else [])
    if spool is not None:
        return None, spawn_spool_evaluator(spool, run_id, args)
    return spawn_evaluator(db_path, run_id, args, kind="snapshot-eval")
