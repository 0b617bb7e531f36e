"""The sync use cases (issue 17 item 2): bring what spool-mode engines wrote into runs.db (`difftui sync`).

    sync_all      ingest every spool run of the database once (the TUI's polls and the reaper ingest the runs they
                  look at; this is the same for all of them, e.g. from cron or `difftui sync --follow`)
    sync_folder   a run folder: one this database knows (its runs.run_dir) is ingested; one it does not know, e.g.
                  copied back from a cluster without a shared filesystem (rsync it, then sync), becomes a new run row
                  (its config.yaml, the name and total steps of its run.json, the folder as it is) and is then
                  ingested, its status and everything it logged coming from its spool

Each returns `Synced` lines (one per run); an error is one line naming the file, the byte offset and the fault.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from difftui.engine.launch.outcome import LaunchError
from difftui.engine.store import Store
from difftui.engine.store.ingest import IngestResult, ingest_run
from difftui.engine.store.spool import read_run

__all__ = ["Synced", "sync_all", "sync_folder"]


@dataclass
class Synced:
    run_id: int
    result: IngestResult
    created: bool = False                           # a new run row, from a folder this database did not know
    status: str = ""

    @property
    def message(self) -> str:
        r = self.result
        what = (f"{r.records:,} new record{'s' if r.records != 1 else ''} ({_size(r.bytes)})" if r.records
                else "nothing new")
        head = f"run {self.run_id}: " + ("created from its folder; " if self.created else "")
        return head + f"{what}; {self.status}"


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB" if n >= 1e3 else f"{n} bytes"


def sync_all(db_path: str | os.PathLike[str]) -> list[Synced]:
    """Ingest every spool run of `db_path` once, retrying files that stopped at a bad line."""
    out = []
    with Store(db_path, create=False) as store:
        for run in store.spool_runs():
            result = ingest_run(store, run, retry_errors=True)
            out.append(Synced(run["id"], result, status=store.get_run(run["id"])["status"]))
    return out


def sync_folder(db_path: str | os.PathLike[str], folder: str | os.PathLike[str]) -> Synced:
    """Ingest the run in `folder`, creating its row first when this database does not know the folder."""
    from difftui.engine.config.catalog import config_from_dict
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise LaunchError(f"{folder}: no such run folder")
    path = path.resolve()
    created = False
    with Store(db_path) as store:
        run = store.run_in_folder(str(path))
        if run is None:
            info = read_run(path)                   # StoreError, one line naming run.json or config.yaml
            config = json.loads(info["config"])
            config_from_dict(config, f"{path / 'config.yaml'}")            # PresetError, one line naming the key
            run_id = store.create_run(config, name=info["name"], total_steps=info["total_steps"] or 0,
                                      device=config.get("device") or "", sink="spool", run_dir=str(path))
            run, created = store.get_run(run_id), True
        elif run["sink"] != "spool":
            raise LaunchError(f"run {run['id']} ({path}) writes {store.path} directly: nothing to sync")
        result = ingest_run(store, run, retry_errors=True)
        status = store.get_run(run["id"])["status"]
    return Synced(run["id"], result, created=created, status=status)
