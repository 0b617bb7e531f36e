"""Starting evaluator processes and following them through runs.db (no torch here: the TUI and the CLI call it).

An evaluation runs as `python -m difftui.engine eval RUN_ID --db PATH --job JOB_ID [...]`, started from an argv list
with stdin from /dev/null, stdout and stderr appended to runs/<id>/eval.log, in its own session (closing the terminal
or the TUI does not stop it), as the launch backends start engines. The spawner creates the job row first (status
queued, then its pid), so a front end can follow it at once; the evaluator claims it, reports done/total and a
message as it goes, and ends it with a status and, on failure, one line. An evaluator that dies without a final
status is reaped as failed (difftui.engine.launch.liveness). What to evaluate, and whether to spawn at all, is the
evaluate use case's call (eval/start.py).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from difftui.engine.launch.lock import process_start_time
from difftui.engine.store import Store, StoreError

__all__ = ["EVAL_EXIT_USER_ERROR", "eval_argv", "spawn_evaluator", "spawn_spool_evaluator", "job_finished"]

EVAL_EXIT_USER_ERROR = 2                            # missing weights, no checkpoint, a second evaluation, ...


def eval_argv(db_path: str | os.PathLike[str], run_id: int, job_id: int, args: list[str]) -> list[str]:
    """The evaluator's command line; `args` are the options after RUN_ID (e.g. ["--fid", "--samples", "10000"])."""
    return [sys.executable, "-m", "difftui.engine", "eval", str(run_id), "--db", str(Path(db_path).resolve()),
            "--job", str(job_id), *args]


def spawn_evaluator(db_path: str | os.PathLike[str], run_id: int, args: list[str], *,
                    kind: str = "eval") -> tuple[int, subprocess.Popen]:
    """Create the job row and start the evaluator for it; returns (job id, process)."""
    with Store(db_path, create=False) as store:
        run = store.get_run(run_id)
        if run is None:
            raise StoreError(f"{store.path}: no run {run_id}")
        folder = Path(run["run_dir"])
        folder.mkdir(parents=True, exist_ok=True)
        job_id = store.create_job(run_id, kind, {"argv": args})
        with open(folder / "eval.log", "ab") as log, open(os.devnull, "rb") as devnull:
            proc = subprocess.Popen(eval_argv(db_path, run_id, job_id, args), stdin=devnull, stdout=log,
                                    stderr=subprocess.STDOUT, cwd=folder, start_new_session=True, close_fds=True)
        # The pid at once, so that a process that dies while importing torch is reaped as failed, not followed forever.
        store.record_job_pid(job_id, pid=proc.pid, pid_start=process_start_time(proc.pid), host=socket.gethostname())
    return job_id, proc


def spawn_spool_evaluator(run_dir: str | os.PathLike[str], run_id: int, args: list[str]) -> subprocess.Popen:
    """Start an evaluator of a spool-mode run (`eval RUN_ID --spool RUN_DIR`): it never opens runs.db, and names and
    reports its job in its own spool file (difftui.engine.store.spool), so there is no job row to create here."""
    folder = Path(run_dir).resolve()
    argv = [sys.executable, "-m", "difftui.engine", "eval", str(run_id), "--spool", str(folder), *args]
    with open(folder / "eval.log", "ab") as log, open(os.devnull, "rb") as devnull:
        return subprocess.Popen(argv, stdin=devnull, stdout=log, stderr=subprocess.STDOUT, cwd=folder,
                                start_new_session=True, close_fds=True)


def job_finished(job: dict | None) -> bool:
    return job is None or job["status"] in ("done", "failed", "refused")
