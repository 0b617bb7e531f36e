"""The `sweeps` table and a sweep's member runs (issue 8).

A sweep is a row of `sweeps` and its member runs (`runs.sweep_id`, their axis values, slot and off-grid mark). A
member that waits in the queue is a 'queued' run with no pid; the sweep's supervisor (difftui.engine.sweeps.supervisor)
owns the sweep through sweeps/<id>/lock, as an engine owns its run, and starts members as slots free up.

A sweep's status changes only here, each with its guard:

    create_sweep          -> running, no supervisor yet
    claim_sweep           -> running, with the launched supervisor's pid
    claim_slurm_sweep     -> running, its members submitted to Slurm (no supervisor: their job arrays)
    mark_sweep_stopping   running -> stopping          a supervisor lives and winds the members down
    end_sweep             -> stopped | completed | crashed (from the statuses the caller names; by default only from
                             running or stopping, and, for the reaper, only while the same supervisor pid is recorded)

Whether a supervisor is alive is decided in difftui.engine.launch.liveness.
"""

from __future__ import annotations

import json
import time
from typing import Any, Iterable

from difftui.engine.store.connection import StoreError
from difftui.engine.store.layout import FolderTaken, claim_folder
from difftui.engine.store.runs import ACTIVE_STATUSES

__all__ = ["SweepsTable", "SWEEP_STATUSES", "ACTIVE_SWEEP_STATUSES"]

SWEEP_STATUSES = ("running", "stopping", "stopped", "completed", "crashed")
ACTIVE_SWEEP_STATUSES = ("running", "stopping")
_ANY = object()


class SweepsTable:
    """Sweeps and their members (a mixin of `Store`)."""

    def create_sweep(self, *, name: str, preset: str, base_config: dict[str, Any], grid: dict[str, Any],
                     spec: dict[str, Any], runs_per_device: int, devices: list[Any],
                     cpu_threads: int | None = None) -> int:
        """A new sweep, status 'running' with no supervisor yet (the reaper leaves a sweep with no pid alone)."""
        now = time.time()
        with self.atomic():
            cur = self.db.execute(
                "INSERT INTO sweeps (name, base_config, grid, created, status, preset, spec, runs_per_device, devices,"
                " cpu_threads) VALUES (?,?,?,?,?,?,?,?,?,?)",
                [name, json.dumps(base_config), json.dumps(grid), now, "running", preset, json.dumps(spec),
                 runs_per_device, json.dumps(devices), cpu_threads])
            sweep_id = int(cur.lastrowid)
            try:
                folder = claim_folder(self.sweeps_root, sweep_id)
            except FolderTaken as e:
                raise StoreError(str(e)) from None
            self.db.execute("UPDATE sweeps SET sweep_dir = ? WHERE id = ?", [str(folder), sweep_id])
        return sweep_id

    def get_sweep(self, sweep_id: int) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM sweeps WHERE id = ?", [sweep_id])
        return rows[0] if rows else None

    def list_sweeps(self) -> list[dict[str, Any]]:
        """Every sweep, newest first, with `members` (count) and `counts` ({status: n}) of its member runs."""
        sweeps = self._rows("SELECT * FROM sweeps ORDER BY id DESC")
        counts: dict[int, dict[str, int]] = {}
        for r in self._rows("SELECT sweep_id, status, COUNT(*) AS n FROM runs WHERE sweep_id IS NOT NULL"
                            " GROUP BY sweep_id, status"):
            counts.setdefault(r["sweep_id"], {})[r["status"]] = r["n"]
        for sw in sweeps:
            sw["counts"] = counts.get(sw["id"], {})
            sw["members"] = sum(sw["counts"].values())
        return sweeps

    def update_sweep(self, sweep_id: int, **fields: Any) -> None:
        """Set columns of a sweep (its name, grid, supervisor); a status change goes through the transitions below."""
        if not fields:
            return
        cols = ", ".join(f"{k} = ?" for k in fields)
        with self.atomic():
            self.db.execute(f"UPDATE sweeps SET {cols} WHERE id = ?", [*fields.values(), sweep_id])

    def sweep_members(self, sweep_id: int) -> list[dict[str, Any]]:
        """The sweep's member runs in creation (grid) order."""
        return self._rows("SELECT * FROM runs WHERE sweep_id = ? ORDER BY id", [sweep_id])

    def set_member(self, run_id: int, *, axis_values: dict[str, Any], off_grid: bool) -> None:
        self.update_run(run_id, axis_values=json.dumps(axis_values), off_grid=int(off_grid))

    def assign_slot(self, run_id: int, slot: int) -> bool:
        """Give a waiting member (queued, never started) its slot; False when it is no longer waiting."""
        with self.atomic():
            cur = self.db.execute("UPDATE runs SET sweep_slot = ? WHERE id = ? AND status = 'queued' AND pid IS NULL",
                                  [slot, run_id])
        return cur.rowcount == 1

    def claim_sweep(self, sweep_id: int, *, pid: int, pid_start: float | None, host: str) -> None:
        """The launcher's claim (before the supervisor has taken the lock): the sweep lives while this pid does. Made
        in the launcher's transaction (sweeps.control.start_supervisor), so two launchers give one supervisor."""
        with self.atomic():
            self.db.execute("UPDATE sweeps SET status = 'running', pid = ?, pid_start = ?, host = ?, error = NULL,"
                            " ended = NULL, started = COALESCE(started, ?) WHERE id = ?",
                            [pid, pid_start, host, time.time(), sweep_id])

    def claim_slurm_sweep(self, sweep_id: int, slurm: str) -> None:
        """A sweep whose members were (re)submitted to Slurm: running, with its Slurm options (JSON); no supervisor."""
        with self.atomic():
            self.db.execute("UPDATE sweeps SET status = 'running', slurm = ?, pid = NULL, pid_start = NULL,"
                            " host = NULL, error = NULL, ended = NULL, started = COALESCE(started, ?) WHERE id = ?",
                            [slurm, time.time(), sweep_id])

    def requeue_members(self, sweep_id: int, statuses: Iterable[str], run_ids: Iterable[int] | None = None
                        ) -> list[int]:
        """Put members with one of `statuses` back in the queue (queued, no pid: the engine then continues from the
        newest checkpoint, or starts afresh where there is none). A live run is never touched. Returns their ids."""
        statuses = [s for s in statuses if s not in ACTIVE_STATUSES]
        marks = ",".join("?" * len(statuses))
        with self.atomic():
            rows = self._rows(f"SELECT id FROM runs WHERE sweep_id = ? AND status IN ({marks}) ORDER BY id",
                              [sweep_id, *statuses])
            ids = [r["id"] for r in rows]
            if run_ids is not None:
                wanted = set(run_ids)
                ids = [i for i in ids if i in wanted]
            for run_id in ids:
                self.db.execute("UPDATE runs SET status = 'queued', pid = NULL, pid_start = NULL, error = NULL,"
                                " ended = NULL, sweep_slot = NULL, slurm_job = NULL, slurm_index = NULL,"
                                " slurm_state = NULL, slurm_reason = NULL, slurm_nodes = NULL, stop_asked = NULL"
                                " WHERE id = ?", [run_id])
                self._event(run_id, "info", f"queued again by sweep {sweep_id}")
        return ids

    def hold_members(self, sweep_id: int, run_ids: Iterable[int]) -> list[int]:
        """Members on Slurm whose pending job was cancelled by `sweep stop`: back to waiting (queued, no job), so that
        `sweep resume` submits them again. A member whose engine has reported (running, ...) is not touched."""
        held = []
        with self.atomic():
            for run_id in run_ids:
                cur = self.db.execute("UPDATE runs SET slurm_job = NULL, slurm_index = NULL, slurm_state = NULL,"
                                      " slurm_reason = NULL, slurm_nodes = NULL, pid = NULL WHERE id = ? AND"
                                      " sweep_id = ? AND status = 'queued'", [run_id, sweep_id])
                if cur.rowcount:
                    held.append(run_id)
                    self._event(run_id, "info", f"held by sweep stop {sweep_id} (its pending Slurm job cancelled)")
        return held

    def slurm_sweeps(self) -> list[dict[str, Any]]:
        """Sweeps on Slurm that are running or stopping (no supervisor: their members' jobs are the sweep)."""
        return self._rows("SELECT * FROM sweeps WHERE status IN ('running', 'stopping') AND slurm IS NOT NULL")

    def supervised_sweeps(self) -> list[dict[str, Any]]:
        """Sweeps marked running or stopping that a supervisor was launched for (the reaper's candidates)."""
        return self._rows("SELECT * FROM sweeps WHERE status IN ('running', 'stopping') AND pid IS NOT NULL"
                          " AND slurm IS NULL")

    def mark_sweep_stopping(self, sweep_id: int) -> bool:
        """running -> stopping: its supervisor starts nothing more and ends the sweep once the members have stopped."""
        with self.atomic():
            cur = self.db.execute("UPDATE sweeps SET status = 'stopping' WHERE id = ? AND status = 'running'",
                                  [sweep_id])
        return cur.rowcount == 1

    def end_sweep(self, sweep_id: int, status: str, *, error: str | None = None,
                  only_from: Iterable[str] = ACTIVE_SWEEP_STATUSES, supervisor_pid: Any = _ANY) -> bool:
        """The sweep ends: 'stopped', 'completed' or 'crashed' (with `error`; an earlier error is kept otherwise).
        Changes it only while its status is one of `only_from`, and, when `supervisor_pid` is given, only while that
        supervisor is the one recorded (a reaper never ends a sweep that a new supervisor has just claimed). `ended`
        is now, or kept when the sweep had already ended. Returns whether it changed."""
        if status not in ("stopped", "completed", "crashed"):
            raise ValueError(f"end_sweep: {status!r} is not stopped, completed or crashed")
        only_from = [s for s in only_from if s in SWEEP_STATUSES]
        marks = ",".join("?" * len(only_from))
        sql = (f"UPDATE sweeps SET status = ?, error = COALESCE(?, error), ended = CASE WHEN ended IS NULL OR status"
               f" IN ('running', 'stopping') THEN ? ELSE ended END WHERE id = ? AND status IN ({marks})")
        params = [status, error, time.time(), sweep_id, *only_from]
        if supervisor_pid is not _ANY:
            sql, params = sql + " AND pid IS ?", params + [supervisor_pid]
        with self.atomic():
            cur = self.db.execute(sql, params)
        return cur.rowcount == 1
