"""Evaluation jobs, their results and the best snapshot (issue 9; written by the evaluator process).

A job row is one evaluator process:

    create_job       -> queued                 the spawner (eval/jobs.py), before the process exists
    record_job_pid   queued, no pid -> pid     the spawner, at once after the spawn (so a process that dies while
                                               importing torch is reaped as failed, not followed forever)
    claim_job        -> running                the evaluator itself
    report_progress  done/total and a message as it goes
    finish_job       -> done | failed | refused, with a one-line error    the evaluator's final word
    fail_dead_job    queued|running -> failed, with a one-line reason    its process is gone (the reaper)

Whether an evaluator is alive is decided in difftui.engine.launch.liveness.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

__all__ = ["JobsTable", "JOB_STATUSES", "ACTIVE_JOB_STATUSES", "best_snapshot"]

JOB_STATUSES = ("queued", "running", "done", "failed", "refused")
ACTIVE_JOB_STATUSES = ("queued", "running")


def best_snapshot(fid_rows: list[dict[str, Any]]) -> int | None:
    """Playbook 5.6: of evaluation rows (kind "fid", oldest first), the snapshot with the lowest finite FID among those
    measured like the newest one (same sampler, NFE and sample count); None when no snapshot has an FID."""
    rows = [r for r in fid_rows if r.get("snapshot") is not None and r["metric"] == "fid" and r["value"] == r["value"]]
    if not rows:
        return None
    newest = rows[-1]
    same = [r for r in rows if (r["sampler"], r["nfe"], r["samples"]) ==
            (newest["sampler"], newest["nfe"], newest["samples"])]
    return min(same, key=lambda r: (r["value"], r["snapshot"]))["snapshot"]


class JobsTable:
    """jobs and evals (a mixin of `Store`)."""

    JOB_STATUSES = JOB_STATUSES

    def create_job(self, run_id: int, kind: str, args: dict[str, Any] | None = None, *,
                   spool_key: str | None = None) -> int:
        """A queued job. `spool_key`: the name an evaluator of a spool-mode run gave its job (the ingester finds the
        row again by it, `job_for_spool_key`)."""
        with self.atomic():
            cur = self.db.execute("INSERT INTO jobs (run_id, kind, status, args, created, updated, spool_key)"
                                  " VALUES (?,?,?,?,?,?,?)",
                                  [run_id, kind, "queued", json.dumps(args or {}), time.time(), time.time(),
                                   spool_key])
        return int(cur.lastrowid)

    def job_for_spool_key(self, run_id: int, key: str) -> int | None:
        rows = self._rows("SELECT id FROM jobs WHERE run_id = ? AND spool_key = ?", [run_id, key])
        return rows[0]["id"] if rows else None

    def record_job_pid(self, job_id: int, *, pid: int, pid_start: float | None, host: str) -> bool:
        """The spawned evaluator's pid, unless the evaluator has already claimed the job itself."""
        with self.atomic():
            cur = self.db.execute("UPDATE jobs SET pid = ?, pid_start = ?, host = ? WHERE id = ? AND pid IS NULL",
                                  [pid, pid_start, host, job_id])
        return cur.rowcount == 1

    def claim_job(self, job_id: int, *, pid: int, pid_start: float | None = None, host: str | None = None,
                  message: str = "") -> None:
        """The evaluator takes its job: running, under its own pid (and start time, when it knows it)."""
        now = time.time()
        fields: dict[str, Any] = {"status": "running", "pid": pid, "host": host or socket.gethostname(),
                                  "started": now, "updated": now, "message": message}
        if pid_start is not None:
            fields["pid_start"] = pid_start
        self.update_job_row(job_id, **fields)

    def update_job_row(self, job_id: int, **fields: Any) -> None:
        if not fields:
            return
        fields.setdefault("updated", time.time())
        cols = ", ".join(f"{k} = ?" for k in fields)
        with self.atomic():
            self.db.execute(f"UPDATE jobs SET {cols} WHERE id = ?", [*fields.values(), job_id])

    def report_progress(self, job_id: int, done: int, total: int, message: str) -> None:
        self.update_job_row(job_id, done=done, total=total, message=message)

    def finish_job(self, job_id: int, status: str, *, message: str | None = None, error: str | None = None) -> None:
        if status not in ("done", "failed", "refused"):
            raise ValueError(f"finish_job: {status!r} is not done, failed or refused")
        fields: dict[str, Any] = {"status": status, "ended": time.time(), "error": error}
        if message is not None:
            fields["message"] = message
        self.update_job_row(job_id, **fields)

    def fail_dead_job(self, job_id: int, reason: str) -> bool:
        """A queued or running job whose evaluator is gone -> failed with `reason` (an error it wrote is kept).
        Returns whether it changed: False when the evaluator's own final word came first."""
        now = time.time()
        with self.atomic():
            cur = self.db.execute("UPDATE jobs SET status = 'failed', ended = ?, updated = ?,"
                                  " error = COALESCE(error, ?) WHERE id = ? AND status IN ('queued', 'running')", [now, now, reason, job_id])
        return cur.rowcount == 1

    def get_job(self, job_id: int) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM jobs WHERE id = ?", [job_id])
        return rows[0] if rows else None

    def jobs_for(self, run_id: int, *, active: bool = False) -> list[dict[str, Any]]:
        where = " AND status IN ('queued', 'running')" if active else ""
        return self._rows(f"SELECT * FROM jobs WHERE run_id = ?{where} ORDER BY id", [run_id])

    def active_jobs(self) -> list[dict[str, Any]]:
        """Every queued or running job (the reaper's candidates)."""
        return self._rows("SELECT * FROM jobs WHERE status IN ('queued', 'running') ORDER BY id")

    #------------------------------------------------------------------------
    # Results.


    def add_eval_results(self, run_id: int, rows: list[dict[str, Any]], *, at: float | None = None) -> None:
        """rows: dicts with step, sampler, nfe, metric, value and optionally kind, samples, repeats, spread,
        snapshot, protocol (a dict, stored as JSON), job_id. `at`: when they were measured (default now)."""
        now = time.time() if at is None else at
        with self.atomic():
            self.db.conn.executemany(
                "INSERT INTO evals (run_id, step, sampler, nfe, metric, value, time, job_id, kind, samples, repeats,"
                " spread, snapshot, protocol) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [(run_id, r["step"], r.get("sampler"), r.get("nfe"), r["metric"], r["value"], now, r.get("job_id"),
                  r.get("kind"), r.get("samples"), r.get("repeats"), r.get("spread"), r.get("snapshot"),
                  json.dumps(r["protocol"]) if r.get("protocol") is not None else None) for r in rows])

    def eval_results(self, run_id: int, *, kind: str | None = None, job_id: int | None = None,
                     last_id: int = 0) -> list[dict[str, Any]]:
        """Evaluation rows in order, `protocol` decoded, a value that could not be stored (NULL) read as NaN."""
        where, params = "run_id = ? AND id > ?", [run_id, last_id]
        if kind is not None:
            where, params = where + " AND kind = ?", params + [kind]
        if job_id is not None:
            where, params = where + " AND job_id = ?", params + [job_id]
        rows = self._rows(f"SELECT * FROM evals WHERE {where} ORDER BY id", params)
        for r in rows:
            r["protocol"] = json.loads(r["protocol"]) if r.get("protocol") else {}
            if r["value"] is None:
                r["value"] = float("nan")
        return rows

    def update_best_snapshot(self, run_id: int) -> int | None:
        """Playbook 5.6: the snapshot with the lowest FID under the newest snapshot protocol (`best_snapshot`),
        written to runs.best_snapshot; returns its step (None when no snapshot has an FID)."""
        best = best_snapshot(self.eval_results(run_id, kind="fid"))
        self.update_run(run_id, best_snapshot=best)
        return best

