"""The ingester: a spool-mode run's records (runs/<id>/spool/*.jsonl, store/spool.py) into runs.db, by byte offset.

    idempotent   `spool_files` keeps, per (run, file), how many bytes have been applied; only bytes past that are
                 read, so reading a file again never duplicates a row
    crash-safe   the offset advances in the same transaction as the rows it covers: a kill -9 of the ingesting
                 process rolls both back, losing and duplicating nothing
    concurrent   the offset is read again inside the write transaction (BEGIN IMMEDIATE): two front ends ingesting
                 the same run at once apply each byte once
    torn lines   only complete lines (up to the last newline) are read; a line still being written waits
    cheap        one SELECT of the run's offsets, then one stat per file: a file that did not grow costs nothing more;
                 the new bytes are parsed as one JSON array per chunk and consecutive batches applied as one
    bad lines    a complete line that is not a record stops its file there: the lines before it are applied, the
                 error (file, byte offset, reason; one line) is kept in spool_files.error and returned, and that file
                 is skipped by the automatic ingests (a front end's poll) until `difftui sync` tries it again

Every record is applied through the Store method of its name (records.py), the very method a local engine calls.
Files are applied in order: run.jsonl (the loop's rows, status and resume cuts) first, then gpu.<rank>.jsonl, then
each evaluator's eval.<key>.jsonl. The heartbeat file's time goes to runs.heartbeat (never backwards).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from difftui.engine.store.layout import spool_dir
from difftui.engine.store.records import RecordError, apply, apply_until_bad, line_offset, parse
from difftui.engine.store.runs import ACTIVE_STATUSES
from difftui.engine.store.spool import RUN_STREAM, read_heartbeat

__all__ = ["SpoolFilesTable", "IngestResult", "ingest_run", "ingest_runs", "ingest_listed", "CHUNK_BYTES",
           "RECENT_S"]

CHUNK_BYTES = 8 << 20                               # new bytes applied per transaction
RECENT_S = 3600.0                                   # a list keeps ingesting a spool run this long after it ended


@dataclass
class IngestResult:
    run_id: int
    records: int = 0                                # lines applied
    bytes: int = 0
    errors: list[str] = field(default_factory=list)  # one line each


class SpoolFilesTable:
    """How far each spool file has been ingested (a mixin of `Store`)."""

    def spool_positions(self, run_id: int) -> dict[str, tuple[int, str | None]]:
        """{file name: (bytes applied, last error or None)} of a run's spool files."""
        return {r["file"]: (r["position"], r["error"])
                for r in self._rows("SELECT file, position, error FROM spool_files WHERE run_id = ?", [run_id])}

    def _spool_position(self, run_id: int, name: str) -> int:
        rows = self._rows("SELECT position FROM spool_files WHERE run_id = ? AND file = ?", [run_id, name])
        return int(rows[0]["position"]) if rows else 0

    def _set_spool_position(self, run_id: int, name: str, position: int, error: str | None) -> None:
        self.db.execute("INSERT INTO spool_files (run_id, file, position, error, updated) VALUES (?,?,?,?,?)"
                        " ON CONFLICT (run_id, file) DO UPDATE SET position = excluded.position,"
                        " error = excluded.error, updated = excluded.updated",
                        [run_id, name, position, error, time.time()])

    def set_spool_error(self, run_id: int, name: str, error: str) -> None:
        with self.atomic():
            self._set_spool_position(run_id, name, self._spool_position(run_id, name), error)

    def spool_cuts(self, run_id: int) -> list[tuple[int, float]]:
        """The resume cuts applied from a run's spool: [(step, time written), ...] (records.after_cuts)."""
        return [(r["step"], r["time"]) for r in self._rows("SELECT step, time FROM spool_cuts WHERE run_id = ?"
                                                           " ORDER BY time", [run_id])]

    def add_spool_cut(self, run_id: int, step: int, at: float) -> None:
        with self.atomic():
            self.db.execute("INSERT INTO spool_cuts (run_id, step, time) VALUES (?,?,?)", [run_id, step, at])

    def note_heartbeat(self, run_id: int, beat: float) -> None:
        """runs.heartbeat = `beat` unless it already holds a later one."""
        with self.atomic():
            self.db.execute("UPDATE runs SET heartbeat = ? WHERE id = ? AND (heartbeat IS NULL OR heartbeat < ?)",
                            [beat, run_id, beat])


#----------------------------------------------------------------------------

def _order(name: str) -> tuple[int, str]:
    kind = name.split(".", 1)[0]
    return ({RUN_STREAM: 0, "gpu": 1, "eval": 2}.get(kind, 3), name)


def _spool_files(run_dir: Path) -> list[str]:
    """The record files of a run's spool, in the order they are applied ([] when it has no spool (yet))."""
    try:
        names = os.listdir(spool_dir(run_dir))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted((n for n in names if n.endswith(".jsonl") and not n.startswith(".")), key=_order)


def _read_complete(f, position: int, chunk_bytes: int) -> tuple[bytes, bool]:
    """From `position`, about `chunk_bytes` of complete lines (more if one line is longer; b"" when there is no
    complete line), and whether the end of the file was reached."""
    f.seek(position)
    data = f.read(chunk_bytes)
    end = len(data) < chunk_bytes
    while not end and b"\n" not in data[-chunk_bytes:]:
        more = f.read(chunk_bytes)
        end = len(more) < chunk_bytes
        data += more
    return data[: data.rfind(b"\n") + 1], end


def _ingest_file(store, run_id: int, run_dir: Path, name: str, result: IngestResult, chunk_bytes: int) -> None:
    path = spool_dir(run_dir) / name
    with open(path, "rb") as f:
        while True:
            with store.atomic():
                position = store._spool_position(run_id, name)      # again, under the write lock
                data, at_end = _read_complete(f, position, chunk_bytes)
                if not data:
                    return
                records, bad = parse(data)
                conn = store.db.conn
                conn.execute("SAVEPOINT spool_chunk")
                try:
                    apply(store, run_id, run_dir, records)
                    applied = len(records)
                except RecordError:
                    conn.execute("ROLLBACK TO spool_chunk")
                    applied, reason = apply_until_bad(store, run_id, run_dir, records)
                    bad = (applied, reason) if reason is not None else bad
                conn.execute("RELEASE spool_chunk")
                end = position + (line_offset(data, bad[0]) if bad is not None else len(data))
                error = f"{path}: byte {end}: {bad[1]}" if bad is not None else None
                store._set_spool_position(run_id, name, end, error)
            result.records += applied
            result.bytes += end - position
            if error is not None:
                result.errors.append(error)
                return
            if at_end:
                return


def ingest_run(store, run: dict[str, Any], *, retry_errors: bool = True,
               chunk_bytes: int = CHUNK_BYTES) -> IngestResult:
    """Ingest what is new in the spool of `run` (a runs row with sink 'spool'); see the module docstring.
    `retry_errors=False` (a front end's poll) skips a file whose last ingest stopped at a bad line."""
    run_id, run_dir = run["id"], Path(run["run_dir"])
    result = IngestResult(run_id)
    known = store.spool_positions(run_id)
    try:
        names = _spool_files(run_dir)
    except OSError as e:                            # an unreadable folder: said, never a traceback in `ls`
        result.errors.append(f"{spool_dir(run_dir)}: cannot be read ({e.strerror or e})")
        return result
    for name in names:
        position, error = known.get(name, (0, None))
        if error is not None and not retry_errors:
            continue
        try:
            size = os.stat(spool_dir(run_dir) / name).st_size
        except FileNotFoundError:
            continue
        except OSError as e:
            result.errors.append(f"{spool_dir(run_dir) / name}: cannot be read ({e.strerror or e})")
            continue
        if size < position:
            message = (f"{spool_dir(run_dir) / name}: {size} bytes, but {position} were already ingested: the file "
                       f"was replaced or cut (ingesting it again would duplicate rows)")
            if message != error:
                store.set_spool_error(run_id, name, message)
            result.errors.append(message)
            continue
        if size == position and error is None:
            continue
        try:
            _ingest_file(store, run_id, run_dir, name, result, chunk_bytes)
        except OSError as e:
            result.errors.append(f"{spool_dir(run_dir) / name}: cannot be read ({e.strerror or e})")
    beat = read_heartbeat(run_dir)
    if beat is not None and (run.get("heartbeat") is None or beat["time"] > run["heartbeat"]):
        store.note_heartbeat(run_id, float(beat["time"]))
    return result


def ingest_runs(store, runs: list[dict[str, Any]], *, retry_errors: bool = False) -> list[IngestResult]:
    """`ingest_run` for each spool run among `runs` (others are skipped); nothing in a read-only store."""
    if store.read_only:
        return []
    return [ingest_run(store, r, retry_errors=retry_errors) for r in runs if r.get("sink") == "spool"]


def ingest_listed(store, runs: list[dict[str, Any]], *, now: float | None = None) -> list[IngestResult]:
    """What a list of runs (the history, a sweep's members) ingests on each poll: the spool runs that may still be
    written, i.e. active ones, ended ones whose evaluation is still open, and those that ended less than
    RECENT_S ago (an evaluator they started may not have named its job yet). A long history of finished cluster
    runs then costs no file system call per poll; `difftui sync` and the dashboard of a run ingest it whatever."""
    now = time.time() if now is None else now
    recent = [r for r in runs if r.get("sink") == "spool" and (
        r["status"] in ACTIVE_STATUSES or r.get("ended") is None or now - r["ended"] < RECENT_S
        or store.jobs_for(r["id"], active=True))]
    return ingest_runs(store, recent)
