"""The run database (`runs.db`): schema, migrations and every read and write.

One SQLite file in WAL mode holds everything a run produces. The engine (rank 0) writes in batched transactions; the
TUI reads incrementally (`WHERE id > last_seen`) from worker threads. SQLite connections are not shared across
threads: open one `Store` per thread (they are cheap).

Schema changes go through `MIGRATIONS`: each entry upgrades `PRAGMA user_version` by one, so a database written by an
older difftui still opens.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

import sqlite_utils

__all__ = ["Store", "StoreError", "default_db_path", "SCHEMA_VERSION", "RUN_STATUSES", "ACTIVE_STATUSES"]

RUN_STATUSES = ("queued", "running", "stopping", "completed", "stopped", "failed", "crashed")
ACTIVE_STATUSES = ("queued", "running", "stopping")
HEARTBEAT_TIMEOUT_S = 60.0          # a live engine beats every few seconds; one silent this long is dead


class StoreError(RuntimeError):
    """The database cannot be opened or is not a difftui database; the message names the file."""


def default_db_path() -> Path:
    """`--db` beats `DIFFTUI_DB`, which beats `./runs.db`."""
    return Path(os.environ.get("DIFFTUI_DB") or "runs.db")


#----------------------------------------------------------------------------
# Migrations. Never edit a shipped entry; append a new one.

def _v1(db: sqlite_utils.Database) -> None:
    db.execute("""
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            status TEXT NOT NULL,
            config TEXT NOT NULL,
            dataset TEXT, backbone TEXT, sampler TEXT, recipe TEXT,
            off_tier INTEGER NOT NULL DEFAULT 0,
            sweep_id INTEGER, parent_id INTEGER,
            pid INTEGER, host TEXT, device TEXT,
            step INTEGER NOT NULL DEFAULT 0, total_steps INTEGER,
            kimg REAL NOT NULL DEFAULT 0,
            heartbeat REAL, error TEXT, run_dir TEXT,
            created REAL NOT NULL, started REAL, ended REAL
        )""")
    db.execute("""
        CREATE TABLE metrics (
            id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL, step INTEGER NOT NULL, kimg REAL,
            name TEXT NOT NULL, value REAL, time REAL NOT NULL)""")
    db.execute("CREATE INDEX metrics_run ON metrics (run_id, id)")
    db.execute("CREATE INDEX metrics_run_name_step ON metrics (run_id, name, step)")
    db.execute("""
        CREATE TABLE gpu (
            id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL, time REAL NOT NULL, idx INTEGER NOT NULL,
            util REAL, mem_used REAL, mem_total REAL, temperature REAL, power REAL)""")
    db.execute("CREATE INDEX gpu_run ON gpu (run_id, id)")
    db.execute("""
        CREATE TABLE samples (
            id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL, step INTEGER NOT NULL, kind TEXT NOT NULL,
            sampler TEXT, nfe INTEGER, path TEXT, png BLOB, time REAL NOT NULL)""")
    db.execute("CREATE INDEX samples_run ON samples (run_id, id)")
    db.execute("""
        CREATE TABLE evals (
            id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL, step INTEGER NOT NULL, sampler TEXT,
            nfe INTEGER, metric TEXT NOT NULL, value REAL, time REAL NOT NULL)""")
    db.execute("CREATE INDEX evals_run ON evals (run_id, id)")
    db.execute("""
        CREATE TABLE events (
            id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL, time REAL NOT NULL, level TEXT NOT NULL,
            message TEXT NOT NULL)""")
    db.execute("CREATE INDEX events_run ON events (run_id, id)")
    db.execute("""
        CREATE TABLE commands (
            id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL, time REAL NOT NULL, command TEXT NOT NULL,
            args TEXT, done REAL)""")
    db.execute("CREATE INDEX commands_run ON commands (run_id, done)")
    db.execute("""
        CREATE TABLE sweeps (
            id INTEGER PRIMARY KEY, name TEXT NOT NULL, base_config TEXT NOT NULL, grid TEXT NOT NULL,
            created REAL NOT NULL)""")


def _v_eval_jobs(db: sqlite_utils.Database) -> None:
    """Evaluation in its own process (issue 7 item 7, issue 9): a `jobs` table for the evaluator's progress rows,
    the protocol of every evaluation beside its number in `evals`, and the best snapshot of a run."""
    db.execute("""
        CREATE TABLE IF NOT EXISTS jobs (
            id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL, kind TEXT NOT NULL, pid INTEGER, host TEXT,
            status TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0, total INTEGER NOT NULL DEFAULT 0,
            message TEXT, error TEXT, args TEXT, created REAL NOT NULL, started REAL, updated REAL, ended REAL)""")
    db.execute("CREATE INDEX IF NOT EXISTS jobs_run ON jobs (run_id, id)")
    for column in ("job_id INTEGER", "kind TEXT", "samples INTEGER", "repeats INTEGER", "spread REAL",
                   "snapshot INTEGER", "protocol TEXT"):
        db.execute(f"ALTER TABLE evals ADD COLUMN {column}")
    db.execute("ALTER TABLE runs ADD COLUMN best_snapshot INTEGER")


MIGRATIONS = [_v1, _v_eval_jobs]
SCHEMA_VERSION = len(MIGRATIONS)


#----------------------------------------------------------------------------
# The store.

class Store:
    """One connection to `runs.db`. Open one per thread."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True):
        self.path = Path(path)
        if not create and not self.path.exists():
            raise StoreError(f"{self.path}: no such run database")
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            self.db = sqlite_utils.Database(conn)
            self._migrate()
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path}: not a usable run database ({e})") from None

    @property
    def runs_root(self) -> Path:
        """runs/<id>/ lives beside runs.db."""
        return self.path.resolve().parent / "runs"

    def close(self) -> None:
        self.db.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _migrate(self) -> None:
        version = self.schema_version
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path}: written by a newer difftui (schema {version} > {SCHEMA_VERSION})")
        if version == SCHEMA_VERSION:
            return
        with self.atomic():
            # Re-read under the write lock: another process may have migrated the file meanwhile.
            for v in range(self.schema_version, SCHEMA_VERSION):
                MIGRATIONS[v](self.db)
                self.db.execute(f"PRAGMA user_version = {v + 1}")

    @property
    def schema_version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """One write transaction (BEGIN IMMEDIATE so that concurrent writers queue on the busy timeout)."""
        conn = self.db.conn
        if conn.in_transaction:
            yield
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        return list(self.db.query(sql, list(params)))

    #------------------------------------------------------------------------
    # Runs.

    def create_run(self, config: dict[str, Any], *, name: str, total_steps: int, device: str = "",
                   sweep_id: int | None = None, parent_id: int | None = None) -> int:
        now = time.time()
        with self.atomic():
            cur = self.db.execute(
                "INSERT INTO runs (name, status, config, dataset, backbone, sampler, recipe, off_tier, sweep_id,"
                " parent_id, device, total_steps, created) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [name, "queued", json.dumps(config), config["dataset"]["name"], config["backbone"]["name"],
                 config["sampler"]["name"], config["recipe"]["name"], int(bool(config["backbone"].get("off_tier"))),
                 sweep_id, parent_id, device, total_steps, now])
            run_id = int(cur.lastrowid)
            run_dir = self.runs_root / str(run_id)
            self.db.execute("UPDATE runs SET run_dir = ? WHERE id = ?", [str(run_dir), run_id])
        run_dir.mkdir(parents=True, exist_ok=True)
        return run_id

    def get_run(self, run_id: int) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM runs WHERE id = ?", [run_id])
        return rows[0] if rows else None

    def run_config(self, run_id: int) -> dict[str, Any]:
        run = self.get_run(run_id)
        if run is None:
            raise StoreError(f"{self.path}: no run {run_id}")
        return json.loads(run["config"])

    def list_runs(self, *, status: str | None = None) -> list[dict[str, Any]]:
        """Every run, newest first, with its last L_simple (or EDM loss) value."""
        where, params = ("WHERE status = ?", [status]) if status else ("", [])
        return self._rows(
            f"""SELECT r.*,
                 (SELECT value FROM metrics m WHERE m.run_id = r.id AND m.name IN ('L_simple', 'L_edm')
                  ORDER BY m.id DESC LIMIT 1) AS last_loss
               FROM runs r {where} ORDER BY r.id DESC""", params)

    def update_run(self, run_id: int, **fields: Any) -> None:
        if not fields:
            return
        cols = ", ".join(f"{k} = ?" for k in fields)
        with self.atomic():
            self.db.execute(f"UPDATE runs SET {cols} WHERE id = ?", [*fields.values(), run_id])

    def set_status(self, run_id: int, status: str, *, error: str | None = None) -> None:
        assert status in RUN_STATUSES, status
        fields: dict[str, Any] = {"status": status}
        if status not in ACTIVE_STATUSES:
            fields["ended"] = time.time()
        if error is not None:
            fields["error"] = error
        self.update_run(run_id, **fields)

    def delete_run(self, run_id: int) -> None:
        run = self.get_run(run_id)
        with self.atomic():
            for table in ("metrics", "gpu", "samples", "evals", "events", "commands", "jobs"):
                self.db.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
            self.db.execute("DELETE FROM runs WHERE id = ?", [run_id])
        if run and run["run_dir"] and Path(run["run_dir"]).is_dir():
            shutil.rmtree(run["run_dir"], ignore_errors=True)

    def is_alive(self, run: dict[str, Any], *, now: float | None = None) -> bool:
        """An active run is alive while its process exists (same host) and its heartbeat, once it beats, is fresh."""
        if run["status"] not in ACTIVE_STATUSES:
            return False
        now = time.time() if now is None else now
        local = run["host"] == socket.gethostname() and bool(run["pid"])
        if local and not _pid_alive(run["pid"]):
            return False
        if run["status"] == "queued" or run["heartbeat"] is None:
            # Not beating yet (the engine is importing torch): its process is the evidence; with no pid recorded
            # yet, give the launcher a grace period.
            return local or now - run["created"] < HEARTBEAT_TIMEOUT_S
        return now - run["heartbeat"] < HEARTBEAT_TIMEOUT_S

    def reap_dead_runs(self) -> list[int]:
        """Mark active runs whose engine is gone as crashed; return their ids."""
        dead = []
        for run in self._rows("SELECT * FROM runs WHERE status IN ('queued', 'running', 'stopping')"):
            if not self.is_alive(run):
                dead.append(run["id"])
        for run_id in dead:
            with self.atomic():
                self.db.execute("UPDATE runs SET status = 'crashed', ended = ?, error = COALESCE(error, ?)"
                                " WHERE id = ? AND status IN ('queued', 'running', 'stopping')",
                                [time.time(), "engine process ended without a final status", run_id])
                self._event(run_id, "error", "engine process is gone; run marked crashed (resume with r)")
        return dead

    #------------------------------------------------------------------------
    # Engine-side writes (rank 0). `write_batch` is the one transaction per logging interval.

    def write_batch(self, run_id: int, *, metrics: list[tuple[int, float, str, float, float]] = (),
                    gpu: list[tuple[float, int, float, float, float, float, float]] = (),
                    events: list[tuple[float, str, str]] = (),
                    run_fields: dict[str, Any] | None = None) -> None:
        """metrics: (step, kimg, name, value, time); gpu: (time, idx, util, mem_used, mem_total, temp, power);
        events: (time, level, message); run_fields: columns of `runs` to update (step, heartbeat, ...)."""
        with self.atomic():
            conn = self.db.conn
            if metrics:
                conn.executemany("INSERT INTO metrics (run_id, step, kimg, name, value, time) VALUES (?,?,?,?,?,?)",
                                 [(run_id, *m) for m in metrics])
            if gpu:
                conn.executemany("INSERT INTO gpu (run_id, time, idx, util, mem_used, mem_total, temperature, power)"
                                 " VALUES (?,?,?,?,?,?,?,?)", [(run_id, *g) for g in gpu])
            if events:
                conn.executemany("INSERT INTO events (run_id, time, level, message) VALUES (?,?,?,?)",
                                 [(run_id, *e) for e in events])
            if run_fields:
                cols = ", ".join(f"{k} = ?" for k in run_fields)
                conn.execute(f"UPDATE runs SET {cols} WHERE id = ?", [*run_fields.values(), run_id])

    def _event(self, run_id: int, level: str, message: str) -> None:
        self.db.execute("INSERT INTO events (run_id, time, level, message) VALUES (?,?,?,?)",
                        [run_id, time.time(), level, message])

    def add_event(self, run_id: int, level: str, message: str) -> None:
        with self.atomic():
            self._event(run_id, level, message)

    def add_sample(self, run_id: int, *, step: int, kind: str, sampler: str, nfe: int, png: bytes,
                   path: str | None = None) -> int:
        with self.atomic():
            cur = self.db.execute(
                "INSERT INTO samples (run_id, step, kind, sampler, nfe, path, png, time) VALUES (?,?,?,?,?,?,?,?)",
                [run_id, step, kind, sampler, nfe, path, png, time.time()])
        return int(cur.lastrowid)

    def add_evals(self, run_id: int, rows: list[tuple[int, str, int, str, float]]) -> None:
        """rows: (step, sampler, nfe, metric, value)."""
        now = time.time()
        with self.atomic():
            self.db.conn.executemany(
                "INSERT INTO evals (run_id, step, sampler, nfe, metric, value, time) VALUES (?,?,?,?,?,?,?)",
                [(run_id, *r, now) for r in rows])

    def truncate_after(self, run_id: int, step: int) -> int:
        """Drop rows logged after `step` (before a resume from that checkpoint); return the metric rows removed."""
        with self.atomic():
            n = self.db.execute("DELETE FROM metrics WHERE run_id = ? AND step > ?", [run_id, step]).rowcount
            self.db.execute("DELETE FROM samples WHERE run_id = ? AND step > ?", [run_id, step])
            self.db.execute("DELETE FROM evals WHERE run_id = ? AND step > ?", [run_id, step])
        return n

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

    #------------------------------------------------------------------------
    # Incremental reads (TUI workers).

    def metrics_since(self, run_id: int, last_id: int = 0, names: Iterable[str] | None = None) -> list[dict[str, Any]]:
        if names:
            names = list(names)
            marks = ",".join("?" * len(names))
            return self._rows(f"SELECT id, step, kimg, name, value, time FROM metrics WHERE run_id = ? AND id > ?"
                              f" AND name IN ({marks}) ORDER BY id", [run_id, last_id, *names])
        return self._rows("SELECT id, step, kimg, name, value, time FROM metrics WHERE run_id = ? AND id > ?"
                          " ORDER BY id", [run_id, last_id])

    def metric_names(self, run_id: int) -> list[str]:
        return [r["name"] for r in self._rows("SELECT DISTINCT name FROM metrics WHERE run_id = ? ORDER BY name",
                                              [run_id])]

    def series(self, run_id: int, name: str) -> list[tuple[int, float]]:
        return [(r["step"], r["value"]) for r in self._rows(
            "SELECT step, value FROM metrics WHERE run_id = ? AND name = ? ORDER BY step, id", [run_id, name])]

    def gpu_since(self, run_id: int, last_id: int = 0) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM gpu WHERE run_id = ? AND id > ? ORDER BY id", [run_id, last_id])

    def events_since(self, run_id: int, last_id: int = 0) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM events WHERE run_id = ? AND id > ? ORDER BY id", [run_id, last_id])

    def samples_index(self, run_id: int, kind: str = "grid") -> list[dict[str, Any]]:
        """Sample rows without their PNG bytes (for a scrubber)."""
        return self._rows("SELECT id, step, kind, sampler, nfe, path, time FROM samples WHERE run_id = ? AND kind = ?"
                          " ORDER BY step, id", [run_id, kind])

    def sample_png(self, sample_id: int) -> bytes | None:
        rows = self._rows("SELECT png FROM samples WHERE id = ?", [sample_id])
        return rows[0]["png"] if rows else None

    def evals_for(self, run_id: int) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM evals WHERE run_id = ? ORDER BY step, id", [run_id])

    def latest_values(self, run_id: int) -> dict[str, float]:
        rows = self._rows("""SELECT m.name, m.value FROM metrics m
                             JOIN (SELECT name, MAX(id) AS id FROM metrics WHERE run_id = ? GROUP BY name) l
                             ON m.id = l.id""", [run_id])
        return {r["name"]: r["value"] for r in rows}


    #------------------------------------------------------------------------
    # Evaluation jobs, their results and the best snapshot (issue 9; written by the evaluator process).
    # A job row is one evaluator process: the spawner creates it (queued), the process claims it (running), reports
    # done/total and a message as it goes, and ends it (done, failed or refused, with a one-line error).

    JOB_STATUSES = ("queued", "running", "done", "failed", "refused")

    def create_job(self, run_id: int, kind: str, args: dict[str, Any] | None = None) -> int:
        with self.atomic():
            cur = self.db.execute("INSERT INTO jobs (run_id, kind, status, args, created, updated) VALUES (?,?,?,?,?,?)",
                                  [run_id, kind, "queued", json.dumps(args or {}), time.time(), time.time()])
        return int(cur.lastrowid)

    def claim_job(self, job_id: int, *, pid: int, host: str | None = None, message: str = "") -> None:
        now = time.time()
        self.update_job_row(job_id, status="running", pid=pid, host=host or socket.gethostname(), started=now,
                            updated=now, message=message)

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
        assert status in ("done", "failed", "refused"), status
        fields: dict[str, Any] = {"status": status, "ended": time.time(), "error": error}
        if message is not None:
            fields["message"] = message
        self.update_job_row(job_id, **fields)

    def get_job(self, job_id: int) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM jobs WHERE id = ?", [job_id])
        return rows[0] if rows else None

    def jobs_for(self, run_id: int, *, active: bool = False) -> list[dict[str, Any]]:
        where = " AND status IN ('queued', 'running')" if active else ""
        return self._rows(f"SELECT * FROM jobs WHERE run_id = ?{where} ORDER BY id", [run_id])

    def reap_dead_jobs(self) -> list[int]:
        """Mark queued/running jobs whose process is gone (this host) as failed; return their ids."""
        dead = []
        now = time.time()
        for job in self._rows("SELECT * FROM jobs WHERE status IN ('queued', 'running')"):
            local = job["host"] in (None, socket.gethostname())
            if job["pid"] and local and not _pid_alive(job["pid"]):
                dead.append(job["id"])
            elif not job["pid"] and now - job["created"] > HEARTBEAT_TIMEOUT_S:
                dead.append(job["id"])
        for job_id in dead:
            with self.atomic():
                self.db.execute("UPDATE jobs SET status = 'failed', ended = ?, error = COALESCE(error, ?)"
                                " WHERE id = ? AND status IN ('queued', 'running')",
                                [now, "evaluator process ended without a final status (see the run's eval.log)",
                                 job_id])
        return dead

    def add_eval_results(self, run_id: int, rows: list[dict[str, Any]]) -> None:
        """rows: dicts with step, sampler, nfe, metric, value and optionally kind, samples, repeats, spread,
        snapshot, protocol (a dict, stored as JSON), job_id."""
        now = time.time()
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
        """Playbook 5.6: the snapshot with the lowest FID under the newest snapshot protocol (same sampler, NFE and
        sample count), written to runs.best_snapshot; returns its step (None when no snapshot has an FID)."""
        rows = [r for r in self.eval_results(run_id, kind="fid") if r["snapshot"] is not None
                and r["metric"] == "fid" and r["value"] == r["value"]]
        best = None
        if rows:
            newest = rows[-1]
            same = [r for r in rows if (r["sampler"], r["nfe"], r["samples"]) ==
                    (newest["sampler"], newest["nfe"], newest["samples"])]
            best = min(same, key=lambda r: (r["value"], r["snapshot"]))["snapshot"]
        self.update_run(run_id, best_snapshot=best)
        return best


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) is not alive.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True
