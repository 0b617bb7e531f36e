"""The writing side of a spool (issue 17 item 2): what an engine on a compute node writes instead of runs.db.

    SpoolSink   the Store's write methods for one run, each call appended as one record (records.py) to a file in
                runs/<id>/spool/ that has one writer: run.jsonl (rank 0's loop: metrics, events, status, grids,
                evaluations, resume cuts), gpu.<rank>.jsonl (the heartbeat thread's GPU samples), eval.<key>.jsonl
                (one evaluator process). The ingester (ingest.py) applies them to runs.db through the same methods.
    SpoolFile   one append-only file: each append is whole lines in one write; a torn tail that a killed writer left
                is cut off when the next writer opens the file (it was never complete, so never ingested); a write
                that fails (a full disk) is cut back, so no half line is ever followed by another. fsync every
                SYNC_EVERY_S from the heartbeat thread, before each checkpoint and at the end: a process killed
                loses nothing it wrote (the kernel has it), a machine that dies loses at most those seconds.
    Heartbeat   runs/<id>/spool/heartbeat.json, rewritten atomically every beat: time, pid, host, step, status.
                `read_heartbeat` is what a front end (liveness, the ingester) reads.
    commands    a front end writes one file per command into runs/<id>/commands/ (atomically); the engine's heartbeat
                thread takes each by renaming it into commands/done/, so none is taken twice. `send_command` is the one
                way to send a command to any run: runs.db's commands table for a db-mode run, a file for a spool run.
    run.json    the run's identity (id, name, total steps, created), written by the front end when it creates or
                changes the run; with config.yaml, all that a spool engine reads (`read_run`).

Nothing here opens runs.db but `send_command` for a db-mode run.
"""

from __future__ import annotations

import errno
import json
import os
import re
import socket
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from difftui.engine.atomic import atomic_write_text
from difftui.engine.store.connection import StoreError
from difftui.engine.store.jobs import best_snapshot
from difftui.engine.store.layout import commands_dir, heartbeat_path, run_json_path, spool_dir
from difftui.engine.store.records import RUN_FIELDS, after_cuts, encode, group_metrics, parse

__all__ = ["SpoolFile", "SpoolSink", "Heartbeat", "read_heartbeat", "read_run", "write_run_json", "send_command",
           "send_file_command", "take_file_commands", "RUN_STREAM", "RUN_JSON_FORMAT", "SYNC_EVERY_S"]

RUN_STREAM = "run"                                  # rank 0's loop: run.jsonl
RUN_JSON_FORMAT = "difftui-run-1"
SYNC_EVERY_S = 5.0                                  # fsync the loop's records this often (and before each checkpoint)
_COMMAND = re.compile(r"^[a-z][a-z_-]{0,31}$")
_TAIL_BLOCK = 1 << 16
_CUT = b'["truncate_after",'


#----------------------------------------------------------------------------
# One append-only file.

def _drop_torn_tail(fd: int) -> int:
    """Cut the file after its last newline; returns the bytes cut (0 when it ends with one, or is empty)."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return 0
    end = size
    while end > 0:
        start = max(0, end - _TAIL_BLOCK)
        block = os.pread(fd, end - start, start)
        nl = block.rfind(b"\n")
        if nl != -1:
            keep = start + nl + 1
            os.ftruncate(fd, keep)
            return size - keep
        end = start
    os.ftruncate(fd, 0)
    return size


class SpoolFile:
    """An append-only record file with one writer (this object); see the module docstring."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self.torn = _drop_torn_tail(self.fd)
        self.size = os.fstat(self.fd).st_size
        self.dirty = False
        self.last_sync = time.monotonic()

    def append(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                n = os.write(self.fd, view)
                view = view[n:]
        except OSError as e:
            try:                                    # never leave a half line for the next append to follow
                os.ftruncate(self.fd, self.size)
            except OSError:
                pass
            if e.errno == errno.ENOSPC:
                raise OSError(errno.ENOSPC, f"disk full: cannot write {self.path}") from None
            raise OSError(e.errno, f"cannot write {self.path} ({e.strerror})") from None
        self.size += len(data)
        self.dirty = True

    def sync(self) -> None:
        os.fsync(self.fd)
        self.dirty = False
        self.last_sync = time.monotonic()

    def sync_if_due(self) -> None:
        """fsync when something was written and SYNC_EVERY_S have passed since the last one (the heartbeat thread
        calls it, so that the loop's appends never wait for the disk; any thread may: it is the file descriptor's)."""
        if self.dirty and time.monotonic() - self.last_sync >= SYNC_EVERY_S:
            self.sync()

    def close(self) -> None:
        if self.fd is not None:
            try:
                os.fsync(self.fd)
            finally:
                os.close(self.fd)
                self.fd = None


#----------------------------------------------------------------------------
# The heartbeat file.

def read_heartbeat(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """runs/<id>/spool/heartbeat.json as a dict (time, pid, pid_start, host, started, step, kimg, device, status), or
    None when there is none or it cannot be read."""
    try:
        data = json.loads(heartbeat_path(run_dir).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("time"), int | float) else None


class Heartbeat:
    """The spool engine's heartbeat file: what it knows of its run, rewritten atomically by `beat()` (the heartbeat
    thread, every couple of seconds) and at once when the status changes. Shared by the engine's threads."""

    def __init__(self, run_dir: str | os.PathLike[str]):
        self.run_dir = Path(run_dir)
        previous = read_heartbeat(run_dir) or {}
        self.state: dict[str, Any] = {"started": previous.get("started"), "step": previous.get("step", 0),
                                      "kimg": previous.get("kimg", 0.0), "device": previous.get("device"),
                                      "status": previous.get("status", "queued"), "pid": previous.get("pid"),
                                      "pid_start": previous.get("pid_start"), "host": previous.get("host")}
        self.previous_step = int(previous.get("step") or 0)
        self._lock = threading.Lock()               # the state: held for a dict update, never across a write
        self._write_lock = threading.Lock()         # the file: the newest state wins, whichever thread wrote first
        self._seq = self._written = 0

    def update(self, **fields: Any) -> None:
        with self._lock:
            self.state.update(fields)

    def known(self) -> dict[str, Any]:
        """A copy of the state (what the next beat will write)."""
        with self._lock:
            return dict(self.state)

    def beat(self) -> None:
        with self._lock:
            self.state["time"] = time.time()
            self._seq += 1
            seq, text = self._seq, json.dumps(self.state)
        with self._write_lock:
            if seq > self._written:                 # never an older state over a newer one
                atomic_write_text(heartbeat_path(self.run_dir), text)
                self._written = seq


#----------------------------------------------------------------------------
# run.json and the run as a spool engine sees it.

def write_run_json(run: dict[str, Any]) -> Path:
    """runs/<id>/run.json from the run's row: what a spool engine reads besides config.yaml."""
    data = {"format": RUN_JSON_FORMAT, "id": run["id"], "name": run["name"], "total_steps": run["total_steps"],
            "created": run["created"]}
    return atomic_write_text(run_json_path(run["run_dir"]), json.dumps(data, indent=1) + "\n")


def read_run(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The run as its folder tells it (run.json, config.yaml, the heartbeat), with the columns of a runs row that an
    engine or an evaluator reads. StoreError (one line naming the file) when the folder is not a run's."""
    run_dir = Path(run_dir).resolve()
    path = run_json_path(run_dir)
    try:
        info = json.loads(path.read_text())
    except FileNotFoundError:
        raise StoreError(f"{path}: no such file ({run_dir} is not a difftui run folder)") from None
    except (OSError, ValueError) as e:
        raise StoreError(f"{path}: not readable ({type(e).__name__}: {e})") from None
    if not isinstance(info, dict) or info.get("format") != RUN_JSON_FORMAT or not isinstance(info.get("id"), int):
        raise StoreError(f"{path}: not a difftui run.json (format {RUN_JSON_FORMAT} with an integer id)")
    config_path = run_dir / "config.yaml"
    try:
        config = yaml.safe_load(config_path.read_text())
    except FileNotFoundError:
        raise StoreError(f"{config_path}: no such file (the run's resolved config)") from None
    except (OSError, yaml.YAMLError) as e:
        raise StoreError(f"{config_path}: not readable ({' '.join(str(e).split())[:200]})") from None
    if not isinstance(config, dict):
        raise StoreError(f"{config_path}: not a run config (a mapping)")
    beat = read_heartbeat(run_dir) or {}
    return {"id": info["id"], "name": info.get("name") or f"run-{info['id']}", "total_steps": info.get("total_steps"),
            "created": info.get("created") or time.time(), "config": json.dumps(config), "run_dir": str(run_dir),
            "sink": "spool", "status": beat.get("status", "queued"), "step": beat.get("step", 0),
            "kimg": beat.get("kimg", 0.0), "device": beat.get("device"), "started": beat.get("started"),
            "heartbeat": beat.get("time"), "pid": beat.get("pid"), "pid_start": beat.get("pid_start"),
            "host": beat.get("host"), "error": None, "sweep_id": None}


#----------------------------------------------------------------------------
# Commands as files.

def send_file_command(run_dir: str | os.PathLike[str], command: str, args: dict[str, Any] | None = None) -> Path:
    """One command for a spool engine: runs/<id>/commands/<time>-<command>.json, written atomically."""
    if not _COMMAND.match(command):
        raise ValueError(f"command {command!r}: expected a lowercase word")
    now = time.time()
    path = commands_dir(run_dir) / f"{time.time_ns():020d}-{command}.json"
    return atomic_write_text(path, json.dumps({"command": command, "args": args or {}, "time": now}))


def take_file_commands(run_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The commands waiting in runs/<id>/commands/, oldest first, each moved into commands/done/ as it is taken (a
    rename: a command is taken once). A file that cannot be read is taken as the command its name says."""
    folder = commands_dir(run_dir)
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(".json") and not n.startswith("."))
    except FileNotFoundError:
        return []
    done = folder / "done"
    done.mkdir(exist_ok=True)
    out = []
    for name in names:
        src = folder / name
        try:
            os.rename(src, done / name)
        except FileNotFoundError:
            continue
        try:
            data = json.loads((done / name).read_text())
            out.append({"command": str(data["command"]), "args": data.get("args") or {}, "time": data.get("time")})
        except (OSError, ValueError, KeyError, TypeError):
            out.append({"command": name.split("-", 1)[-1].removesuffix(".json"), "args": {}, "time": None})
    return out


def send_command(store, run: dict[str, Any], command: str, args: dict[str, Any] | None = None) -> None:
    """Send `command` (stop, snapshot, grid, evaluate) to the engine of `run`: a row in runs.db's commands table for a
    run whose engine writes runs.db, a file in its folder for a spool run (its engine may be on another machine)."""
    if run.get("sink") == "spool":
        send_file_command(run["run_dir"], command, args)
    else:
        store.send_command(run["id"], command, args)


def spool_cuts(run_dir: str | os.PathLike[str]) -> list[tuple[int, float]]:
    """The resume cuts in a run's run.jsonl, [(step, time), ...], as the ingester will apply them (a byte search for
    the few truncate_after lines, then only those parsed)."""
    try:
        data = (spool_dir(run_dir) / f"{RUN_STREAM}.jsonl").read_bytes()
    except FileNotFoundError:
        return []
    cuts, pos = [], data.find(_CUT)
    while pos != -1:
        end = data.find(b"\n", pos)
        if end == -1:
            break
        if pos == 0 or data[pos - 1:pos] == b"\n":
            try:
                _, step, at = json.loads(data[pos:end])
                cuts.append((int(step), float(at)))
            except (ValueError, TypeError):
                pass                                # a torn or foreign line: the ingester names it
        pos = data.find(_CUT, end)
    return cuts


#----------------------------------------------------------------------------
# The sink.

class SpoolSink:
    """The Store's write methods for one spool-mode run (same names, same arguments), each call appended as a record
    to runs/<id>/spool/<stream>.jsonl; plus the few reads an engine or an evaluator makes (its run, its commands, the
    evaluations already in the spool). One object per writing thread (`stream()` opens another file of the same run,
    sharing the heartbeat)."""

    read_only = False

    def __init__(self, run_dir: str | os.PathLike[str], run_id: int, *, stream: str = RUN_STREAM,
                 heartbeat: Heartbeat | None = None):
        self.run_dir = Path(run_dir).resolve()
        self.path = self.run_dir                        # what a message names, as a Store names its file
        self.run_id = run_id
        self.heartbeat = heartbeat or Heartbeat(self.run_dir)
        self.file = SpoolFile(spool_dir(self.run_dir) / f"{stream}.jsonl")
        self.job_key: int | None = None

    def stream(self, name: str) -> "SpoolSink":
        """A sink of the same run writing another file (e.g. the heartbeat thread's gpu.<rank>)."""
        return SpoolSink(self.run_dir, self.run_id, stream=name, heartbeat=self.heartbeat)

    @classmethod
    def for_evaluator(cls, run_dir: str | os.PathLike[str], run_id: int) -> "SpoolSink":
        """An evaluator's own file, eval.<key>.jsonl; its one job is named `key` (create_job returns it)."""
        key = time.time_ns()
        sink = cls(run_dir, run_id, stream=f"eval.{key}")
        sink.job_key = key
        return sink

    def _write(self, method: str, *args: Any) -> None:
        self.file.append(encode(method, *args))

    def sync(self) -> None:
        """Make what was written durable (before a checkpoint that claims it, and at the end)."""
        self.file.sync()

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> "SpoolSink":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- the engine's writes --------------------------------------------------------------------------------------

    def write_batch(self, run_id: int, *, metrics=(), gpu=(), events=(), run_fields: dict[str, Any] | None = None,
                    final: tuple[str, str | None] | None = None) -> None:
        fields = dict(run_fields or {})
        self._write("write_batch", group_metrics(metrics), list(gpu), list(events), fields,
                    list(final) if final else None)
        known = {k: v for k, v in fields.items() if k in ("step", "kimg", "device")}
        if final is not None:
            self.sync()
            self.heartbeat.update(status=final[0], **known)
            self.heartbeat.beat()
        elif known:
            self.heartbeat.update(**known)

    def mark_running(self, run_id: int, *, pid: int, pid_start: float | None, host: str, started: float) -> None:
        self._write("mark_running", pid, pid_start, host, started)
        self.heartbeat.update(status="running", pid=pid, pid_start=pid_start, host=host, started=started)
        self.heartbeat.beat()

    def update_run(self, run_id: int, **fields: Any) -> None:
        bad = [k for k in fields if k not in RUN_FIELDS]
        if bad:
            raise ValueError(f"a spool run cannot set {', '.join(bad)} (only {', '.join(RUN_FIELDS)})")
        self._write("update_run", fields)
        self.heartbeat.update(**{k: v for k, v in fields.items() if k in ("step", "kimg", "device")})

    def truncate_after(self, run_id: int, step: int) -> int:
        """Drop rows logged after `step` (the ingester does, in order); returns 1 when an earlier engine had logged
        past `step` (so rows will be dropped), else 0: the row count itself is known only to the ingester."""
        self._write("truncate_after", int(step), time.time())
        return int(self.heartbeat.previous_step > max(step, 0))     # a fresh start (-1) drops rows only if any

    def finish_run(self, run_id: int, status: str, *, error: str | None = None) -> bool:
        self._write("finish_run", status, error)
        self.sync()
        self.heartbeat.update(status=status)
        self.heartbeat.beat()
        return True

    def add_event(self, run_id: int, level: str, message: str) -> None:
        self.write_batch(run_id, events=[(time.time(), level, message)])

    def add_sample(self, run_id: int, *, step: int, kind: str, sampler: str, nfe: int, png: bytes,
                   path: str | None = None, at: float | None = None) -> int:
        """The PNG is already a file in the run folder (`path`); the record names it relative to the folder."""
        if path is None:
            raise ValueError("a spool sample needs the path of its PNG file in the run folder")
        rel = Path(path).resolve().relative_to(self.run_dir).as_posix()
        self._write("add_sample", step, kind, sampler, nfe, rel, time.time() if at is None else at)
        return 0

    def add_eval_results(self, run_id: int, rows: list[dict[str, Any]], *, at: float | None = None) -> None:
        self._write("add_eval_results", [dict(r) for r in rows], time.time() if at is None else at)

    # -- an evaluator's job ---------------------------------------------------------------------------------------

    def create_job(self, run_id: int, kind: str, args: dict[str, Any] | None = None) -> int:
        if self.job_key is None:
            self.job_key = time.time_ns()
        self._write("create_job", self.job_key, kind, args or {})
        return self.job_key

    def claim_job(self, job_id: int, *, pid: int, pid_start: float | None = None, host: str | None = None,
                  message: str = "") -> None:
        self._write("claim_job", job_id, pid, pid_start, host or socket.gethostname(), message)

    def report_progress(self, job_id: int, done: int, total: int, message: str) -> None:
        self._write("report_progress", job_id, done, total, message)

    def finish_job(self, job_id: int, status: str, *, message: str | None = None, error: str | None = None) -> None:
        if status not in ("done", "failed", "refused"):
            raise ValueError(f"finish_job: {status!r} is not done, failed or refused")
        self._write("finish_job", job_id, status, message, error)
        self.sync()

    def update_best_snapshot(self, run_id: int) -> int | None:
        """Recorded for the ingester (which asks runs.db's rows); returns the best as this spool's rows say."""
        self._write("update_best_snapshot")
        return best_snapshot(self.eval_results(run_id, kind="fid"))

    # -- reads ----------------------------------------------------------------------------------------------------

    def get_run(self, run_id: int) -> dict[str, Any] | None:
        run = read_run(self.run_dir)
        run.update({k: v for k, v in self.heartbeat.known().items() if v is not None})
        return run if run["id"] == run_id else None

    def take_commands(self, run_id: int) -> list[dict[str, Any]]:
        return take_file_commands(self.run_dir)

    def eval_results(self, run_id: int, *, kind: str | None = None, job_id: int | None = None,
                     last_id: int = 0) -> list[dict[str, Any]]:
        """The evaluation rows the run's evaluators have written to the spool (eval.*.jsonl), oldest first, shaped like
        Store.eval_results' rows (protocol decoded, NaN for a missing value). `last_id` is not supported."""
        rows: list[dict[str, Any]] = []
        cuts = spool_cuts(self.run_dir)
        for path in sorted(spool_dir(self.run_dir).glob("eval.*.jsonl")):
            data = path.read_bytes()
            records, _ = parse(data[: data.rfind(b"\n") + 1])
            for rec in records:
                if not isinstance(rec, list) or len(rec) != 3 or rec[0] != "add_eval_results" \
                        or not isinstance(rec[1], list):
                    continue
                for r in rec[1]:
                    if not isinstance(r, dict) or not after_cuts(r.get("step"), rec[2], cuts):
                        continue
                    row = {"step": r.get("step"), "sampler": r.get("sampler"), "nfe": r.get("nfe"),
                           "metric": r.get("metric"), "value": r.get("value"), "kind": r.get("kind"),
                           "samples": r.get("samples"), "repeats": r.get("repeats"), "spread": r.get("spread"),
                           "snapshot": r.get("snapshot"), "protocol": r.get("protocol") or {},
                           "job_id": r.get("job_id"), "time": rec[2]}
                    if row["value"] is None:
                        row["value"] = float("nan")
                    rows.append(row)
        rows.sort(key=lambda r: r["time"] or 0)
        return [r for r in rows if (kind is None or r["kind"] == kind) and (job_id is None or r["job_id"] == job_id)]
