"""The run database (`runs.db`): schema, migrations and every read and write.

One SQLite file in WAL mode holds everything a run produces. The engine (rank 0) writes in batched transactions; the
TUI reads incrementally (`WHERE id > last_seen`) from worker threads. SQLite connections are not shared across
threads: open one `Store` per thread (they are cheap).

Schema changes go through `MIGRATIONS`: each entry upgrades `PRAGMA user_version` by one, so a database written by an
older difftui still opens.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import sqlite3
import time
import urllib.parse
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

import sqlite_utils

from difftui.engine.launch.lock import holder, pid_alive

__all__ = ["Store", "StoreError", "default_db_path", "open_for_reading", "SCHEMA_VERSION", "RUN_STATUSES",
           "ACTIVE_STATUSES", "encode_value", "decode_value", "run_lock_path", "SWEEP_STATUSES",
           "ACTIVE_SWEEP_STATUSES", "sweep_lock_path"]

RUN_STATUSES = ("queued", "running", "stopping", "completed", "stopped", "failed", "crashed")
ACTIVE_STATUSES = ("queued", "running", "stopping")
SWEEP_STATUSES = ("running", "stopping", "stopped", "completed", "crashed")
ACTIVE_SWEEP_STATUSES = ("running", "stopping")
HEARTBEAT_TIMEOUT_S = 60.0          # only for a run owned on another host, whose lock this machine cannot see


def encode_value(value: float | None) -> float | str | None:
    """SQLite stores a NaN REAL as NULL; store it as the text 'NaN' instead (inf and -inf are REALs already).
    DESIGN.md: non-finite numbers are data."""
    if isinstance(value, float) and value != value:
        return "NaN"
    return value


def decode_value(value: Any) -> float | None:
    """The inverse of `encode_value` for a value read back ('NaN' -> nan; numbers as they are; NULL -> None)."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return math.nan
    return value


def _decode(rows: list[dict[str, Any]], *columns: str) -> list[dict[str, Any]]:
    for row in rows:
        for c in columns:
            if isinstance(row.get(c), str):
                row[c] = decode_value(row[c])
    return rows


def run_lock_path(run: dict[str, Any]) -> Path | None:
    """runs/<id>/lock: held by the run's engine for its whole life (difftui.engine.launch.lock)."""
    return Path(run["run_dir"]) / "lock" if run.get("run_dir") else None


def sweep_lock_path(sweep: dict[str, Any]) -> Path | None:
    """sweeps/<id>/lock: held by the sweep's supervisor for its whole life (difftui.engine.launch.lock)."""
    return Path(sweep["sweep_dir"]) / "lock" if sweep.get("sweep_dir") else None


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


def _v2_ownership(db: sqlite_utils.Database) -> None:
    """Run ownership by lock (the launching process's start time, how it was launched) and honest GPU readings
    (a failed reading is NaN with its reason; devices are named by NVML UUID)."""
    db.execute("ALTER TABLE runs ADD COLUMN pid_start REAL")
    db.execute("ALTER TABLE runs ADD COLUMN launch TEXT")
    db.execute("ALTER TABLE gpu ADD COLUMN name TEXT")
    db.execute("ALTER TABLE gpu ADD COLUMN uuid TEXT")
    db.execute("ALTER TABLE gpu ADD COLUMN error TEXT")


def _v_sweeps(db: sqlite_utils.Database) -> None:
    """Sweeps (issue 8): a sweep's status, grid preset, base run options, slots (devices x runs per device) and its
    supervisor process; each member run's axis values, its slot and an off-grid mark. `sweeps.grid` (v1) holds the
    chosen axes as JSON."""
    for column in ("status TEXT NOT NULL DEFAULT 'completed'", "preset TEXT", "spec TEXT",
                   "runs_per_device INTEGER NOT NULL DEFAULT 1", "devices TEXT", "pid INTEGER", "pid_start REAL",
                   "host TEXT", "error TEXT", "started REAL", "ended REAL", "sweep_dir TEXT"):
        db.execute(f"ALTER TABLE sweeps ADD COLUMN {column}")
    db.execute("ALTER TABLE runs ADD COLUMN axis_values TEXT")
    db.execute("ALTER TABLE runs ADD COLUMN off_grid INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE runs ADD COLUMN sweep_slot INTEGER")
    db.execute("CREATE INDEX IF NOT EXISTS runs_sweep ON runs (sweep_id)")


def _v_metrics_series(db: sqlite_utils.Database) -> None:
    """A covering index for the TUI's whole-series reads (bucketed min/max/mean per step range): the dashboard
    opens a run with a million metric rows without touching the table itself. It supersedes the (run_id, name, step)
    index, which is its prefix."""
    db.execute("CREATE INDEX IF NOT EXISTS metrics_series ON metrics (run_id, name, step, value)")
    db.execute("DROP INDEX IF EXISTS metrics_run_name_step")


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


def _v_monotone_ids(db: sqlite_utils.Database) -> None:
    """Row ids that never come back (AUTOINCREMENT) in the tables the front ends read incrementally (`WHERE id >
    last_seen`): a resume deletes the rows logged after its checkpoint, and plain rowids would then be handed out
    again below a reader's cursor, so its new rows would never be seen. Each table is rebuilt with the same columns
    and indexes."""
    for table in ("metrics", "samples", "evals"):
        (create,) = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", [table]).fetchone()
        indexes = [r[0] for r in db.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ?"
                                            " AND sql IS NOT NULL", [table]).fetchall()]
        db.execute(f"ALTER TABLE {table} RENAME TO {table}_before_autoincrement")
        db.execute(create.replace("id INTEGER PRIMARY KEY", "id INTEGER PRIMARY KEY AUTOINCREMENT", 1))
        db.execute(f"INSERT INTO {table} SELECT * FROM {table}_before_autoincrement")
        db.execute(f"DROP TABLE {table}_before_autoincrement")
        for sql in indexes:
            db.execute(sql)


def _v_sweep_threads(db: sqlite_utils.Database) -> None:
    """The CPU threads each member of a CPU sweep gets, fixed when the sweep is created: a supervisor restarted from
    another shell (another DIFFTUI_CPU_THREADS) keeps the split, and `sweep show` says what the members really got."""
    db.execute("ALTER TABLE sweeps ADD COLUMN cpu_threads INTEGER")


MIGRATIONS = [_v1, _v2_ownership, _v_sweeps, _v_metrics_series, _v_eval_jobs, _v_monotone_ids, _v_sweep_threads]
SCHEMA_VERSION = len(MIGRATIONS)


#----------------------------------------------------------------------------
# The store.

class Store:
    """One connection to `runs.db`. Open one per thread.

    `read_only=True` opens it for reading only (SQLite `mode=ro`), e.g. a runs.db in a folder this user cannot write
    (see `open_for_reading`): no migration, no reaping, and a write raises."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True, read_only: bool = False):
        self.path = Path(path)
        self.read_only = read_only
        if (read_only or not create) and not self.path.exists():
            raise StoreError(f"{self.path}: no such run database")
        try:
            if read_only:
                conn = _connect_read_only(self.path)
            else:
                if create:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA busy_timeout = 30000")
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
            self.db = sqlite_utils.Database(conn)
            if read_only:
                self._check_version_read_only()
            else:
                self._migrate()
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path}: not a usable run database ({e})") from None

    def _beside(self, kind: str) -> Path:
        """runs/ or sweeps/ beside runs.db, <stem>-runs/ or <stem>-sweeps/ beside any other database file, so that two
        databases in one directory never share a run's or a sweep's folder (each run and sweep records its folder, so
        those created before this rule keep theirs)."""
        path = self.path.resolve()
        if path.name == "runs.db":
            return path.parent / kind
        return path.parent / (f"{path.stem}-{kind}" if path.suffix == ".db" else f"{path.name}-{kind}")

    @property
    def runs_root(self) -> Path:
        return self._beside("runs")

    @property
    def sweeps_root(self) -> Path:
        return self._beside("sweeps")

    @staticmethod
    def _claim_folder(root: Path, item_id: int) -> Path:
        """A new, empty folder <root>/<id>, or <root>/<id>.<k> where <id> is left from a database that was deleted or
        replaced: its checkpoints or lock must neither be taken over by the new run or sweep nor be overwritten."""
        root.mkdir(parents=True, exist_ok=True)
        for k in range(1000):
            folder = root / (str(item_id) if k == 0 else f"{item_id}.{k}")
            try:
                folder.mkdir()
                return folder
            except FileExistsError:
                if folder.is_dir() and not any(folder.iterdir()):
                    return folder
        raise StoreError(f"{root}: no free folder for {item_id} ({item_id}.1 ... {item_id}.999 are all taken)")

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

    def _check_version_read_only(self) -> None:
        version = self.schema_version
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path}: written by a newer difftui (schema {version} > {SCHEMA_VERSION})")
        if version < SCHEMA_VERSION:
            raise StoreError(f"{self.path}: written by an older difftui (schema {version} < {SCHEMA_VERSION}) and "
                             f"read-only here; open it once where it can be written, to upgrade it")

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
            run_dir = self._claim_folder(self.runs_root, run_id)
            self.db.execute("UPDATE runs SET run_dir = ? WHERE id = ?", [str(run_dir), run_id])
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
        return _decode(self._rows(
            f"""SELECT r.*,
                 (SELECT value FROM metrics m WHERE m.run_id = r.id AND m.name IN ('L_simple', 'L_edm')
                  ORDER BY m.id DESC LIMIT 1) AS last_loss
               FROM runs r {where} ORDER BY r.id DESC""", params), "last_loss")

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
        """An active run is alive exactly while its engine holds runs/<id>/lock (difftui.engine.launch.lock): a slow
        step, a compile or a suspended laptop never makes it dead, and kill -9 always does.

        Before the engine has taken the lock (it is importing torch), a 'queued' run lives while the process its
        launcher started does (pid and start time recorded by `launch.start_run`); a queued run with no pid is
        waiting to be started (e.g. in a sweep's queue) and is not alive. A run owned on another host,
        whose lock this machine cannot see, falls back to its heartbeat."""
        if run["status"] not in ACTIVE_STATUSES:
            return False
        now = time.time() if now is None else now
        if run["host"] and run["host"] != socket.gethostname():
            beat = run["heartbeat"] or run["created"]
            return now - beat < HEARTBEAT_TIMEOUT_S
        lock = run_lock_path(run)
        if lock is not None and holder(lock) is not None:
            return True
        if run["status"] == "queued":
            return pid_alive(run["pid"], run.get("pid_start"))
        return False

    def reap_dead_runs(self) -> list[int]:
        """Mark active runs whose engine is gone as crashed; return their ids (none in a read-only store)."""
        if self.read_only:
            return []
        dead = []
        for run in self._rows("SELECT * FROM runs WHERE status IN ('queued', 'running', 'stopping')"):
            if run["status"] == "queued" and not run["pid"]:
                continue                            # never started: waiting in a queue, not dead
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
        """metrics: (step, kimg, name, value, time); gpu: (time, idx, util, mem_used, mem_total, temp, power[, name,
        uuid, error]) with NaN for a reading that failed and its reason in `error`;
        events: (time, level, message); run_fields: columns of `runs` to update (step, heartbeat, ...)."""
        with self.atomic():
            conn = self.db.conn
            if metrics:
                conn.executemany("INSERT INTO metrics (run_id, step, kimg, name, value, time) VALUES (?,?,?,?,?,?)",
                                 [(run_id, s, k, n, encode_value(v), t) for s, k, n, v, t in metrics])
            if gpu:
                conn.executemany("INSERT INTO gpu (run_id, time, idx, util, mem_used, mem_total, temperature, power,"
                                 " name, uuid, error) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                                 [_gpu_row(run_id, g) for g in gpu])
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
                [(run_id, *r[:4], encode_value(r[4]), now) for r in rows])

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
            return _decode(self._rows(f"SELECT id, step, kimg, name, value, time FROM metrics WHERE run_id = ?"
                                      f" AND id > ? AND name IN ({marks}) ORDER BY id", [run_id, last_id, *names]),
                           "value")
        return _decode(self._rows("SELECT id, step, kimg, name, value, time FROM metrics WHERE run_id = ? AND id > ?"
                                  " ORDER BY id", [run_id, last_id]), "value")

    def metric_names(self, run_id: int) -> list[str]:
        return [r["name"] for r in self._rows("SELECT DISTINCT name FROM metrics WHERE run_id = ? ORDER BY name",
                                              [run_id])]

    def series(self, run_id: int, name: str) -> list[tuple[int, float]]:
        return [(r["step"], decode_value(r["value"])) for r in self._rows(
            "SELECT step, value FROM metrics WHERE run_id = ? AND name = ? ORDER BY step, id", [run_id, name])]

    def gpu_since(self, run_id: int, last_id: int = 0) -> list[dict[str, Any]]:
        return _decode(self._rows("SELECT * FROM gpu WHERE run_id = ? AND id > ? ORDER BY id", [run_id, last_id]),
                       "util", "mem_used", "mem_total", "temperature", "power")

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
        return _decode(self._rows("SELECT * FROM evals WHERE run_id = ? ORDER BY step, id", [run_id]), "value")

    def latest_values(self, run_id: int) -> dict[str, float]:
        rows = self._rows("""SELECT m.name, m.value FROM metrics m
                             JOIN (SELECT name, MAX(id) AS id FROM metrics WHERE run_id = ? GROUP BY name) l
                             ON m.id = l.id""", [run_id])
        return {r["name"]: decode_value(r["value"]) for r in rows}


    #------------------------------------------------------------------------
    # Sweeps (issue 8). A sweep is a row of `sweeps` and its member runs (runs.sweep_id). A member that waits in the
    # queue is a 'queued' run with no pid; the sweep's supervisor (difftui.engine.sweeps.supervisor) owns the sweep
    # through sweeps/<id>/lock, as an engine owns its run, and starts members as slots free up.

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
            folder = self._claim_folder(self.sweeps_root, sweep_id)
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
        """The launcher's claim (before the supervisor has taken the lock): the sweep lives while this pid does."""
        self.db.execute("UPDATE sweeps SET status = 'running', pid = ?, pid_start = ?, host = ?, error = NULL,"
                        " ended = NULL, started = COALESCE(started, ?) WHERE id = ?",
                        [pid, pid_start, host, time.time(), sweep_id])

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
                                " ended = NULL, sweep_slot = NULL WHERE id = ?", [run_id])
                self._event(run_id, "info", f"queued again by sweep {sweep_id}")
        return ids

    def is_sweep_alive(self, sweep: dict[str, Any]) -> bool:
        """A sweep is supervised exactly while its supervisor holds sweeps/<id>/lock; before it has taken the lock,
        while the process its launcher started lives (pid and start time, as a queued run)."""
        if sweep["status"] not in ACTIVE_SWEEP_STATUSES:
            return False
        if sweep.get("host") and sweep["host"] != socket.gethostname():
            return True                             # supervised on another host: its lock cannot be seen from here
        lock = sweep_lock_path(sweep)
        if lock is not None and holder(lock) is not None:
            return True
        return pid_alive(sweep.get("pid"), sweep.get("pid_start"))

    def reap_dead_sweeps(self) -> list[int]:
        """Sweeps marked running or stopping whose supervisor is gone: 'completed' when nothing is left to do,
        'stopped' when it was stopping, otherwise 'crashed' (its started members train on; `sweep resume` restarts
        the supervisor). Returns their ids."""
        reaped = []
        for sweep in self._rows("SELECT * FROM sweeps WHERE status IN ('running', 'stopping') AND pid IS NOT NULL"):
            if self.is_sweep_alive(sweep):
                continue
            members = self.sweep_members(sweep["id"])
            left = [m for m in members if m["status"] in ACTIVE_STATUSES]
            if sweep["status"] == "stopping":
                status, error = "stopped", None
            elif not left:
                status, error = "completed", None
            else:
                status = "crashed"
                error = "the sweep's supervisor process is gone; started members train on (sweep resume restarts it)"
            with self.atomic():
                cur = self.db.execute("UPDATE sweeps SET status = ?, error = COALESCE(?, error), ended = ? WHERE id = ?"
                                      " AND status IN ('running', 'stopping') AND pid IS ?",
                                      [status, error, time.time(), sweep["id"], sweep["pid"]])
            if cur.rowcount:
                reaped.append(sweep["id"])
        return reaped

    def last_and_best(self, run_ids: Iterable[int], names: Iterable[str]) -> dict[int, dict[str, tuple]]:
        """{run_id: {name: (last value, best (lowest finite) value, step of the last)}} for the given metrics."""
        run_ids, names = list(run_ids), list(names)
        if not run_ids or not names:
            return {}
        rm, nm = ",".join("?" * len(run_ids)), ",".join("?" * len(names))
        out: dict[int, dict[str, tuple]] = {r: {} for r in run_ids}
        last = self._rows(f"""SELECT m.run_id, m.name, m.value, m.step FROM metrics m JOIN (
                                SELECT MAX(id) AS id FROM metrics WHERE run_id IN ({rm}) AND name IN ({nm})
                                GROUP BY run_id, name) l ON m.id = l.id""", [*run_ids, *names])
        best = self._rows(f"""SELECT run_id, name, MIN(value) AS value FROM metrics WHERE run_id IN ({rm})
                              AND name IN ({nm}) AND typeof(value) IN ('real', 'integer') GROUP BY run_id, name""",
                          [*run_ids, *names])
        best_of = {(r["run_id"], r["name"]): r["value"] for r in best}
        for r in last:
            out[r["run_id"]][r["name"]] = (decode_value(r["value"]), best_of.get((r["run_id"], r["name"]), math.nan),
                                           r["step"])
        return out

    def latest_nll(self, run_ids: Iterable[int]) -> dict[int, tuple[int, float]]:
        """{run_id: (step, lowest NLL in bits/dim over the panel's samplers)} at each run's latest evaluated step."""
        run_ids = list(run_ids)
        if not run_ids:
            return {}
        rm = ",".join("?" * len(run_ids))
        rows = _decode(self._rows(f"""SELECT e.run_id, e.step, e.value FROM evals e JOIN (
                                        SELECT run_id, MAX(step) AS step FROM evals WHERE metric = 'nll_bpd'
                                        AND run_id IN ({rm}) GROUP BY run_id) l
                                      ON e.run_id = l.run_id AND e.step = l.step WHERE e.metric = 'nll_bpd'""",
                                  run_ids), "value")
        out: dict[int, tuple[int, float]] = {}
        for r in rows:
            prev = out.get(r["run_id"])
            v = r["value"] if r["value"] is not None else math.nan
            if prev is None or (v == v and not prev[1] <= v):
                out[r["run_id"]] = (r["step"], v)
        return out

    def metrics_since_many(self, run_ids: Iterable[int], names: Iterable[str], last_id: int = 0
                           ) -> list[dict[str, Any]]:
        """New metric rows of several runs (overlaid charts), oldest first."""
        run_ids, names = list(run_ids), list(names)
        if not run_ids or not names:
            return []
        rm, nm = ",".join("?" * len(run_ids)), ",".join("?" * len(names))
        return _decode(self._rows(f"SELECT id, run_id, step, kimg, name, value FROM metrics WHERE run_id IN ({rm})"
                                  f" AND name IN ({nm}) AND id > ? ORDER BY id", [*run_ids, *names, last_id]), "value")

    def throughput_samples(self, backbone: str, dataset: str, *, runs: int = 20, per_run: int = 50
                           ) -> list[dict[str, Any]]:
        """Earlier runs of this backbone preset on this data set that logged img/s, newest first: each with its
        config, device and its last `per_run` img/s values (the estimate matches and summarises them)."""
        out = []
        for run in self._rows("SELECT r.id, r.config, r.device FROM runs r WHERE r.backbone = ? AND r.dataset = ?"
                              " AND EXISTS (SELECT 1 FROM metrics m WHERE m.run_id = r.id AND m.name = 'img_per_s')"
                              " ORDER BY r.id DESC LIMIT ?", [backbone, dataset, runs]):
            values = [decode_value(r["value"]) for r in self._rows(
                "SELECT value FROM metrics WHERE run_id = ? AND name = 'img_per_s' ORDER BY id DESC LIMIT ?",
                [run["id"], per_run])]
            run["img_per_s"] = [v for v in values if v is not None and math.isfinite(v) and v > 0]
            out.append(run)
        return out


    # TUI reads: a whole series reduced in SQL to what a chart can draw, the newest rows only, and cursors. Each
    # query is answered from an index (tests/tui/test_tui_store_reads.py checks the plans), so opening a run with a
    # million metric rows reads about a thousand rows per series. Reads that must agree take `max_id`, the metric
    # cursor read first, so rows written meanwhile are left to the next incremental read, never counted twice.

    def _named(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        return list(self.db.query(sql, params))

    def metric_cursor(self, run_id: int) -> int:
        """The newest metric row id of a run (0 when it has none)."""
        rows = self._rows("SELECT MAX(id) AS id FROM metrics WHERE run_id = ?", [run_id])
        return int(rows[0]["id"] or 0)

    def series_names(self, run_id: int) -> list[str]:
        """The metric names of a run, sorted; a skip-scan of the index (one seek per name, not one per row)."""
        return [r["name"] for r in self._named(
            """WITH RECURSIVE n(name) AS (
                   SELECT (SELECT MIN(name) FROM metrics WHERE run_id = :run)
                   UNION ALL
                   SELECT (SELECT MIN(name) FROM metrics WHERE run_id = :run AND name > n.name)
                   FROM n WHERE n.name IS NOT NULL)
               SELECT name FROM n WHERE name IS NOT NULL""", {"run": run_id})]

    def series_tail(self, run_id: int, name: str, count: int = 1, max_id: int | None = None) -> list[dict[str, Any]]:
        """The last `count` rows (id, step, value) of one series, newest first."""
        return self._rows("SELECT id, step, value FROM metrics WHERE run_id = ? AND name = ? AND +id <= ?"
                          " ORDER BY step DESC, id DESC LIMIT ?", [run_id, name, _MAX_ID if max_id is None else max_id,
                                                                   count])

    def series_buckets(self, run_id: int, name: str, capacity: int = 1024,
                       max_id: int | None = None) -> tuple[int, list[dict[str, Any]]]:
        """One series in at most `capacity` step buckets: `(width, rows)`, width the smallest power of two with
        max_step // width < capacity; each row is bucket `b` (steps b*width .. (b+1)*width - 1) with `n` rows,
        `n_finite`, `lo`, `hi`, `total` (sum of finite values), `step_total` (sum of their steps), `first_step`,
        `last_step`, and the non-finite counts `n_nan`, `n_pinf`, `n_ninf`. NaN is read as SQL NULL or the text
        'nan', inf as a REAL infinity or the text 'inf' / '-inf' (however the engine stored it)."""
        max_id = _MAX_ID if max_id is None else max_id
        top = self._rows("SELECT MAX(step) AS s FROM metrics WHERE run_id = ? AND name = ? AND +id <= ?",
                         [run_id, name, max_id])[0]["s"]
        if top is None:
            return 1, []
        width = 1
        while top // width >= capacity:
            width *= 2
        params = {"w": width, "run": run_id, "name": name, "max_id": max_id}
        # One plain aggregate over every row (a CASE per column would cost three times as much). A bucket whose
        # minimum, maximum and sum are finite numbers and that has no NULL holds finite values only (text sorts above
        # every number, a NaN is stored as NULL, an infinity makes the sum infinite); the few others (a run that
        # diverged) are read again exactly: their finite rows, then their non-finite ones grouped by value.
        rows = self._named(
            """SELECT step / :w AS b, COUNT(*) AS n, COUNT(value) AS n_value, MIN(value) AS lo, MAX(value) AS hi,
                   TOTAL(value) AS total, TOTAL(step) AS step_total, MIN(step) AS first_step, MAX(step) AS last_step
               FROM metrics WHERE run_id = :run AND name = :name AND +id <= :max_id GROUP BY b""", params)
        clean = [r for r in rows if r["n"] == r["n_value"] and all(
            isinstance(r[k], float | int) and abs(r[k]) <= _FLOAT_MAX for k in ("lo", "hi", "total"))]
        odd_keys = {r["b"] for r in rows} - {r["b"] for r in clean}
        for r in clean:
            r["n_finite"] = r.pop("n")
            del r["n_value"]
        rows, odd = clean, []
        for b in sorted(odd_keys):
            span = {**params, "lo": b * width, "hi": (b + 1) * width}
            rows += self._named(
                f"""SELECT step / :w AS b, COUNT(*) AS n_finite, MIN(value) AS lo, MAX(value) AS hi,
                        TOTAL(value) AS total, TOTAL(step) AS step_total, MIN(step) AS first_step,
                        MAX(step) AS last_step
                    FROM metrics WHERE run_id = :run AND name = :name AND step >= :lo AND step < :hi
                    AND +id <= :max_id AND {_FINITE} GROUP BY b""", span)
            odd += self._named(
                f"""SELECT step / :w AS b, value, COUNT(*) AS n, MIN(step) AS first_step, MAX(step) AS last_step
                    FROM metrics WHERE run_id = :run AND name = :name AND step >= :lo AND step < :hi
                    AND +id <= :max_id AND ({_FINITE}) IS NOT 1 GROUP BY b, value""", span)
        buckets = {r["b"]: {**r, "n_nan": 0, "n_pinf": 0, "n_ninf": 0} for r in rows}
        for r in odd:
            b = buckets.setdefault(r["b"], {"b": r["b"], "n_finite": 0, "lo": None, "hi": None, "total": 0.0,
                                            "step_total": 0.0, "first_step": r["first_step"],
                                            "last_step": r["last_step"], "n_nan": 0, "n_pinf": 0, "n_ninf": 0})
            b["first_step"] = min(b["first_step"], r["first_step"])
            b["last_step"] = max(b["last_step"], r["last_step"])
            value = _nonfinite(r["value"])
            key = "n_nan" if value != value else "n_pinf" if value > 0 else "n_ninf"
            b[key] += r["n"]
        out = [buckets[k] for k in sorted(buckets)]
        for b in out:
            b["n"] = b["n_finite"] + b["n_nan"] + b["n_pinf"] + b["n_ninf"]
        return width, out

    def evals_since(self, run_id: int, last_id: int = 0) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM evals WHERE run_id = ? AND id > ? ORDER BY id", [run_id, last_id])

    def gpu_recent(self, run_id: int, limit: int) -> list[dict[str, Any]]:
        """The newest `limit` gpu rows of a run, oldest first (a panel's history window, not the whole run)."""
        return self._rows("SELECT * FROM (SELECT * FROM gpu WHERE run_id = ? ORDER BY id DESC LIMIT ?) ORDER BY id",
                          [run_id, limit])

    def samples_since(self, run_id: int, last_id: int = 0, kind: str = "grid") -> list[dict[str, Any]]:
        """Sample rows of one kind added after `last_id`, without their PNG bytes."""
        return self._rows("SELECT id, step, kind, sampler, nfe, path, time FROM samples WHERE run_id = ? AND id > ?"
                          " AND kind = ? ORDER BY id", [run_id, last_id, kind])

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


def _gpu_row(run_id: int, row: tuple) -> tuple:
    """(time, idx, util, mem_used, mem_total, temp, power[, name, uuid, error]) -> the INSERT's parameters."""
    time_, idx, *readings = row[:7]
    name, uuid, error = (*row[7:10], None, None, None)[:3]
    return (run_id, time_, idx, *map(encode_value, readings), name, uuid, error)


#----------------------------------------------------------------------------
# Read-only opening (issue 11 item 8): a runs.db in a folder this user cannot write is still listed and shown.

def _connect_read_only(path: Path) -> sqlite3.Connection:
    """`mode=ro`; when that cannot open (WAL mode needs the -shm file, which a read-only folder cannot get), the file
    is opened `immutable=1`: nobody can write it there either (no -wal can be created), so nothing is missed."""
    base = "file:" + urllib.parse.quote(str(path.resolve()))
    for flags in ("mode=ro", "mode=ro&immutable=1"):
        conn = sqlite3.connect(f"{base}?{flags}", uri=True, timeout=30.0, isolation_level=None,
                               check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.OperationalError:
            conn.close()
            if flags != "mode=ro":
                raise
    raise AssertionError("unreachable")


def _writable(path: Path) -> bool:
    folder = path.resolve().parent
    return os.access(folder, os.W_OK) and (not path.exists() or os.access(path, os.W_OK))


def open_for_reading(path: str | os.PathLike[str]) -> Store:
    """A Store for reading an existing runs.db: writable when this user can write it and its folder (so dead runs
    are reaped), otherwise read-only (`store.read_only` is True; the caller says so in one line)."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path}: no such run database")
    if _writable(path):
        try:
            return Store(path, create=False)
        except StoreError as e:
            if "readonly" not in str(e) and "unable to open" not in str(e):
                raise
    return Store(path, read_only=True)

_MAX_ID = 2**63 - 1
_FLOAT_MAX = 1.7976931348623157e308
# A finite value: numeric and within the float range (NULL, text and +-inf all compare false).
_FINITE = "value BETWEEN -1.7976931348623157e308 AND 1.7976931348623157e308"


def _nonfinite(value: Any) -> float:
    """A stored non-finite value as a float: NULL (how SQLite keeps a bound NaN) and unreadable text are NaN."""
    if value is None:
        return float("nan")
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")
