"""The `runs` table and its status machine, and the `commands` a front end sends a live engine.

Every status change is one named method here, and its UPDATE carries the guard that keeps it right when two
processes race (a launcher and a reaper, a stop and the engine's own final write):

    create_run          -> queued                         a new run, no process yet (a sweep member waits like this)
    claim_for_launch    -> queued, with pid               the launcher's claim, in the transaction that spawned it
    claim_for_slurm     -> queued, with a Slurm job       the same claim for a job sbatch accepted (no pid here)
    mark_running        -> running                        the engine, once it holds runs/<id>/lock (the lock guards)
    mark_stopping       running -> stopping               a stop was asked (a queued engine takes the command later)
    finish_run          queued|running|stopping -> completed | stopped | failed     the engine's final word
    mark_crashed        queued|running|stopping -> crashed, with a reason and an event    its engine is gone
    requeue_members     stopped|crashed|failed -> queued, no pid (sweeps.py)

Which runs are alive, and so which are crashed, is decided in difftui.engine.launch.liveness; only the SQL is here.
"""

from __future__ import annotations

import json
import time
from typing import Any

from difftui.engine.store.connection import StoreError, decode_rows
from difftui.engine.store.layout import FolderTaken, claim_folder, remove_run_folder

__all__ = ["RunsTable", "RUN_STATUSES", "ACTIVE_STATUSES", "FINAL_STATUSES", "SINKS"]

SINKS = ("db", "spool")                                      # where a run's engine writes (runs.sink)
RUN_STATUSES = ("queued", "running", "stopping", "completed", "stopped", "failed", "crashed")
ACTIVE_STATUSES = ("queued", "running", "stopping")
FINAL_STATUSES = ("completed", "stopped", "failed")            # what an engine says when it ends
_ACTIVE_SQL = "('queued', 'running', 'stopping')"


class RunsTable:
    """Runs and commands (a mixin of `Store`; needs `atomic`, `_rows`, `db` and `runs_root` from the connection)."""

    #------------------------------------------------------------------------
    # Reads.

    def get_run(self, run_id: int) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM runs WHERE id = ?", [run_id])
        return rows[0] if rows else None

    def require_run(self, run_id: int) -> dict[str, Any]:
        """The run's row; StoreError "<db>: no run N" when there is none."""
        run = self.get_run(run_id)
        if run is None:
            raise StoreError(f"{self.path}: no run {run_id}")
        return run

    def run_config(self, run_id: int) -> dict[str, Any]:
        return json.loads(self.require_run(run_id)["config"])

    def list_runs(self, *, status: str | None = None) -> list[dict[str, Any]]:
        """Every run, newest first, with its last L_simple (or EDM loss) value."""
        where, params = ("WHERE status = ?", [status]) if status else ("", [])
        return decode_rows(self._rows(
            f"""SELECT r.*,
                 (SELECT value FROM metrics m WHERE m.run_id = r.id AND m.name IN ('L_simple', 'L_edm')
                  ORDER BY m.id DESC LIMIT 1) AS last_loss
               FROM runs r {where} ORDER BY r.id DESC""", params), "last_loss")

    def spool_runs(self, *, active: bool = False) -> list[dict[str, Any]]:
        """Runs whose engine writes a spool (runs.sink = 'spool'; `active`: queued, running or stopping only)."""
        where = f" AND status IN {_ACTIVE_SQL}" if active else ""
        return self._rows(f"SELECT * FROM runs WHERE sink = 'spool'{where} ORDER BY id")

    def run_in_folder(self, run_dir: str) -> dict[str, Any] | None:
        """The run whose folder is `run_dir` (a resolved path), if any."""
        rows = self._rows("SELECT * FROM runs WHERE run_dir = ? ORDER BY id LIMIT 1", [run_dir])
        return rows[0] if rows else None

    def active_runs(self) -> list[dict[str, Any]]:
        """Runs whose status says a process works on them or will (queued, running, stopping)."""
        return self._rows(f"SELECT * FROM runs WHERE status IN {_ACTIVE_SQL} ORDER BY id")

    #------------------------------------------------------------------------
    # Writes that are not a status change.

    def create_run(self, config: dict[str, Any], *, name: str, total_steps: int, device: str = "",
                   sweep_id: int | None = None, parent_id: int | None = None, sink: str = "db",
                   run_dir: str | None = None) -> int:
        """A new run, 'queued' with no process, and its folder (layout.py; `run_dir`: an existing folder instead,
        e.g. a run folder copied from a cluster). `sink`: where its engine writes, 'db' (this file) or 'spool'
        (records in runs/<id>/spool/ that a front end ingests). Returns its id."""
        if sink not in SINKS:
            raise ValueError(f"create_run: sink {sink!r} is not one of {', '.join(SINKS)}")
        now = time.time()
        with self.atomic():
            cur = self.db.execute(
                "INSERT INTO runs (name, status, config, dataset, backbone, sampler, recipe, off_tier, sweep_id,"
                " parent_id, device, total_steps, created, sink) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [name, "queued", json.dumps(config), config["dataset"]["name"], config["backbone"]["name"],
                 config["sampler"]["name"], config["recipe"]["name"], int(bool(config["backbone"].get("off_tier"))),
                 sweep_id, parent_id, device, total_steps, now, sink])
            run_id = int(cur.lastrowid)
            if run_dir is None:
                try:
                    run_dir = str(claim_folder(self.runs_root, run_id))
                except FolderTaken as e:
                    raise StoreError(str(e)) from None
            self.db.execute("UPDATE runs SET run_dir = ? WHERE id = ?", [str(run_dir), run_id])
        return run_id

    def update_run(self, run_id: int, **fields: Any) -> None:
        """Set columns of a run (its name, launch plan, device, config, best snapshot ...). A status change goes
        through the named transitions below (tests/core/test_no_sql_outside_store.py checks the engine and the TUI)."""
        if not fields:
            return
        cols = ", ".join(f"{k} = ?" for k in fields)
        with self.atomic():
            self.db.execute(f"UPDATE runs SET {cols} WHERE id = ?", [*fields.values(), run_id])

    def set_total_steps(self, run_id: int, config: dict[str, Any], total_steps: int) -> None:
        """A new end for a run (resume --max-steps): its stored config and its total steps together."""
        self.update_run(run_id, config=json.dumps(config), total_steps=total_steps)

    def delete_run(self, run_id: int) -> None:
        """The run's rows in every table, then its folder. Whether it may be deleted is the caller's rule
        (difftui.engine.launch.runs.delete_refusal); `delete_run_rows` is the part that belongs in its transaction."""
        run = self.get_run(run_id)
        self.delete_run_rows(run_id)
        if run is not None:
            remove_run_folder(run)

    def delete_run_rows(self, run_id: int) -> None:
        with self.atomic():
            for table in ("metrics", "gpu", "samples", "evals", "events", "commands", "jobs", "spool_files",
                          "spool_cuts"):
                self.db.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
            self.db.execute("DELETE FROM runs WHERE id = ?", [run_id])

    #------------------------------------------------------------------------
    # Status transitions (the table in the module docstring).

    def claim_for_launch(self, run_id: int, *, pid: int, pid_start: float | None, host: str, launch: str,
                         sink: str | None = None) -> None:
        """The launcher's claim, made in the same transaction as its liveness check and the spawn
        (launch.runs.start_run), so that two launchers racing for one run give one engine: queued, owned by the
        launched process until the engine takes the lock. `sink`: where the launched engine writes (kept if None)."""
        if sink is not None and sink not in SINKS:
            raise ValueError(f"claim_for_launch: sink {sink!r} is not one of {', '.join(SINKS)}")
        with self.atomic():
            self.db.execute("UPDATE runs SET status = 'queued', pid = ?, pid_start = ?, host = ?, launch = ?,"
                            " error = NULL, ended = NULL, sink = COALESCE(?, sink) WHERE id = ?",
                            [pid, pid_start, host, launch, sink, run_id])

    def claim_for_slurm(self, run_id: int, *, job: str, index: int | None, launch: str, submitted: float) -> None:
        """The launcher's claim of a run submitted to Slurm (launch/slurm/submit.py): queued, owned by the job until
        its engine reports (the job's state decides liveness: launch/liveness.py); its engines write a spool."""
        with self.atomic():
            self.db.execute("UPDATE runs SET status = 'queued', pid = NULL, pid_start = NULL, host = NULL, launch = ?,"
                            " sink = 'spool', slurm_job = ?, slurm_index = ?, slurm_state = 'PENDING',"
                            " slurm_reason = NULL, slurm_nodes = NULL, slurm_submitted = ?, stop_asked = NULL,"
                            " error = NULL, ended = NULL WHERE id = ?", [launch, job, index, submitted, run_id])

    def record_slurm_state(self, run_id: int, *, state: str, reason: str | None, nodes: str | None) -> bool:
        """What Slurm last said about the run's job (shown by ls, show and the dashboard); written only when it
        changed. Returns whether it did."""
        with self.atomic():
            cur = self.db.execute("UPDATE runs SET slurm_state = ?, slurm_reason = ?, slurm_nodes = ? WHERE id = ? AND"
                                  " (slurm_state IS NOT ? OR slurm_reason IS NOT ? OR slurm_nodes IS NOT ?)",
                                  [state, reason, nodes, run_id, state, reason, nodes])
        return cur.rowcount == 1

    def mark_stop_asked(self, run_id: int, when: float) -> None:
        """A stop was asked of a run on Slurm: scancel follows if it has not ended after the grace period."""
        self.update_run(run_id, stop_asked=when)

    def active_slurm_runs(self) -> list[dict[str, Any]]:
        return self._rows(f"SELECT * FROM runs WHERE status IN {_ACTIVE_SQL} AND slurm_job IS NOT NULL ORDER BY id")

    def mark_running(self, run_id: int, *, pid: int, pid_start: float | None, host: str, started: float) -> None:
        """The engine owns the run (it holds runs/<id>/lock, which is the guard: no other process can be here)."""
        with self.atomic():
            self.db.execute("UPDATE runs SET status = 'running', pid = ?, pid_start = ?, host = ?, heartbeat = ?,"
                            " started = ?, error = NULL, ended = NULL WHERE id = ?",
                            [pid, pid_start, host, time.time(), started, run_id])

    def mark_stopping(self, run_id: int) -> bool:
        """running -> stopping. Never overwrites a final status; a queued engine has no heartbeat yet and takes the
        stop command as soon as it owns the run. Returns whether the status changed."""
        with self.atomic():
            cur = self.db.execute("UPDATE runs SET status = 'stopping' WHERE id = ? AND status = 'running'", [run_id])
        return cur.rowcount == 1

    def finish_run(self, run_id: int, status: str, *, error: str | None = None) -> bool:
        """An active run ends: completed, stopped or failed (with its one-line error). Returns whether it changed."""
        with self.atomic():
            return self._finish(run_id, status, error) == 1

    def _finish(self, run_id: int, status: str, error: str | None) -> int:
        if status not in FINAL_STATUSES:
            raise ValueError(f"finish_run: {status!r} is not one of {', '.join(FINAL_STATUSES)}")
        cur = self.db.execute(f"UPDATE runs SET status = ?, ended = ?, error = COALESCE(?, error) WHERE id = ?"
                              f" AND status IN {_ACTIVE_SQL}", [status, time.time(), error, run_id])
        return cur.rowcount

    def mark_crashed(self, run_id: int, reason: str, *, event: str | None = None, keep_error: bool = True) -> bool:
        """An active run whose engine is gone -> crashed, with `reason` as its error (an earlier error is kept when
        `keep_error`) and `event` (default: the reason) in its log, in one transaction. Returns whether it changed:
        False when the run had already ended (its engine's final word came first)."""
        with self.atomic():
            error = "COALESCE(error, ?)" if keep_error else "?"
            cur = self.db.execute(f"UPDATE runs SET status = 'crashed', ended = ?, error = {error} WHERE id = ?"
                                  f" AND status IN {_ACTIVE_SQL}", [time.time(), reason, run_id])
            if cur.rowcount:
                self._event(run_id, "error", event or reason)
        return cur.rowcount == 1

    #------------------------------------------------------------------------
    # Commands (TUI/CLI -> engine).

    def send_command(self, run_id: int, command: str, args: dict[str, Any] | None = None) -> int:
        with self.atomic():
            cur = self.db.execute("INSERT INTO commands (run_id, time, command, args) VALUES (?,?,?,?)",
                                  [run_id, time.time(), command, json.dumps(args or {})])
        return int(cur.lastrowid)

    def take_commands(self, run_id: int) -> list[dict[str, Any]]:
        """Pending commands for a run, oldest first, marked done in the same transaction."""
        with self.atomic():
            rows = self._rows("SELECT * FROM commands WHERE run_id = ? AND done IS NULL ORDER BY id", [run_id])
            if rows:
                self.db.execute("UPDATE commands SET done = ? WHERE run_id = ? AND done IS NULL",
                                [time.time(), run_id])
        for r in rows:
            r["args"] = json.loads(r["args"] or "{}")
        return rows
