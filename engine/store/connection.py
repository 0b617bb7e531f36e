"""One connection to runs.db: opening (WAL, a busy timeout, read-only where the file cannot be written), the schema
check, the write transaction, and how a non-finite number is stored.

SQLite connections are not shared across threads: open one per thread (they are cheap). The tables' reads and writes
are the mixins beside this module (runs.py, logs.py, series.py, sweeps.py, jobs.py); `difftui.engine.store.Store`
composes them over this base.
"""

from __future__ import annotations

import math
import os
import sqlite3
import urllib.parse
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

import sqlite_utils

from difftui.engine.store.layout import runs_root, sweeps_root
from difftui.engine.store.migrations import MIGRATIONS, SCHEMA_VERSION

__all__ = ["Connection", "StoreError", "default_db_path", "encode_value", "decode_value", "decode_rows",
           "writable"]

BUSY_TIMEOUT_S = 30.0                               # a writer waits this long for another's transaction


class StoreError(RuntimeError):
    """The database cannot be opened or is not a difftui database; the message names the file."""


def default_db_path() -> Path:
    """`--db` beats `DIFFTUI_DB`, which beats `./runs.db`."""
    return Path(os.environ.get("DIFFTUI_DB") or "runs.db")


#----------------------------------------------------------------------------
# Values. DESIGN.md: non-finite numbers are data.

def encode_value(value: float | None) -> float | str | None:
    """SQLite stores a NaN REAL as NULL; store it as the text 'NaN' instead (inf and -inf are REALs already)."""
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


def decode_rows(rows: list[dict[str, Any]], *columns: str) -> list[dict[str, Any]]:
    """`decode_value` on `columns` of every row, in place; returns the rows."""
    for row in rows:
        for c in columns:
            if isinstance(row.get(c), str):
                row[c] = decode_value(row[c])
    return rows


#----------------------------------------------------------------------------
# Opening.

def _connect(path: Path, *, create: bool) -> sqlite3.Connection:
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """`mode=ro` (issue 11 item 8: a runs.db in a folder this user cannot write is still listed and shown); when that
    cannot open (WAL mode needs the -shm file, which a read-only folder cannot get), the file is opened
    `immutable=1`: nobody can write it there either (no -wal can be created), so nothing is missed."""
    base = "file:" + urllib.parse.quote(str(path.resolve()))
    for flags in ("mode=ro", "mode=ro&immutable=1"):
        conn = sqlite3.connect(f"{base}?{flags}", uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                               check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.OperationalError:
            conn.close()
            if flags != "mode=ro":
                raise
    raise AssertionError("unreachable")


def writable(path: Path) -> bool:
    """This user can write the database file (when it exists) and its folder (SQLite's -wal and -shm go there)."""
    folder = path.resolve().parent
    return os.access(folder, os.W_OK) and (not path.exists() or os.access(path, os.W_OK))


class Connection:
    """One connection to `runs.db`. Open one per thread.

    `read_only=True` opens it for reading only (SQLite `mode=ro`), e.g. a runs.db in a folder this user cannot write
    (see `open_for_reading`): no migration, no reaping, and a write raises."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True, read_only: bool = False):
        self.path = Path(path)
        self.read_only = read_only
        if (read_only or not create) and not self.path.exists():
            raise StoreError(f"{self.path}: no such run database")
        try:
            conn = _connect_read_only(self.path) if read_only else _connect(self.path, create=create)
            self.db = sqlite_utils.Database(conn)
            if read_only:
                self._check_version_read_only()
            else:
                self._migrate()
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path}: not a usable run database ({e})") from None

    def close(self) -> None:
        self.db.conn.close()

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- the run-folder layout (layout.py) -------------------------------------------------------------------------

    @property
    def runs_root(self) -> Path:
        return runs_root(self.path)

    @property
    def sweeps_root(self) -> Path:
        return sweeps_root(self.path)

    # -- the schema ------------------------------------------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

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

    # -- transactions and reads ------------------------------------------------------------------------------------

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """One write transaction (BEGIN IMMEDIATE so that concurrent writers queue on the busy timeout). Nested uses
        join the outer transaction."""
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

    def _named(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        return list(self.db.query(sql, params))
