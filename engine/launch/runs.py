"""The run use cases: new run, resume, stop (request / force), checkpoint now, delete; and `start_run`, the one way an engine is
started (DESIGN.md, process model). The TUI and the CLI make these same calls and show what they return (an
`Outcome`, or a `LaunchError` with one line), so the two front ends cannot disagree; the sweep supervisor starts its
members through `start_run` too. Evaluate is difftui.engine.eval.start.

The TUI, the CLI and the sweep scheduler never train in their own process. They create a `runs` row and start it:
`start_run` spawns the engine through the plan's backend (launch/backends.py: a local process or torchrun), in its
own session, so that closing the terminal or the TUI does not stop the run.

Ownership: the engine (rank 0) holds runs/<id>/lock for its whole life (difftui.engine.launch.lock); who is alive is
difftui.engine.launch.liveness' rule. Before the engine has taken the lock, `start_run` claims the run in one
database transaction (status 'queued', the launched pid and its start time), so two launchers racing for one run give
one engine and one refusal (`Owned`, one line), whichever path started them (resume, sweep, TUI, two terminals).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from difftui.engine.atomic import atomic_write_text
from difftui.engine.config.catalog import config_to_dict
from difftui.engine.config.model import RunConfig
from difftui.engine.launch import liveness
from difftui.engine.launch.backends import SlurmBackend, SlurmJob, backend_for
from difftui.engine.launch.lock import Owned, process_start_time
from difftui.engine.launch.outcome import LaunchError, Outcome
from difftui.engine.launch.plan import LaunchPlan
from difftui.engine.launch.slurm import client as slurm_client
from difftui.engine.launch.slurm import jobs as slurm_jobs
from difftui.engine.numbers import format_number
from difftui.engine.store import ACTIVE_STATUSES, ACTIVE_SWEEP_STATUSES, Store
from difftui.engine.store.ingest import ingest_run
from difftui.engine.store.layout import remove_run_folder
from difftui.engine.store.spool import send_command, write_run_json

__all__ = ["Owned", "LaunchError", "Outcome", "StepsExhausted", "create_run", "start_run", "new_run", "resume",
           "request_stop", "request_checkpoint", "force_stop", "delete_refusal", "check_delete", "delete_run",
           "STOP_GRACE_S"]

STOP_GRACE_S = 30.0                                 # `stop --force`: SIGTERM, then SIGKILL after this long


class StepsExhausted(LaunchError):
    """`resume` refused: the run has no step left to train, or the new end asked for is behind it. The message is
    the CLI's line; `step`, `total_steps` and `asked` let another front end (the TUI asks for a new end) say its own."""

    def __init__(self, message: str, *, run_id: int, step: int, total_steps: int | None,
                 asked: int | None = None) -> None:
        super().__init__(message)
        self.run_id, self.step, self.total_steps, self.asked = run_id, step, total_steps, asked


def _get(store: Store, run_id: int) -> dict[str, Any]:
    run = store.get_run(run_id)
    if run is None:
        raise LaunchError(f"no run {run_id} in {store.path}")
    return run


#----------------------------------------------------------------------------
# Creating and starting.

def create_run(db_path: str | os.PathLike[str], config: RunConfig, *, sweep_id: int | None = None,
               parent_id: int | None = None, plan: LaunchPlan | None = None, sink: str = "db") -> int:
    """Insert a queued run with its resolved config; write runs/<id>/config.yaml and run.json (all that a spool-mode
    engine reads). `sink`: where its engine writes, 'db' (runs.db) or 'spool' (records in runs/<id>/spool/, what an
    engine on a compute node writes; store/spool.py). Returns the run id."""
    data = config_to_dict(config)
    with Store(db_path) as store:
        run_id = store.create_run(data, name=config.name or "", total_steps=config.recipe.total_steps,
                                  device=config.device, sweep_id=sweep_id, parent_id=parent_id, sink=sink)
        name = config.name or f"{config.dataset.name}-{config.backbone.name}-{run_id}"
        store.update_run(run_id, name=name, launch=(plan or LaunchPlan()).to_json())
        run = _get(store, run_id)
    atomic_write_text(Path(run["run_dir"]) / "config.yaml", yaml.safe_dump(data, sort_keys=False))
    write_run_json(run)
    return run_id


def start_run(db_path: str | os.PathLike[str], run_id: int, plan: LaunchPlan | None = None
              ) -> subprocess.Popen | SlurmJob:
    """Start the engine of an existing run (the one function every path that starts an engine calls): its process,
    or, for a plan with Slurm options, the Slurm job it was submitted as (`SlurmJob`; sbatch from an argv list).

    Refuses with `Owned` (one line) when the run is alive: its engine holds the lock, or a launcher has just started
    one that has not taken it yet. The check, the spawn and the claim happen in one write transaction, so launchers
    racing for the same run are serialised by SQLite: the first spawns, the others see its claim."""
    with Store(db_path) as store:
        with store.atomic():
            run = _get(store, run_id)
            if liveness.run_alive(run):
                raise Owned(f"run {run_id} is already {run['status']} ({liveness.describe_owner(run)}); "
                            f"stop it first")
            plan = plan or LaunchPlan.from_json(run.get("launch"))
            backend = backend_for(plan)
            if isinstance(backend, SlurmBackend):
                job = backend.submit(run, plan)
                store.claim_for_slurm(run_id, job=job.key, index=None, launch=plan.to_json(), submitted=job.submitted)
                return job
            if run["sink"] == "spool" and backend.sink == "db":
                # A spool run started on this machine writes runs.db from now on: what its spool holds comes first.
                ingest_run(store, run)
            proc = backend.spawn(db_path, run_id, plan, Path(run["run_dir"]))
            store.claim_for_launch(run_id, pid=proc.pid, pid_start=process_start_time(proc.pid),
                                   host=socket.gethostname(), launch=plan.to_json(), sink=backend.sink)
    return proc


def new_run(db_path: str | os.PathLike[str], config: RunConfig, *, plan: LaunchPlan | None = None,
            parent_id: int | None = None) -> Outcome:
    """The new-run use case: create the run and start its engine (the caller has run the launch checks,
    launch/checks.py, on this config). The process runs on after this returns."""
    run_id = create_run(db_path, config, parent_id=parent_id, plan=plan, sink="spool" if plan and plan.slurm else "db")
    started = start_run(db_path, run_id, plan)
    return _started(run_id, started, "started")


def _started(run_id: int, started: subprocess.Popen | SlurmJob, what: str) -> Outcome:
    if isinstance(started, SlurmJob):
        return Outcome(run_id, f"run {run_id} submitted to Slurm as job {started.key}", slurm_job=started.key)
    return Outcome(run_id, f"run {run_id} {what} (pid {started.pid})", proc=started)


#----------------------------------------------------------------------------
# Resume and stop.

def resume(db_path: str | os.PathLike[str], run_id: int, *, total_steps: int | None = None,
           plan: LaunchPlan | None = None) -> Outcome:
    """Continue a run from its newest loadable checkpoint in a new engine. Refuses a run that is alive.

    `total_steps` (optional) sets a new end, e.g. to train a completed run further; `plan` changes how it is
    launched (e.g. on more GPUs; the data position and the global batch are kept)."""
    with Store(db_path, create=False) as store:
        liveness.reap_dead_runs(store)
        run = _get(store, run_id)
        if liveness.run_alive(run):
            raise Owned(f"run {run_id} is still {run['status']} ({liveness.describe_owner(run)}); stop it first")
        if total_steps is not None:
            if total_steps < run["step"]:
                raise StepsExhausted(f"run {run_id} is already at step {run['step']}, past --max-steps {total_steps}",
                                     run_id=run_id, step=run["step"], total_steps=run["total_steps"],
                                     asked=total_steps)
            config = json.loads(run["config"])
            config["recipe"]["total_steps"] = total_steps
            store.set_total_steps(run_id, config, total_steps)
            atomic_write_text(Path(run["run_dir"]) / "config.yaml", yaml.safe_dump(config, sort_keys=False))
            run = _get(store, run_id)
            write_run_json(run)
        if run["status"] == "completed" and run["step"] >= (run["total_steps"] or 0):
            raise StepsExhausted(f"run {run_id} already completed all {run['total_steps']} steps "
                                 f"(resume with a larger --max-steps to train further)",
                                 run_id=run_id, step=run["step"], total_steps=run["total_steps"])
    started = start_run(db_path, run_id, plan)
    further = f" to train on to step {format_number(total_steps)}" if total_steps is not None else ""
    if isinstance(started, SlurmJob):
        return Outcome(run_id, f"run {run_id} resubmitted to Slurm as job {started.key}; it resumes from its newest "
                               f"checkpoint{further}", slurm_job=started.key)
    return Outcome(run_id, f"run {run_id} resuming from its newest checkpoint{further} (pid {started.pid})",
                   proc=started)


def _live(store: Store, run_id: int) -> dict[str, Any]:
    """The run, reaped first; LaunchError (one line) when no engine keeps it."""
    liveness.reap_dead_runs(store)
    run = _get(store, run_id)
    if liveness.run_alive(run):
        return run
    if liveness.is_waiting(run) and run["sweep_id"]:
        raise LaunchError(f"run {run_id} is not running: it waits in the queue of sweep {run['sweep_id']} "
                          f"(sweep stop {run['sweep_id']} holds the queue)")
    raise LaunchError(f"run {run_id} is not running (status {run['status']})")


def request_stop(db_path: str | os.PathLike[str], run_id: int) -> Outcome:
    """Ask a live engine to checkpoint and exit; it answers by setting status 'stopped'. A run on Slurm: its job is
    cancelled at once while it pends; a running one gets the stop command (a file), and `scancel` follows when it
    has not ended STOP_GRACE_S later (liveness' reaper; `difftui stop` waits for it)."""
    with Store(db_path, create=False) as store:
        run = _live(store, run_id)
        if liveness.is_slurm(run):
            return _stop_slurm(store, run)
        with store.atomic():
            send_command(store, run, "stop")          # a row in runs.db, or a file for a spool-mode engine
            store.mark_stopping(run_id)
    return Outcome(run_id, f"stop requested for run {run_id}; it checkpoints, then exits")


def _stop_slurm(store: Store, run: dict[str, Any]) -> Outcome:
    run_id, key = run["id"], run["slurm_job"]
    look = slurm_jobs.lookup(run)
    if look.job is not None and look.job.state == "PENDING":
        try:
            slurm_client.scancel(key)
        except slurm_client.SlurmError as e:
            raise LaunchError(f"run {run_id}: cannot cancel its pending Slurm job {key} ({e})") from None
        slurm_jobs.forget()
        with store.atomic():
            store.add_event(run_id, "info", f"stopped while its Slurm job {key} was pending (scancel {key})")
            store.finish_run(run_id, "stopped")
        return Outcome(run_id, f"run {run_id} stopped: its pending Slurm job {key} was cancelled", slurm_job=key)
    with store.atomic():
        send_command(store, run, "stop")              # a file in runs/<id>/commands/ (spool mode)
        store.mark_stopping(run_id)
        store.mark_stop_asked(run_id, time.time())
    return Outcome(run_id, f"stop requested for run {run_id}; it checkpoints, then exits (Slurm job {key} is "
                           f"cancelled if it has not ended {STOP_GRACE_S:g} s from now)", slurm_job=key)


def _force_stop_slurm(store: Store, run: dict[str, Any]) -> Outcome:
    run_id, key = run["id"], run["slurm_job"]
    try:
        slurm_client.scancel(key)
    except slurm_client.SlurmError as e:
        raise LaunchError(f"run {run_id}: cannot cancel Slurm job {key} ({e})") from None
    slurm_jobs.forget()
    with store.atomic():
        store.add_event(run_id, "warning", f"stop --force: scancel {key} (the engine checkpoints on its SIGTERM if "
                                           f"it can; resume continues from the newest checkpoint)")
        store.finish_run(run_id, "stopped")
    return Outcome(run_id, f"run {run_id} stopped: Slurm job {key} cancelled", slurm_job=key)


def request_checkpoint(db_path: str | os.PathLike[str], run_id: int) -> Outcome:
    """Ask a live engine to write a checkpoint now (the "snapshot" command), between two steps; it goes on training."""
    with Store(db_path, create=False) as store:
        run = _live(store, run_id)
        send_command(store, run, "snapshot")
    return Outcome(run_id, f"checkpoint requested for run {run_id}; its engine writes one at the next logging step")


def force_stop(db_path: str | os.PathLike[str], run_id: int, *, grace_s: float = STOP_GRACE_S,
               poll_s: float = 0.2) -> Outcome:
    """`stop --force`: SIGTERM to the engine's process group (the engine checkpoints and stops, as for a stop
    command), then SIGKILL to the group if it still owns the run after `grace_s`. A run on Slurm: `scancel` at once."""
    with Store(db_path, create=False) as store:
        run = _live(store, run_id)
        if liveness.is_slurm(run):
            return _force_stop_slurm(store, run)
        pid = liveness.local_owner_pid(run)
        if pid is None:
            raise LaunchError(f"run {run_id} is owned on host {run['host']}; stop it from there")
        try:
            pgid = os.getpgid(pid)
        except ProcessLookupError:
            liveness.reap_dead_runs(store)
            return Outcome(run_id, f"run {run_id}'s engine had already exited")
        store.add_event(run_id, "warning", f"stop --force: SIGTERM to process group {pgid}")
        store.mark_stopping(run_id)
    _killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    with Store(db_path, create=False) as store:
        while time.monotonic() < deadline:
            run = _get(store, run_id)
            if run["status"] not in ACTIVE_STATUSES or not liveness.run_alive(run):
                break
            time.sleep(poll_s)
        else:
            _killpg(pgid, signal.SIGKILL)
            time.sleep(poll_s)
            message = f"killed with SIGKILL after {grace_s:g} s (stop --force)"
            store.mark_crashed(run_id, message, keep_error=False)
            return Outcome(run_id, f"run {run_id} {message}")
        liveness.reap_dead_runs(store)
        run = _get(store, run_id)
    return Outcome(run_id, f"run {run_id} {run['status']} at step {run['step']} after SIGTERM")


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


#----------------------------------------------------------------------------
# Delete.

def delete_refusal(store: Store, run: dict[str, Any]) -> str | None:
    """Why `run` may not be deleted now (one line), or None when it may. The one rule:

    - a live engine owns it (liveness.run_alive): stop it first;
    - it waits in the queue of a sweep that is running or stopping: that sweep's supervisor owns it and would start
      it (or is winding the sweep down); stop the sweep first. A member of a stopped, completed or crashed sweep, or
      a member that has run (stopped, failed, crashed, completed), may be deleted.

    Ask it of a store whose dead runs and sweeps were reaped (`liveness.reap`)."""
    if liveness.run_alive(run):
        return f"run {run['id']} is {run['status']} ({liveness.describe_owner(run)}); stop it first"
    if liveness.is_waiting(run) and run["sweep_id"] is not None:
        sweep = store.get_sweep(run["sweep_id"])
        if sweep is not None and sweep["status"] in ACTIVE_SWEEP_STATUSES:
            return (f"run {run['id']} waits in the queue of sweep {sweep['id']} ({sweep['status']}), whose "
                    f"supervisor starts it; stop the sweep first (sweep stop {sweep['id']})")
    return None


def check_delete(db_path: str | os.PathLike[str], run_id: int) -> dict[str, Any]:
    """The run, when it may be deleted (a front end asks before it asks the user); LaunchError (one line) if not."""
    with Store(db_path, create=False) as store:
        liveness.reap(store)
        run = _get(store, run_id)
        refusal = delete_refusal(store, run)
    if refusal:
        raise LaunchError(refusal)
    return run


def delete_run(db_path: str | os.PathLike[str], run_id: int) -> Outcome:
    """The delete use case: its rows in every table and its runs/<id>/ folder, unless `delete_refusal` says no. The
    rule is asked again in the transaction that deletes, so a run started meanwhile is never deleted."""
    with Store(db_path, create=False) as store:
        liveness.reap(store)
        with store.atomic():
            run = _get(store, run_id)
            refusal = delete_refusal(store, run)
            if refusal:
                raise LaunchError(refusal)
            store.delete_run_rows(run_id)
    remove_run_folder(run)
    return Outcome(run_id, f"run {run_id} deleted")
