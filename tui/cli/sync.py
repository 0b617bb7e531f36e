"""`difftui sync`: bring what spool-mode engines wrote (runs/<id>/spool/, e.g. on a Slurm cluster's nodes) into
runs.db (issue 17 item 2; the use cases are difftui.engine.launch.sync).

    difftui sync                    every spool run of the database, once
    difftui sync --follow           the same every --every seconds until Ctrl-C (e.g. beside `difftui ls` over SSH)
    difftui sync PATH [PATH ...]    run folders, e.g. copied back from a cluster without a shared filesystem
                                    (rsync -a cluster:runs/7/ runs-from-cluster/7/, then sync): a folder this database
                                    does not know becomes a new run; a known one is ingested

One line per run; an error is one line naming the file, the byte offset and the fault, and the exit code is 1.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Optional

import typer

from difftui.tui.cli.common import UserError, ctx_obj, out, user_command

__all__ = ["sync", "register"]


def _once(db: Path, paths: list[Path], quiet: bool) -> int:
    """One pass; prints a line per run with news (every run when not `quiet`) and per error; the error count."""
    from difftui.engine.launch.sync import sync_all, sync_folder
    if paths:
        synced = [sync_folder(db, p) for p in paths]
    else:
        if not db.exists():
            raise UserError(f"{db}: no such run database")
        synced = sync_all(db)
        if not synced and not quiet:
            out.print(f"no spool runs in {db} (runs launched on this machine write it directly)", markup=False)
    errors = 0
    for s in synced:
        if s.result.records or s.created or not quiet:
            out.print(s.message, markup=False)
        for e in s.result.errors:
            errors += 1
            print(f"difftui: error: {e}", file=sys.stderr, flush=True)
    return errors


@user_command
def sync(ctx: typer.Context,
         paths: Optional[list[Path]] = typer.Argument(None, metavar="PATH",
                                                      help="run folders to ingest (default: every spool run)"),
         follow: bool = typer.Option(False, "--follow", help="keep ingesting until Ctrl-C"),
         every: float = typer.Option(2.0, "--every", metavar="SECONDS", min=0.1,
                                     help="with --follow: seconds between passes")) -> None:
    """Ingest what spool-mode engines wrote into runs.db (all spool runs, or the run folders given)."""
    c = ctx_obj(ctx)
    paths = list(paths or [])
    if not follow:
        raise typer.Exit(1 if _once(c.db, paths, quiet=False) else 0)
    try:                                            # Ctrl-C mid-pass rolls its transaction back: nothing half-applied
        _once(c.db, paths, quiet=False)
        while True:
            time.sleep(every)
            _once(c.db, paths, quiet=True)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


def register(app: typer.Typer) -> None:
    app.command("sync")(sync)
