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

from difftui.engine.ownership import holder, pid_alive

__all__ = ["Store", "StoreError", "default_db_path", "open_for_reading", "SCHEMA_VERSION", "RUN_STATUSES",
           "ACTIVE_STATUSES", "encode_value", "decode_value", "run_lock_path"]

RUN_STATUSES = ("queued", "running", "stopping", "completed", "stopped", "failed", "crashed")
ACTIVE_STATUSES = ("queued", "running", "stopping")
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
    """runs/<id>/lock: held by the run's engine for its whole life (difftui.engine.ownership)."""
    return Path(run["run_dir"]) / "lock" if run.get("run_dir") else None


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


MIGRATIONS = [_v1, _v2_ownership]
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
            for table in ("metrics", "gpu", "samples", "evals", "events", "commands"):
                self.db.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
            self.db.execute("DELETE FROM runs WHERE id = ?", [run_id])
        if run and run["run_dir"] and Path(run["run_dir"]).is_dir():
            shutil.rmtree(run["run_dir"], ignore_errors=True)

    def is_alive(self, run: dict[str, Any], *, now: float | None = None) -> bool:
        """An active run is alive exactly while its engine holds runs/<id>/lock (difftui.engine.ownership): a slow
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
