"""Helpers for the Slurm tests: waiting on a run as a front end sees it (ingest, Slurm's state), releasing a requeued
job that Slurm holds back (about two minutes, reason BeginTime), the run's events, jobs' final states."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from difftui.engine.launch import liveness
from difftui.engine.launch.slurm import client
from difftui.engine.store import ACTIVE_STATUSES, Store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from engine_testkit import tiny_config  # noqa: E402,F401  (re-exported for the tests)

ENDED = lambda run: run["status"] not in ACTIVE_STATUSES  # noqa: E731


def look(db: Path, run_id: int) -> dict[str, Any]:
    """The run as a front end sees it after one poll: its spool ingested, Slurm's state recorded, the dead reaped."""
    with Store(db) as store:
        liveness.reap(store)
        return store.get_run(run_id)


HELD_S = 5.0
_held_since: dict[str, float] = {}


def release_if_held(run: dict[str, Any]) -> bool:
    """A requeued job waits about two minutes in Slurm (PENDING, BeginTime): make it eligible now, once it has shown
    so for HELD_S seconds (released at once, while the old job's processes are still being killed, Slurm may start
    it with the revoked credential and fail it: "Killing non-startable batch job")."""
    key = run.get("slurm_job")
    if run.get("slurm_state") == "PENDING" and run.get("slurm_reason") == "BeginTime":
        since = _held_since.setdefault(key, time.monotonic())
        if time.monotonic() - since < HELD_S:
            return False
        try:
            client.release(key)
        except client.SlurmError:
            return False
        _held_since.pop(key, None)
        return True
    _held_since.pop(key, None)
    return False


def watch(db: Path, run_id: int, until: Callable[[dict[str, Any]], Any], timeout: float = 300,
          release: bool = True) -> dict[str, Any]:
    """Poll as a front end does (every 0.5 s) until `until(run)`; releases held requeued jobs. Fails with the tail of
    the run's engine.log."""
    deadline = time.monotonic() + timeout
    while True:
        run = look(db, run_id)
        if until(run):
            return run
        if release:
            release_if_held(run)
        if time.monotonic() > deadline:
            log = Path(run["run_dir"]) / "engine.log"
            tail = log.read_text()[-4000:] if log.exists() else "(no engine.log)"
            raise AssertionError(f"run {run_id}: {run['status']} step {run['step']} job {run['slurm_job']} "
                                 f"{run['slurm_state']} {run['slurm_reason']} after {timeout:.0f} s\n{tail}")
        time.sleep(0.5)


def events(db: Path, run_id: int) -> list[dict[str, Any]]:
    with Store(db) as store:
        return store.events_since(run_id)


def messages(db: Path, run_id: int) -> list[str]:
    return [e["message"] for e in events(db, run_id)]


def job_state(key: str) -> str:
    out = subprocess.run(["squeue", "--noheader", "--states=all", "--array", f"--jobs={key}", "--format=%T"],
                         capture_output=True, text=True, timeout=30).stdout.split()
    return out[0] if out else "GONE"


def wait_jobs_ended(keys: list[str], timeout: float = 120) -> None:
    """Until Slurm says every job ended (its wrapper wrote its last event then)."""
    deadline = time.monotonic() + timeout
    while any(job_state(k) not in ("COMPLETED", "FAILED", "CANCELLED", "GONE") for k in keys):
        assert time.monotonic() < deadline, {k: job_state(k) for k in keys}
        time.sleep(0.5)


def duplicated_groups(db: Path) -> int:
    """(run, step, name) groups of metrics written more than once."""
    with Store(db) as store:
        return store.db.execute("SELECT COUNT(*) FROM (SELECT run_id, step, name FROM metrics GROUP BY run_id, step,"
                                " name HAVING COUNT(*) > 1)").fetchone()[0]
