"""The schema of runs.db and its migrations: `PRAGMA user_version` counts the entries of `MIGRATIONS` applied, so a
database written by an older difftui still opens (it is upgraded in one transaction when first opened for writing).

Never edit a shipped entry; append a new one.
"""

from __future__ import annotations

import sqlite_utils

__all__ = ["MIGRATIONS", "SCHEMA_VERSION"]


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



def _v_job_pid_start(db: sqlite_utils.Database) -> None:
    """An evaluator job names its process by pid and start time, as a run does (issue 16 item 3): a killed
    evaluator whose pid was handed to another process is still seen as gone."""
    db.execute("ALTER TABLE jobs ADD COLUMN pid_start REAL")


def _v_spool(db: sqlite_utils.Database) -> None:
    """Compute nodes never open runs.db (issue 17 item 2): a run records where its engine writes (`sink`: 'db', this
    file; 'spool', append-only records in runs/<id>/spool/ that a front end ingests), the ingester keeps how far it
    has read each spool file (`spool_files`: the byte offset advances in the transaction that applies the rows it
    covers, and the last error, one line), the resume cuts it applied (`spool_cuts`: what an evaluator's file,
    read after the cut, may no longer add; store/records.py), and an evaluator job started by a spool engine is
    found again by the key it named itself with (`jobs.spool_key`)."""
    db.execute("ALTER TABLE runs ADD COLUMN sink TEXT NOT NULL DEFAULT 'db'")
    db.execute("""
        CREATE TABLE IF NOT EXISTS spool_files (
            run_id INTEGER NOT NULL, file TEXT NOT NULL, position INTEGER NOT NULL DEFAULT 0, error TEXT,
            updated REAL, PRIMARY KEY (run_id, file))""")
    db.execute("CREATE TABLE IF NOT EXISTS spool_cuts (run_id INTEGER NOT NULL, step INTEGER NOT NULL,"
               " time REAL NOT NULL)")
    db.execute("CREATE INDEX IF NOT EXISTS spool_cuts_run ON spool_cuts (run_id)")
    db.execute("ALTER TABLE jobs ADD COLUMN spool_key TEXT")
    db.execute("CREATE INDEX IF NOT EXISTS jobs_spool_key ON jobs (run_id, spool_key)")


def _v_slurm(db: sqlite_utils.Database) -> None:
    """Runs and sweeps on a Slurm cluster (issue 17): a run's job (its key, "123" or "120_4" for an array task, and
    the array index), the job's state, reason and nodes as Slurm last gave them, when it was submitted, and when a
    stop was asked (scancel follows after the grace period); a sweep's Slurm options (JSON; NULL: a local sweep)."""
    for column in ("slurm_job TEXT", "slurm_index INTEGER", "slurm_state TEXT", "slurm_reason TEXT",
                   "slurm_nodes TEXT", "slurm_submitted REAL", "stop_asked REAL"):
        db.execute(f"ALTER TABLE runs ADD COLUMN {column}")
    db.execute("ALTER TABLE sweeps ADD COLUMN slurm TEXT")
    db.execute("CREATE INDEX IF NOT EXISTS runs_slurm_job ON runs (slurm_job)")


def _v_fork_step(db: sqlite_utils.Database) -> None:
    """A fork's lineage (issue 18): the step of the parent's checkpoint it continued from (`runs.parent_id` names the
    parent). NULL for a run that is no fork (a clone, a sweep member), 0 for a fork that started
    fresh (a change of the network's shape)."""
    db.execute("ALTER TABLE runs ADD COLUMN fork_step INTEGER")


MIGRATIONS = [_v1, _v2_ownership, _v_sweeps, _v_metrics_series, _v_eval_jobs, _v_monotone_ids, _v_sweep_threads,
              _v_job_pid_start, _v_spool, _v_slurm, _v_fork_step]
SCHEMA_VERSION = len(MIGRATIONS)
