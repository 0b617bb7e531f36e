"""One connection to runs.db: opening (WAL, a busy timeout, read-only where the file cannot be written), the schema
check, the write transaction, and how a non-finite number is stored.

SQLite connections are not shared across threads: open one per thread (they are cheap). The tables' reads and writes
are the mixins beside this module (runs.py, logs.py, series.py, sweeps.py, jobs.py); `difftui.engine.store.Store`
composes them over this base.
"""

from __future__ import annotations

import math
import os
import shutil
import sqlite3
import urllib.parse
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

import sqlite_utils

from difftui.engine.store.layout import runs_root, sweeps_root
from difftui.engine.store.migrations import MIGRATIONS, SCHEMA_VERSION

__all__ = ["Connection", "StoreError", "default_db_path", "encode_value", "decode_value", "decode_rows",
           "writable", "open_error"]

BUSY_TIMEOUT_S = 30.0                               # a writer waits this long for another's transaction


class StoreError(RuntimeError):
    """The database cannot be opened or is not a difftui database; the message names the file. `reason` says why
    when the opening failed (`open_error`): "full", "read_only", "io", "not_a_database", "damaged", or None."""

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.reason = reason


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


FULL_BELOW_BYTES = 1 << 20                          # a disk with less than this left for this user is full


def open_error(path: Path, error: sqlite3.DatabaseError) -> StoreError:
    """What went wrong opening `path`, named (issue 16 item 10): a full disk (SQLite often says only "disk I/O
    error" when it cannot grow its -wal or -shm file), a folder or file this user cannot write, another disk I/O
    error, a file that is not a database, a damaged database; each in one line naming the file or folder at fault."""
    name = getattr(error, "sqlite_errorname", "") or ""
    text = " ".join(str(error).split())
    folder = path.absolute().parent
    try:
        free = shutil.disk_usage(folder).free if folder.is_dir() else None
    except OSError:
        free = None
    if name.startswith("SQLITE_FULL") or (name.startswith("SQLITE_IOERR") or "disk I/O" in text) and \
            free is not None and free < FULL_BELOW_BYTES:
        left = f"{free:,} bytes left" if free is not None else text
        return StoreError(f"{path}: the disk holding {folder} is full ({left}); free some space there", "full")
    if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN")) or "readonly" in text or "unable to open" in text:
        if not os.access(folder, os.W_OK):
            return StoreError(f"{path}: the folder {folder} is read-only for this user (SQLite writes runs.db's -wal "
                              f"and -shm files beside it)", "read_only")
        if path.exists() and not os.access(path, os.W_OK):
            return StoreError(f"{path}: the file is read-only for this user", "read_only")
        return StoreError(f"{path}: cannot open it ({text})", "io")
    if name.startswith("SQLITE_IOERR") or "disk I/O" in text:
        return StoreError(f"{path}: disk I/O error reading or writing it ({text})", "io")
    if name == "SQLITE_NOTADB" or "not a database" in text:
        return StoreError(f"{path}: not a run database (the file is not an SQLite database)", "not_a_database")
    if name.startswith("SQLITE_CORRUPT") or "malformed" in text:
        return StoreError(f"{path}: the run database is damaged ({text})", "damaged")
    return StoreError(f"{path}: not a usable run database ({text})")


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
            raise open_error(self.path, e) from None

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
