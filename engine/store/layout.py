"""The run-folder layout: where a run's and a sweep's files live beside runs.db, and their lock files.

    runs.db                      the database
    runs/<id>/                   a run: lock, run.json, config.yaml, x_T.pt, checkpoints/, grids/, engine.log, eval.log
    runs/<id>/spool/             a spool-mode run's records (issue 17): run.jsonl (rank 0's loop), gpu.<rank>.jsonl
                                 (its heartbeat thread), eval.<key>.jsonl (each evaluator it starts), heartbeat.json
    runs/<id>/commands/          commands to a spool-mode engine, one file each; a taken one moves to commands/done/
    sweeps/<id>/                 a sweep: lock, supervisor.log
    <stem>-runs/, <stem>-sweeps/ the same beside a database with another name (other.db -> other-runs/)

Each run and sweep records its folder (`runs.run_dir`, `sweeps.sweep_dir`) when it is created, so a folder chosen by
an earlier rule is kept. A new folder is always empty: `claim_folder` never takes over what a deleted or replaced
database left behind (its checkpoints or lock).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

__all__ = ["runs_root", "sweeps_root", "claim_folder", "run_lock_path", "sweep_lock_path", "remove_run_folder",
           "FolderTaken", "RUN_JSON", "SPOOL_DIR", "COMMANDS_DIR", "HEARTBEAT_FILE", "spool_dir", "commands_dir",
           "heartbeat_path", "run_json_path"]

RUN_JSON = "run.json"                               # the run's identity for an engine that never opens runs.db
SPOOL_DIR = "spool"
COMMANDS_DIR = "commands"
HEARTBEAT_FILE = "heartbeat.json"

MAX_SUFFIX = 1000                                   # <id>.1 ... <id>.999 before giving up


class FolderTaken(RuntimeError):
    """No free folder for a new run or sweep (the store turns it into a StoreError naming the file)."""


def _beside(db_path: Path, kind: str) -> Path:
    """runs/ or sweeps/ beside runs.db, <stem>-runs/ or <stem>-sweeps/ beside any other database file, so that two
    databases in one directory never share a run's or a sweep's folder."""
    path = Path(db_path).resolve()
    if path.name == "runs.db":
        return path.parent / kind
    return path.parent / (f"{path.stem}-{kind}" if path.suffix == ".db" else f"{path.name}-{kind}")


def runs_root(db_path: Path) -> Path:
    return _beside(db_path, "runs")


def sweeps_root(db_path: Path) -> Path:
    return _beside(db_path, "sweeps")


def claim_folder(root: Path, item_id: int) -> Path:
    """A new, empty folder <root>/<id>, or <root>/<id>.<k> where <id> is left from a database that was deleted or
    replaced: its checkpoints or lock must neither be taken over by the new run or sweep nor be overwritten."""
    root.mkdir(parents=True, exist_ok=True)
    for k in range(MAX_SUFFIX):
        folder = root / (str(item_id) if k == 0 else f"{item_id}.{k}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            if folder.is_dir() and not any(folder.iterdir()):
                return folder
    raise FolderTaken(f"{root}: no free folder for {item_id} ({item_id}.1 ... {item_id}.{MAX_SUFFIX - 1} are all "
                      f"taken)")


def run_lock_path(run: dict[str, Any]) -> Path | None:
    """runs/<id>/lock: held by the run's engine for its whole life (difftui.engine.launch.lock)."""
    return Path(run["run_dir"]) / "lock" if run.get("run_dir") else None


def sweep_lock_path(sweep: dict[str, Any]) -> Path | None:
    """sweeps/<id>/lock: held by the sweep's supervisor for its whole life (difftui.engine.launch.lock)."""
    return Path(sweep["sweep_dir"]) / "lock" if sweep.get("sweep_dir") else None


def remove_run_folder(run: dict[str, Any]) -> None:
    """Delete runs/<id>/ with everything in it (once the run's rows are gone; a folder already gone is fine)."""
    if run.get("run_dir") and Path(run["run_dir"]).is_dir():
        shutil.rmtree(run["run_dir"], ignore_errors=True)


def run_json_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / RUN_JSON


def spool_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / SPOOL_DIR


def commands_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / COMMANDS_DIR


def heartbeat_path(run_dir: str | Path) -> Path:
    return spool_dir(run_dir) / HEARTBEAT_FILE
