"""Starting, resuming and stopping engine processes (the process model of DESIGN.md).

The TUI and the CLI never train in their own process: they create a `runs` row and spawn
`python -m difftui.engine train RUN_ID --db PATH` with an argv list (never a shell string), stdin from /dev/null,
stdout and stderr appended to runs/<id>/engine.log, in a new session so that closing the terminal or the TUI does not
stop the run. The engine then owns the row's status until it ends; a process that dies without a final status is
marked crashed by `Store.reap_dead_runs()`.

Multi-GPU (torchrun --nproc-per-node K -m difftui.engine train ...) is a later issue: `engine_argv` is the one place
that builds the command line, so it is the seam where a torchrun launcher goes.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import yaml

from difftui.engine.atomic import atomic_write_text
from difftui.engine.catalog import config_to_dict
from difftui.engine.config import RunConfig
from difftui.engine.store import ACTIVE_STATUSES, Store, StoreError

__all__ = ["create_run", "engine_argv", "spawn_engine", "launch", "resume", "request_stop", "run_dir"]


def run_dir(store: Store, run_id: int) -> Path:
    run = store.get_run(run_id)
    if run is None:
        raise StoreError(f"{store.path}: no run {run_id}")
    return Path(run["run_dir"])


def create_run(db_path: str | os.PathLike[str], config: RunConfig, *, sweep_id: int | None = None,
               parent_id: int | None = None) -> int:
    """Insert a queued run with its resolved config; write runs/<id>/config.yaml. Returns the run id."""
    data = config_to_dict(config)
    with Store(db_path) as store:
        run_id = store.create_run(data, name=config.name or "", total_steps=config.recipe.total_steps,
                                  device=config.device, sweep_id=sweep_id, parent_id=parent_id)
        name = config.name or f"{config.dataset.name}-{config.backbone.name}-{run_id}"
        store.update_run(run_id, name=name)
        folder = run_dir(store, run_id)
    atomic_write_text(folder / "config.yaml", yaml.safe_dump(data, sort_keys=False))
    return run_id


def engine_argv(db_path: str | os.PathLike[str], run_id: int) -> list[str]:
    """The engine command line (one process, one device). The seam for a torchrun launcher later."""
    return [sys.executable, "-m", "difftui.engine", "train", str(run_id), "--db", str(Path(db_path).resolve())]


def spawn_engine(db_path: str | os.PathLike[str], run_id: int) -> subprocess.Popen:
    """Start the engine for an existing run, detached from this terminal; record its pid and host at once."""
    with Store(db_path) as store:
        folder = run_dir(store, run_id)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "engine.log", "ab") as log, open(os.devnull, "rb") as devnull:
            proc = subprocess.Popen(engine_argv(db_path, run_id), stdin=devnull, stdout=log, stderr=subprocess.STDOUT,
                                    cwd=folder, start_new_session=True, close_fds=True)
        # The engine takes seconds to import torch before it sets 'running'; only a run it has not yet claimed gets
        # 'queued' (and the fresh pid, so that `reap_dead_runs` sees the process while it starts).
        with store.atomic():
            store.db.execute(
                "UPDATE runs SET pid = ?, host = ?, status = CASE WHEN status IN ('running', 'stopping')"
                " THEN status ELSE 'queued' END, error = NULL, ended = NULL WHERE id = ?",
                [proc.pid, socket.gethostname(), run_id])
    return proc


def launch(db_path: str | os.PathLike[str], config: RunConfig, *, sweep_id: int | None = None) -> int:
    """Create a run and start its engine; returns the run id (the process runs on after this returns)."""
    run_id = create_run(db_path, config, sweep_id=sweep_id)
    spawn_engine(db_path, run_id)
    return run_id


def resume(db_path: str | os.PathLike[str], run_id: int, *, total_steps: int | None = None) -> subprocess.Popen:
    """Continue a run from its newest checkpoint in a new engine process. Refuses a run that is still alive.

    `total_steps` (optional) sets a new end, e.g. to train a completed run further."""
    with Store(db_path, create=False) as store:
        store.reap_dead_runs()
        run = store.get_run(run_id)
        if run is None:
            raise StoreError(f"{store.path}: no run {run_id}")
        if run["status"] in ACTIVE_STATUSES:
            raise RuntimeError(f"run {run_id} is still {run['status']} (pid {run['pid']}); stop it first")
        if total_steps is not None:
            if total_steps < run["step"]:
                raise RuntimeError(f"run {run_id} is already at step {run['step']}, past --max-steps {total_steps}")
            config = json.loads(run["config"])
            config["recipe"]["total_steps"] = total_steps
            store.update_run(run_id, config=json.dumps(config), total_steps=total_steps)
            atomic_write_text(Path(run["run_dir"]) / "config.yaml", yaml.safe_dump(config, sort_keys=False))
            run = store.get_run(run_id)
        if run["status"] == "completed" and run["step"] >= (run["total_steps"] or 0):
            raise RuntimeError(f"run {run_id} already completed all {run['total_steps']} steps "
                               f"(resume with a larger --max-steps to train further)")
    return spawn_engine(db_path, run_id)


def request_stop(db_path: str | os.PathLike[str], run_id: int) -> None:
    """Ask a live engine to checkpoint and exit; it answers by setting status 'stopped'."""
    with Store(db_path, create=False) as store:
        run = store.get_run(run_id)
        if run is None:
            raise StoreError(f"{store.path}: no run {run_id}")
        if run["status"] not in ACTIVE_STATUSES:
            raise RuntimeError(f"run {run_id} is not running (status {run['status']})")
        store.send_command(run_id, "stop")
        # Only a running engine's status becomes 'stopping' (never overwrite its final status; a queued engine has
        # no heartbeat yet, and takes the command at its first flush).
        with store.atomic():
            store.db.execute("UPDATE runs SET status = 'stopping' WHERE id = ? AND status = 'running'", [run_id])
