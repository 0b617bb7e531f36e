"""The run owner: the one part of an engine (rank 0) that holds the run's lock and writes the run's rows.

    lock        runs/<id>/lock, taken before the first write and held until the process exits (engine.ownership):
                the run is alive exactly while it is held; a second engine for the run is refused with one line
    heartbeat   a thread with its own connection that beats every couple of seconds however long a step, a compile
                or a checkpoint takes, writes the GPU samples of the devices the run uses, and takes the commands
                (stop is seen at once; the others wait for the loop)
    writes      metrics, events, grids and the run's status, batched by `LogBuffer` in the loop's thread
    status      running -> completed | stopped | failed (one line `Type: message`); an engine that dies without
                one is marked crashed by the reaper (difftui.engine.launch.liveness) once its lock is gone
    lost        its run folder deleted (the lock path no longer names the lock it holds) or runs.db deleted or
                replaced (the path no longer names the file its connections have open): `lost()` says which, the
                heartbeat says it on stderr at once, and the loop stops (issue 16 items 1-2)

Where the rows go (the sink, `self.store`): runs.db itself (a `Store`, `--db`), or in spool mode (`--spool RUN_DIR`,
issue 17: a compute node never opens runs.db) a `SpoolSink` with the same write methods, which appends them as
records to runs/<id>/spool/ for a front end to ingest; its heartbeat is runs/<id>/spool/heartbeat.json and its
commands are files in runs/<id>/commands/ (difftui.engine.store.spool).
"""

from __future__ import annotations

import json
import os
import queue
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from difftui.engine.launch.lock import OwnerLock, process_start_time
from difftui.engine.run.checkpoint import remove_stale_temps
from difftui.engine.run.logbuffer import LogBuffer
from difftui.engine.run.sample_grid import save_grid_file
from difftui.engine.run.telemetry import GpuMonitor
from difftui.engine.store import Store, StoreError
from difftui.engine.store.spool import SpoolSink, read_run

__all__ = ["RunOwner", "BEAT_EVERY_S", "Lost", "RunLost"]

BEAT_EVERY_S = 2.0                                  # heartbeat and GPU sample period


class RunLost(RuntimeError):
    """The engine no longer owns what it opened (its run folder or runs.db is gone); one line."""


@dataclass(frozen=True)
class Lost:
    """Why an engine can no longer own its run; `folder_gone`: nothing may be written into the run folder (writing
    would recreate a folder the user deleted, at a path that may be another run's by now)."""
    reason: str
    folder_gone: bool


def _file_id(path: Path) -> tuple[int, int] | None:
    """(device, inode) of what `path` names now, None when nothing does."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


class RunOwner:
    """`RunOwner(db_path, run_id)` writes runs.db; `RunOwner(None, run_id, spool=RUN_DIR)` writes RUN_DIR/spool/
    and never opens runs.db (RUN_DIR/run.json must name run `run_id`)."""

    def __init__(self, db_path: str | os.PathLike[str] | None, run_id: int, *,
                 spool: str | os.PathLike[str] | None = None):
        self.db_path = Path(db_path) if db_path is not None else None
        self.run_id = run_id
        self.spool = spool is not None
        if self.spool:
            run = read_run(spool)                   # reads only: nothing is written before the lock is held
            if run["id"] != run_id:
                raise StoreError(f"{Path(spool) / 'run.json'}: it is run {run['id']}'s folder, not run {run_id}'s")
            self.store = None
        else:
            self.store = Store(db_path, create=False)
            run = self.store.get_run(run_id)
            if run is None:
                self.store.close()
                raise StoreError(f"{db_path}: no run {run_id}")
        self.run_dir = Path(run["run_dir"])
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.lock = OwnerLock(self.run_dir / "lock").acquire(f"run {run_id}")
            if self.spool:
                self.store = SpoolSink(self.run_dir, run_id)
                if self.store.file.torn:
                    print(f"--- spool: cut {self.store.file.torn} bytes of a torn last line off "
                          f"{self.store.file.path} (the previous engine died writing it)", file=sys.stderr, flush=True)
                run = self.store.get_run(run_id)
        except BaseException:
            if self.store is not None:
                self.store.close()
            raise
        # runs.db as this engine opened it: the inode stays allocated while a connection holds it open, so a path
        # that names another inode later is a deleted or replaced database (a spool engine has no runs.db).
        self._db_file = self.db_path.resolve() if self.db_path is not None else None
        self._db_id = _file_id(self._db_file) if self._db_file is not None else None
        self._lost: Lost | None = None
        self.config_data: dict[str, Any] = json.loads(run["config"])
        self.started = run["started"] or time.time()
        self.log = LogBuffer(self.store, run_id)
        for path in remove_stale_temps(self.run_dir / "checkpoints"):
            self.log.event(f"removed {path.name}, the temp file of a checkpoint write that never finished", "warning")
        pid = os.getpid()
        self.store.mark_running(run_id, pid=pid, pid_start=process_start_time(pid), host=socket.gethostname(),
                                started=self.started)
        self.stop_requested = threading.Event()
        self._commands: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._gpus = GpuMonitor()
        self._quit = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"run-{run_id}-heartbeat", daemon=True)
        self._thread.start()

    #------------------------------------------------------------------------
    # The heartbeat thread.

    def watch_gpus(self, uuids: list[str]) -> str:
        """Sample these GPUs (NVML UUIDs) from now on; returns the monitor's status line."""
        monitor = GpuMonitor(uuids)
        old, self._gpus = self._gpus, monitor
        old.close()
        return monitor.status

    def lost(self) -> Lost | None:
        """Why this engine no longer owns its run (the first reason seen, kept; said once on stderr, which is
        engine.log), or None. Two stat calls: cheap enough to ask at every step, from the loop or the heartbeat."""
        if self._lost is None and self.lock.fd is not None:
            held = os.fstat(self.lock.fd)
            lost = None
            if _file_id(self.run_dir / "lock") != (held.st_dev, held.st_ino):
                lost = Lost(f"the run folder {self.run_dir} was deleted or replaced while its engine ran",
                            folder_gone=True)
            elif self._db_file is not None and _file_id(self._db_file) != self._db_id:
                lost = Lost(f"{self._db_file} was deleted or replaced while the engine ran (what it logged since "
                            f"is lost)", folder_gone=False)
            if lost is not None:
                self._lost = lost
                print(f"--- {lost.reason}: the engine stops", file=sys.stderr, flush=True)
        return self._lost

    def lost_seen(self) -> Lost | None:
        """What `lost()` last found (the heartbeat asks it every BEAT_EVERY_S): no system call, for the checks the
        loop makes at every step and before every network call of a grid."""
        return self._lost

    def guard_folder(self) -> None:
        """Raise RunLost before a file is written into a run folder that is gone (see `Lost.folder_gone`)."""
        lost = self.lost()
        if lost is not None and lost.folder_gone:
            raise RunLost(lost.reason)

    def _beat(self) -> None:
        # Its own writer: a connection to runs.db, or the spool file gpu.0.jsonl (rank 0's; one writer per file).
        with (self.store.stream("gpu.0") if self.spool else Store(self.db_path, create=False)) as store:
            while not self._quit.is_set():
                try:
                    self.lost()                     # said on stderr; the loop stops at its next step
                    rows = self._gpus.sample() if self._gpus.available else []
                    if self.spool:
                        if rows:
                            store.write_batch(self.run_id, gpu=rows)
                        store.heartbeat.beat()
                        for sink in (store, self.store):        # fsync here, so the loop's appends never wait
                            sink.file.sync_if_due()
                    else:
                        store.write_batch(self.run_id, gpu=rows, run_fields={"heartbeat": time.time()})
                    for cmd in store.take_commands(self.run_id):
                        if cmd["command"] == "stop":
                            self.stop_requested.set()
                        else:
                            self._commands.put(cmd["command"])
                except Exception as e:              # a locked or full disk: say so in engine.log, keep beating
                    print(f"--- heartbeat: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
                self._quit.wait(BEAT_EVERY_S)

    def commands(self) -> list[str]:
        """Commands other than stop received since the last call (snapshot, grid, evaluate)."""
        out = []
        while True:
            try:
                out.append(self._commands.get_nowait())
            except queue.Empty:
                return out

    #------------------------------------------------------------------------
    # Writes.

    def event(self, message: str, level: str = "info") -> None:
        self.log.event(message, level)

    def flush(self, step: int, kimg: float, **run_fields: Any) -> None:
        self.log.flush(step, kimg, **run_fields)

    def record_grid(self, step: int, png: bytes, sampler: str, nfe: int) -> int:
        self.guard_folder()
        path = save_grid_file(self.run_dir, step, png)
        return self.store.add_sample(self.run_id, step=step, kind="grid", sampler=sampler, nfe=nfe, png=png,
                                     path=str(path))

    def sync(self) -> None:
        """What was written is durable (before a checkpoint that claims it): the spool is fsynced; runs.db's
        transactions already are."""
        if self.spool:
            self.store.sync()

    def finish(self, status: str, step: int, kimg: float, error: str | None = None) -> None:
        """The final status (completed, stopped or failed), with everything still queued, in one transaction."""
        self.log.flush(step, kimg, final=(status, error))

    def close(self) -> None:
        self._quit.set()
        self._thread.join(timeout=10)
        self._gpus.close()
        self.store.close()
        self.lock.release()
