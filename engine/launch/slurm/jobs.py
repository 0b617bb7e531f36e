"""What Slurm says about difftui's jobs: one squeue call per poll for all of them (this user's), shared by every
caller of this process and rate-limited (`POLL_S`); a job it does not list is asked by its id once (another user's
job in a shared runs.db), then sacct where slurmctld has forgotten it (where the cluster keeps accounting); and what
each state means.

    alive   PENDING, CONFIGURING, RUNNING, COMPLETING, SUSPENDED, REQUEUED, REQUEUE_HOLD ... (the job will still run,
            or is still ending and may yet leave its final status)
    ended   COMPLETED, FAILED, CANCELLED, TIMEOUT, NODE_FAIL, OUT_OF_MEMORY, PREEMPTED, BOOT_FAIL, DEADLINE
    gone    neither squeue nor sacct knows the job (slurmctld forgot it after MinJobAge, and no accounting)
    unknown Slurm cannot be asked from here (no squeue, slurmctld down): nothing is concluded

Whether the *run* is alive is decided from this in difftui.engine.launch.liveness (the one home of that rule).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from difftui.engine.launch.slurm import client
from difftui.engine.launch.slurm.client import JobInfo, SlurmError

__all__ = ["ALIVE_STATES", "ENDED_STATES", "Lookup", "lookup", "poll_interval", "forget", "describe_job",
           "JobTable"]

ALIVE_STATES = frozenset({"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "REQUEUED",
                          "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "RESIZING", "SIGNALING", "STAGE_OUT",
                          "SPECIAL_EXIT"})
ENDED_STATES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED",
                          "BOOT_FAIL", "DEADLINE", "REVOKED"})
POLL_S = 3.0                                        # at most one squeue call this often ($DIFFTUI_SLURM_POLL_S)


def poll_interval() -> float:
    try:
        return max(0.0, float(os.environ.get("DIFFTUI_SLURM_POLL_S", POLL_S)))
    except ValueError:
        return POLL_S


@dataclass(frozen=True)
class Lookup:
    """One job as this process last saw it: `job` (alive or ended), or `gone`, or `error` (unknown)."""
    key: str
    job: JobInfo | None = None
    gone: bool = False
    error: str | None = None
    seen: float = 0.0                               # when squeue answered (epoch seconds)

    @property
    def known(self) -> bool:
        return self.error is None

    @property
    def alive(self) -> bool:
        return self.job is not None and self.job.state in ALIVE_STATES

    @property
    def ended(self) -> bool:
        return self.gone or (self.job is not None and self.job.state not in ALIVE_STATES)

    @property
    def state(self) -> str:
        if self.error is not None:
            return "UNKNOWN"
        return self.job.state if self.job is not None else "GONE"


@dataclass
class JobTable:
    """squeue's answer for this user, refreshed at most every `poll_interval()` seconds (thread-safe), and the
    ended jobs sacct knew (final: never asked again)."""
    seen: float = 0.0
    jobs: dict[str, JobInfo] | None = None
    error: str | None = None
    accounted: dict[str, JobInfo | None] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def refresh(self, *, newer_than: float | None = None) -> None:
        """Ask squeue unless the last answer is recent enough (and, with `newer_than`, taken after that time)."""
        now = time.time()
        if self.jobs is not None or self.error is not None:
            fresh = now - self.seen < poll_interval()
            if fresh and (newer_than is None or self.seen >= newer_than):
                return
        try:
            jobs, error = client.squeue(), None
        except SlurmError as e:
            jobs, error = None, str(e)
        self.seen, self.jobs, self.error = time.time(), jobs, error

    def lookup(self, key: str, *, submitted: float | None = None) -> Lookup:
        with self.lock:
            self.refresh(newer_than=submitted)
            if self.jobs is None:
                return Lookup(key, error=self.error or "squeue gave no answer", seen=self.seen)
            job = self.jobs.get(key)
            if job is not None:
                return Lookup(key, job=job, seen=self.seen)
            if key not in self.accounted:
                try:                                # another user's job (a shared runs.db), or one forgotten
                    job = client.squeue_job(key)
                except SlurmError as e:
                    return Lookup(key, error=str(e), seen=self.seen)
                if job is not None and job.state in ALIVE_STATES:
                    return Lookup(key, job=job, seen=self.seen)
                if job is None:
                    try:
                        found = client.sacct([key])
                    except SlurmError:
                        found = None
                    job = (found or {}).get(key)
                self.accounted[key] = job           # ended or gone: final, never asked again
            job = self.accounted[key]
            return Lookup(key, job=job, gone=job is None, seen=self.seen)

    def forget(self) -> None:
        """The next lookup asks squeue again (after difftui itself changed a job: submitted, cancelled, requeued)."""
        with self.lock:
            self.seen = 0.0


_table = JobTable()


def lookup(run: dict[str, Any]) -> Lookup:
    """The job of a Slurm run (runs.slurm_job), from this process's shared, rate-limited squeue answer."""
    return _table.lookup(run["slurm_job"], submitted=run.get("slurm_submitted"))


def forget() -> None:
    _table.forget()


def describe_job(run: dict[str, Any], *, prefix: str = "job ") -> str | None:
    """What `ls`, `show`, the sweep tables and the dashboard say about a Slurm run's job (from the row's recorded
    state), e.g. "job 120_4 PENDING (JobArrayTaskLimit)", "job 121 RUNNING on node[01-02]"; just "job 121" once the
    run has ended; None for a run not on Slurm."""
    key = run.get("slurm_job")
    if not key:
        return None
    if run.get("status") not in ("queued", "running", "stopping"):
        return f"{prefix}{key}"
    state = run.get("slurm_state") or "submitted"
    text = f"{prefix}{key} {state}"
    if state == "PENDING" and run.get("slurm_reason"):
        text += f" ({run['slurm_reason']})"
    elif state in ("RUNNING", "COMPLETING") and run.get("slurm_nodes"):
        text += f" on {run['slurm_nodes']}"
    elif run.get("slurm_reason") and state not in ("COMPLETED",):
        text += f" ({run['slurm_reason']})"
    return text
