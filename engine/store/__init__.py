"""The run database (`runs.db`): one `Store` per thread, its reads and writes split by table.

One SQLite file in WAL mode holds everything a run produces. The engine (rank 0) writes in batched transactions; the
TUI reads incrementally (`WHERE id > last_seen`) from worker threads. SQLite connections are not shared across
threads: open one `Store` per thread (they are cheap).

    connection.py   opening (WAL, busy timeout, read-only), the schema check, transactions, NaN/inf encoding
    migrations.py   the schema: MIGRATIONS (never edit a shipped entry; append) and SCHEMA_VERSION
    layout.py       the run-folder layout: runs/<id>/, sweeps/<id>/, their lock files, a new folder per id
    runs.py         runs and their named status transitions, commands to a live engine
    logs.py         the engine's batched write (metrics, GPU samples, events), grids, evaluation rows, truncation
    series.py       metric reads for the charts, comparisons of several runs
    sweeps.py       sweeps, their members and status transitions
    jobs.py         evaluator jobs, evaluation results, the best snapshot
    spool.py        what a spool-mode engine writes instead (issue 17): records, heartbeat, commands as files, run.json
    records.py      the spool's record format: one line per Store write method, and applying them
    ingest.py       the ingester: spool records into runs.db by byte offset (spool_files)

No SQL lives outside this package (tests/core/test_no_sql_outside_store.py). Which runs, sweeps and jobs are alive,
and reaping the dead ones, is decided in difftui.engine.launch.liveness; the store only runs the statements.
"""

from __future__ import annotations

import os
from pathlib import Path

from difftui.engine.store.connection import (
    Connection,
    StoreError,
    decode_value,
    default_db_path,
    encode_value,
    writable,
)
from difftui.engine.store.ingest import SpoolFilesTable
from difftui.engine.store.jobs import ACTIVE_JOB_STATUSES, JOB_STATUSES, JobsTable
from difftui.engine.store.layout import run_lock_path, sweep_lock_path
from difftui.engine.store.logs import LogsTable
from difftui.engine.store.migrations import MIGRATIONS, SCHEMA_VERSION
from difftui.engine.store.runs import ACTIVE_STATUSES, FINAL_STATUSES, RUN_STATUSES, SINKS, RunsTable
from difftui.engine.store.series import SeriesReads
from difftui.engine.store.sweeps import ACTIVE_SWEEP_STATUSES, SWEEP_STATUSES, SweepsTable

__all__ = ["Store", "StoreError", "default_db_path", "open_for_reading", "SCHEMA_VERSION", "MIGRATIONS",
           "RUN_STATUSES", "ACTIVE_STATUSES", "FINAL_STATUSES", "encode_value", "decode_value", "run_lock_path",
           "SINKS", "SWEEP_STATUSES", "ACTIVE_SWEEP_STATUSES", "sweep_lock_path", "JOB_STATUSES", "ACTIVE_JOB_STATUSES"]


class Store(RunsTable, LogsTable, SeriesReads, SweepsTable, JobsTable, SpoolFilesTable, Connection):
    """One connection to `runs.db` with every table's reads and writes. Open one per thread.

    `read_only=True` opens it for reading only (SQLite `mode=ro`), e.g. a runs.db in a folder this user cannot write
    (see `open_for_reading`): no migration, no reaping, and a write raises."""

    def __enter__(self) -> "Store":
        return self


def open_for_reading(path: str | os.PathLike[str]) -> Store:
    """A Store for reading an existing runs.db: writable when this user can write it and its folder (so dead runs
    are reaped), otherwise read-only (`store.read_only` is True; the caller says so in one line)."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path}: no such run database")
    if writable(path):
        try:
            return Store(path, create=False)
        except StoreError as e:
            if "readonly" not in str(e) and "unable to open" not in str(e):
                raise
    return Store(path, read_only=True)
