"""Who is alive: runs, sweeps and evaluator jobs, and the reaping of the dead ones (DESIGN.md, process model).

The one home of the liveness rule; the TUI, the CLI, the sweeps and the launcher all ask here, and the store only runs
the statements (`mark_crashed`, `end_sweep`, `fail_dead_job`).

    run     alive exactly while its engine holds runs/<id>/lock (difftui.engine.launch.lock): a slow step, a compile
            or a suspended laptop never makes it dead, and kill -9 always does. Before the engine has taken the lock
            (it is importing torch), a 'queued' run lives while the process its launcher started does (pid and start
            time, recorded by the launcher's claim). A queued run with no pid waits to be started (e.g. in a sweep's
            queue): neither alive nor dead. A run owned on another host, whose lock this machine cannot see, lives
            while its heartbeat is younger than HEARTBEAT_TIMEOUT_S.
    Slurm   a run submitted to Slurm (runs.slurm_job) lives while its job does (engine/launch/slurm/jobs.py: one
    run     squeue call per poll for all of them, sacct for the forgotten ones): PENDING, CONFIGURING, RUNNING,
            REQUEUED ... It is dead when the job ended or is gone without a final status, or when it RUNS but the
            engine's heartbeat (or, before the first beat, the job's start) is older than SLURM_HEARTBEAT_TIMEOUT_S.
            While Slurm cannot be asked (no squeue here, slurmctld down) nothing is concluded: it stays alive.
    sweep   alive while its supervisor holds sweeps/<id>/lock, or, before it has taken it, while the launched
            process lives (pid and start time). Supervised on another host: alive (its lock cannot be seen here).
            A sweep on Slurm (sweeps.slurm) has no supervisor: its members' jobs are the sweep; it lives while one of
            its members is active.
    job     alive while its evaluator process lives (pid and start time; this host). A job with no pid yet lives
            HEARTBEAT_TIMEOUT_S after its creation (the spawner records the pid at once). Another host: alive.

Reaping marks the dead: runs crashed, sweeps stopped / completed / crashed, jobs failed, each with one line saying why.
A read-only store (a runs.db this user cannot write) is never reaped. A spool-mode run (runs.sink = 'spool', issue 17)
is ingested before it is judged: its final status, or its engine's first word, may still be in its spool. Its
heartbeat file (runs/<id>/spool/heartbeat.json) is `spool_heartbeat`'s to read. Reaping a Slurm run also records
what Slurm says of its job on the row (state, reason, nodes: what ls, show and the dashboard print), and cancels the
job of a run whose stop was asked more than the grace period ago (`scancel`; the engine checkpoints on its SIGTERM).
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from difftui.engine.launch.lock import Holder, holder, pid_alive
from difftui.engine.launch.slurm import client as slurm_client
from difftui.engine.launch.slurm import jobs as slurm_jobs
from difftui.engine.store import ACTIVE_STATUSES, ACTIVE_SWEEP_STATUSES, Store, run_lock_path, sweep_lock_path
from difftui.engine.store.ingest import ingest_runs
from difftui.engine.store.spool import read_heartbeat

__all__ = ["HEARTBEAT_TIMEOUT_S", "run_alive", "run_owner", "describe_owner", "local_owner_pid", "holds_lock",
           "is_waiting", "spool_heartbeat", "sweep_alive", "job_alive", "reap_dead_runs", "reap_dead_sweeps", "reap_dead_jobs", "reap",
           "RUN_GONE", "JOB_GONE", "SlurmVerdict", "slurm_verdict", "SLURM_HEARTBEAT_TIMEOUT_S", "is_slurm"]

HEARTBEAT_TIMEOUT_S = 60.0          # only for a process on another host, whose lock or pid this machine cannot see
# A Slurm run's engine beats into a shared filesystem that another host reads (attribute caches, a busy metadata
# server): it is given twice the local allowance.
SLURM_HEARTBEAT_TIMEOUT_S = 2 * HEARTBEAT_TIMEOUT_S
RUN_GONE = "engine process ended without a final status"
JOB_GONE = "evaluator process ended without a final status"


def _here(host: str | None) -> bool:
    return host in (None, "", socket.gethostname())


#----------------------------------------------------------------------------
# Runs.

def is_waiting(run: dict[str, Any]) -> bool:
    """Queued and never started (no pid, no Slurm job): waiting to be started, e.g. a member in a sweep's queue."""
    return run["status"] == "queued" and not run["pid"] and not run.get("slurm_job")


def is_slurm(run: dict[str, Any]) -> bool:
    """The run's engine was submitted to Slurm (its liveness is its job's)."""
    return bool(run.get("slurm_job"))


@dataclass(frozen=True)
class SlurmVerdict:
    alive: bool
    reason: str | None                              # why it is dead (one line); None while alive
    look: Any                                       # slurm.jobs.Lookup: what Slurm said
    stale: bool = False                             # dead by heartbeat while its job still runs (cancel the job)


def slurm_verdict(run: dict[str, Any], *, now: float | None = None) -> SlurmVerdict:
    """The Slurm run rule of the module docstring, with its reason."""
    look = slurm_jobs.lookup(run)
    key = run["slurm_job"]
    if not look.known:
        return SlurmVerdict(True, None, look)
    if look.gone:
        return SlurmVerdict(False, f"Slurm job {key} is gone (slurmctld no longer knows it) without a final status",
                            look)
    job = look.job
    if not look.alive:
        return SlurmVerdict(False, f"Slurm job {key} ended {job.state} without a final status", look)
    if job.state == "RUNNING":
        now = time.time() if now is None else now
        beat = max(run.get("heartbeat") or 0.0, job.start or 0.0, run.get("slurm_submitted") or 0.0)
        if now - beat > SLURM_HEARTBEAT_TIMEOUT_S:
            return SlurmVerdict(False, f"no heartbeat for {now - beat:.0f} s while Slurm job {key} runs on "
                                       f"{job.nodes or 'its nodes'} (the job was cancelled)", look, stale=True)
    return SlurmVerdict(True, None, look)


def run_owner(run: dict[str, Any]) -> Holder | None:
    """The process that holds the run's lock now (None when nobody does)."""
    lock = run_lock_path(run)
    return holder(lock) if lock is not None else None


def holds_lock(run: dict[str, Any]) -> bool:
    """An engine still holds the run's lock, whatever the run's status says (e.g. it is exiting)."""
    return run_owner(run) is not None


def run_alive(run: dict[str, Any], *, now: float | None = None) -> bool:
    """The run rule of the module docstring."""
    if run["status"] not in ACTIVE_STATUSES:
        return False
    if is_slurm(run):
        return slurm_verdict(run, now=now).alive
    if not _here(run["host"]):
        beat = run["heartbeat"] or run["created"]
        return (time.time() if now is None else now) - beat < HEARTBEAT_TIMEOUT_S
    if holds_lock(run):
        return True
    if run["status"] == "queued":
        return pid_alive(run["pid"], run.get("pid_start"))
    return False


def describe_owner(run: dict[str, Any]) -> str:
    """Who keeps a live run: "pid 123 on host, since ...", or the launched process that has not taken the lock yet,
    or its Slurm job ("Slurm job 120_4 PENDING (Priority)")."""
    if is_slurm(run):
        return "Slurm " + (slurm_jobs.describe_job(run) or f"job {run['slurm_job']}")
    owner = run_owner(run)
    if owner is not None:
        return owner.describe()
    if not _here(run["host"]):
        return f"pid {run['pid']} on {run['host']}"
    return f"starting as pid {run['pid']}"


def local_owner_pid(run: dict[str, Any]) -> int | None:
    """The pid to signal for a live run owned on this host: the lock holder, else the launched process."""
    owner = run_owner(run)
    if owner is not None and owner.pid and owner.host == socket.gethostname():
        return owner.pid
    if run["pid"] and run["host"] == socket.gethostname() and pid_alive(run["pid"], run.get("pid_start")):
        return run["pid"]
    return None


def spool_heartbeat(run: dict[str, Any], *, now: float | None = None) -> tuple[dict[str, Any], float] | None:
    """A spool-mode run's heartbeat file and its age in seconds: (time, pid, host, step, status ... as the engine last
    wrote them, age), or None when the run has none (never started, or not a spool run)."""
    if not run.get("run_dir"):
        return None
    beat = read_heartbeat(run["run_dir"])
    if beat is None:
        return None
    return beat, (time.time() if now is None else now) - float(beat["time"])


def reap_dead_runs(store: Store) -> list[int]:
    """Mark active runs whose engine is gone as crashed; return their ids (none in a read-only store). Active spool
    runs are ingested first."""
    if store.read_only:
        return []
    ingest_runs(store, store.spool_runs(active=True))
    crashed = _reap_slurm_runs(store)
    dead = [run["id"] for run in store.active_runs()
            if not is_slurm(run) and not is_waiting(run) and not run_alive(run)]
    return crashed + [run_id for run_id in dead if store.mark_crashed(
        run_id, RUN_GONE, event="engine process is gone; run marked crashed (resume with r)")]


def _reap_slurm_runs(store: Store) -> list[int]:
    """The active Slurm runs (ingested just before): record their job's state, cancel the job of a stop past its
    grace period, mark the dead crashed (and cancel a job that runs on without a heartbeat). Returns the crashed."""
    from difftui.engine.launch.runs import STOP_GRACE_S
    crashed = []
    now = time.time()
    for run in store.active_slurm_runs():
        verdict = slurm_verdict(run, now=now)
        job = verdict.look.job
        if job is not None:
            store.record_slurm_state(run["id"], state=job.state, reason=job.reason or None, nodes=job.nodes or None)
        elif verdict.look.gone:
            store.record_slurm_state(run["id"], state="GONE", reason=None, nodes=None)
        if verdict.alive:
            asked = run.get("stop_asked")
            if asked and now - asked > STOP_GRACE_S:
                _cancel(store, run, f"stop: no final status {now - asked:.0f} s after the stop was asked; "
                                    f"scancel {run['slurm_job']} (the engine checkpoints on its SIGTERM)")
            continue
        if verdict.stale:
            _cancel(store, run, f"no heartbeat while Slurm job {run['slurm_job']} runs: scancel")
        if store.mark_crashed(run["id"], verdict.reason, event=f"{verdict.reason}; run marked crashed (resume "
                                                                f"continues from its newest checkpoint)"):
            crashed.append(run["id"])
    return crashed


def _cancel(store: Store, run: dict[str, Any], message: str) -> None:
    try:
        slurm_client.scancel(run["slurm_job"])
    except slurm_client.SlurmError as e:
        message += f" failed ({e})"
    store.update_run(run["id"], stop_asked=None)    # asked once
    store.add_event(run["id"], "warning", message)
    slurm_jobs.forget()


#----------------------------------------------------------------------------
# Sweeps.

def sweep_alive(sweep: dict[str, Any]) -> bool:
    """The sweep rule of the module docstring."""
    if sweep["status"] not in ACTIVE_SWEEP_STATUSES:
        return False
    if sweep.get("slurm"):
        return True                                 # its members' jobs: ended by _reap_slurm_sweeps
    if not _here(sweep.get("host")):
        return True
    lock = sweep_lock_path(sweep)
    if lock is not None and holder(lock) is not None:
        return True
    return pid_alive(sweep.get("pid"), sweep.get("pid_start"))


def reap_dead_sweeps(store: Store) -> list[int]:
    """Sweeps marked running or stopping whose supervisor is gone: 'stopped' when it was stopping, 'completed' when
    nothing is left to do, otherwise 'crashed' (its started members train on; `sweep resume` restarts the
    supervisor). Returns their ids."""
    if store.read_only:
        return []
    reaped = []
    for sweep in store.supervised_sweeps():
        if sweep_alive(sweep):
            continue
        left = [m for m in store.sweep_members(sweep["id"]) if m["status"] in ACTIVE_STATUSES]
        if sweep["status"] == "stopping":
            status, error = "stopped", None
        elif not left:
            status, error = "completed", None
        else:
            status = "crashed"
            error = "the sweep's supervisor process is gone; started members train on (sweep resume restarts it)"
        if store.end_sweep(sweep["id"], status, error=error, supervisor_pid=sweep["pid"]):
            reaped.append(sweep["id"])
    return reaped + _reap_slurm_sweeps(store)


def _reap_slurm_sweeps(store: Store) -> list[int]:
    """Sweeps on Slurm with no member left whose job runs or waits in Slurm's queue (their runs reaped first):
    'stopped' when stopping or when members wait unsubmitted (held: `sweep resume` submits them), else 'completed'
    (the members' own statuses say how each ended)."""
    reaped = []
    for sweep in store.slurm_sweeps():
        members = store.sweep_members(sweep["id"])
        if any(m["status"] in ACTIVE_STATUSES and not is_waiting(m) for m in members):
            continue
        held = any(is_waiting(m) for m in members)
        status = "stopped" if sweep["status"] == "stopping" or held else "completed"
        if store.end_sweep(sweep["id"], status):
            reaped.append(sweep["id"])
    return reaped


#----------------------------------------------------------------------------
# Evaluator jobs.

def job_alive(job: dict[str, Any], *, now: float | None = None) -> bool:
    """The job rule of the module docstring."""
    if job["status"] not in ("queued", "running"):
        return False
    if not _here(job["host"]):
        return True
    if job["pid"]:
        return pid_alive(job["pid"], job.get("pid_start"))
    return (time.time() if now is None else now) - job["created"] < HEARTBEAT_TIMEOUT_S


def _job_gone_reason(store: Store, job: dict[str, Any]) -> str:
    run = store.get_run(job["run_id"])
    log = Path(run["run_dir"]) / "eval.log" if run and run.get("run_dir") else "the run's eval.log"
    if not job["pid"]:
        return f"the evaluator never started (no process within {HEARTBEAT_TIMEOUT_S:.0f} s); see {log}"
    return f"{JOB_GONE} (pid {job['pid']}, killed or crashed); see {log}"


def reap_dead_jobs(store: Store) -> list[int]:
    """Mark queued or running jobs whose evaluator is gone as failed, with one line saying so; return their ids."""
    if store.read_only:
        return []
    now = time.time()
    return [job["id"] for job in store.active_jobs()
            if not job_alive(job, now=now) and store.fail_dead_job(job["id"], _job_gone_reason(store, job))]


#----------------------------------------------------------------------------

def reap(store: Store) -> None:
    """Reap dead runs, sweeps and evaluator jobs (what a front end does before it shows or changes anything)."""
    reap_dead_runs(store)
    reap_dead_sweeps(store)
    reap_dead_jobs(store)
