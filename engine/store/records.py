"""The spool's records: one line per Store write that a spool-mode engine or evaluator makes (issue 17 item 2).

A compute node never opens runs.db. Its engine, and the evaluators it starts, call the Store's own write methods on a
`SpoolSink` (spool.py), which appends each call as one line to a file in runs/<id>/spool/; the ingester (ingest.py)
replays the lines onto runs.db through those very methods (`apply`). A local engine calls the same methods on a real
`Store`. One list of methods, one meaning each: the local path and the cluster path run the same SQL.

A line is a compact JSON array: the method's name, then its arguments without the run id (the ingesting run's):

    ["write_batch", metrics, gpu, events, run_fields, final]    metrics [[step, kimg, time, {name: value, ...}],
                                                                ...] (the rows of one logging interval share step,
                                                                kimg and time: one group), gpu [[time, idx, util,
                                                                ...], ...], events [[time, level, message], ...],
                                                                run_fields {step, kimg, heartbeat, device}, final
                                                                [status, error] or null
    ["mark_running", pid, pid_start, host, started]
    ["update_run", {field: value}]                              only RUN_FIELDS
    ["truncate_after", step, time]                              a resume drops what the run re-does (the cut)
    ["finish_run", status, error]
    ["add_sample", step, kind, sampler, nfe, path, time]        path relative to the run folder: the PNG is that file
    ["add_eval_results", rows, time]
    ["create_job", key, kind, args]                             the evaluator names its job with `key`
    ["claim_job", key, pid, pid_start, host, message]
    ["report_progress", key, done, total, message]
    ["finish_job", key, status, message, error]
    ["update_best_snapshot"]

NaN and +-inf are written as JSON's NaN / Infinity (Python's json reads them back): non-finite numbers stay data.
A line is complete when its newline is written; the ingester never reads past the last newline.

One rule is the spool's own, because its files are read one after another, not in the order they were written: a
cut (truncate_after S at time T, in run.jsonl) also drops the evaluation rows and images of steps after S that an
evaluator wrote before T into its own file and that are applied after the cut (`after_cuts`). runs.db then holds
what a local run's would: the re-done steps' results, never the abandoned ones'.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path, PurePosixPath
from typing import Any, Callable

__all__ = ["RUN_FIELDS", "METHODS", "RecordError", "encode", "parse", "apply", "apply_until_bad", "line_offset", "after_cuts", "group_metrics",
           "metric_rows"]

RUN_FIELDS = ("step", "kimg", "heartbeat", "device")       # the run columns a spool may set
_ARITY = {"write_batch": 5, "mark_running": 4, "update_run": 1, "truncate_after": 2, "finish_run": 2,
          "add_sample": 6, "add_eval_results": 2, "create_job": 3, "claim_job": 5, "report_progress": 4,
          "finish_job": 4, "update_best_snapshot": 0}
METHODS = tuple(_ARITY)
# A bad value inside a record: the row does not bind or unpack. Not a locked or full database (OperationalError).
_BAD_ROW = (ValueError, TypeError, KeyError, AttributeError, sqlite3.InterfaceError, sqlite3.ProgrammingError, sqlite3.IntegrityError,
            sqlite3.DataError)


class RecordError(ValueError):
    """A complete line that is not a record this difftui can apply; one line (the ingester adds file and offset)."""


def encode(method: str, *args: Any) -> bytes:
    """One record as one line."""
    return json.dumps([method, *args], separators=(",", ":")).encode() + b"\n"


def after_cuts(step: Any, at: Any, cuts: list[tuple[int, float]]) -> bool:
    """Whether a row of `step` written at time `at` survives the cuts [(step S, time T), ...]: not when some cut
    came after it (T > at) and drops its step (step > S)."""
    return not any(step > s and (at is None or at < t) for s, t in cuts)


def group_metrics(rows) -> list[list]:
    """Metric rows (step, kimg, name, value, time) -> groups [step, kimg, time, {name: value}] of consecutive rows
    that share step, kimg and time (a logging interval's values): a third of the bytes, and parsed 4x faster, than a
    list per row. `metric_rows` is the inverse (same rows, same order)."""
    groups: list[list] = []
    last = None
    for step, kimg, name, value, at in rows:
        key = (step, kimg, at)
        if key != last or name in groups[-1][3]:
            groups.append([step, kimg, at, {}])
            last = key
        groups[-1][3][name] = value
    return groups


def metric_rows(groups: list) -> list[tuple]:
    """The inverse of `group_metrics`."""
    return [(step, kimg, name, value, at) for step, kimg, at, values in groups for name, value in values.items()]


#----------------------------------------------------------------------------
# Reading.

def _check(record: Any) -> list:
    """A record: a list naming a method, with its number of arguments."""
    if not isinstance(record, list) or not record or record[0] not in _ARITY:
        name = record[0] if isinstance(record, list) and record else record
        raise RecordError(f"not a spool record (unknown method {str(name)[:40]!r})")
    if len(record) != _ARITY[record[0]] + 1:
        raise RecordError(f"{record[0]}: expected {_ARITY[record[0]]} arguments, got {len(record) - 1}")
    return record


def parse(data: bytes) -> tuple[list, tuple[int, str] | None]:
    """Complete lines (`data` ends with a newline) -> (their JSON values, the first line that is not JSON as (its
    index, reason) or None; the values are those of the lines before it). All lines are parsed as one JSON array
    first (one call for a whole chunk); line by line only when that fails, to find the bad one. Whether each value
    is a record is `apply`'s to say."""
    if not data:
        return [], None
    try:
        values = json.loads(b"[" + data[:-1].replace(b"\n", b",") + b"]")
    except ValueError:
        values = None
    if values is not None and len(values) == data.count(b"\n"):
        return values, None
    out = []
    for i, line in enumerate(data[:-1].split(b"\n")):
        try:
            out.append(json.loads(line))
        except ValueError as e:
            return out, (i, f"not a JSON line ({e})")
    return out, None


def line_offset(data: bytes, index: int) -> int:
    """The byte offset in `data` of line `index`."""
    pos = 0
    for _ in range(index):
        pos = data.index(b"\n", pos) + 1
    return pos


#----------------------------------------------------------------------------
# Applying: each record is the Store method of its name, called on the ingesting run.

class _Context:
    """What applying needs beside the store: the run, its folder, and the evaluator jobs' keys -> row ids."""

    def __init__(self, store, run_id: int, run_dir: Path):
        self.store, self.run_id, self.run_dir = store, run_id, Path(run_dir)
        self.jobs: dict[str, int] = {}
        self._cuts: list[tuple[int, float]] | None = None

    @property
    def cuts(self) -> list[tuple[int, float]]:
        if self._cuts is None:
            self._cuts = self.store.spool_cuts(self.run_id)
        return self._cuts

    def cut(self, step: int, at: float) -> None:
        self.store.truncate_after(self.run_id, step)
        self.store.add_spool_cut(self.run_id, step, at)
        self.cuts.append((step, at))

    def job(self, key: Any) -> int:
        key = str(key)
        if key not in self.jobs:
            job_id = self.store.job_for_spool_key(self.run_id, key)
            if job_id is None:
                raise RecordError(f"evaluator job {key!r} was never created in this spool")
            self.jobs[key] = job_id
        return self.jobs[key]


def _run_fields(fields: Any) -> dict[str, Any]:
    if fields is None:
        return {}
    if not isinstance(fields, dict):
        raise RecordError(f"run fields must be an object, got {type(fields).__name__}")
    bad = [k for k in fields if k not in RUN_FIELDS]
    if bad:
        raise RecordError(f"run field {bad[0]!r} is not one a spool may set ({', '.join(RUN_FIELDS)})")
    return fields


def _list(value: Any, what: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise RecordError(f"{what} must be a list, got {type(value).__name__}")
    return value


def _png(ctx: _Context, path: Any) -> tuple[bytes, str]:
    rel = PurePosixPath(str(path))
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise RecordError(f"sample path {str(path)!r} is not inside the run folder")
    full = ctx.run_dir / rel
    try:
        return full.read_bytes(), str(full)
    except OSError as e:
        raise RecordError(f"{full}: the sample's PNG cannot be read ({e.strerror or e})") from None


def _write_batch(ctx: _Context, metrics, gpu, events, run_fields, final) -> None:
    if final is not None and (not isinstance(final, list) or len(final) != 2):
        raise RecordError(f"final must be [status, error], got {final!r}")
    ctx.store.write_batch(ctx.run_id, metrics=metric_rows(_list(metrics, "metrics")), gpu=_list(gpu, "gpu"),
                          events=_list(events, "events"), run_fields=_run_fields(run_fields),
                          final=tuple(final) if final is not None else None)


def _add_sample(ctx: _Context, step, kind, sampler, nfe, path, at) -> None:
    if not after_cuts(step, at, ctx.cuts):
        return
    png, full = _png(ctx, path)
    ctx.store.add_sample(ctx.run_id, step=step, kind=kind, sampler=sampler, nfe=nfe, png=png, path=full, at=at)


def _add_eval_results(ctx: _Context, rows, at) -> None:
    rows = [dict(r) for r in _list(rows, "rows") if after_cuts(r["step"], at, ctx.cuts)]
    if not rows:
        return
    for r in rows:
        if r.get("job_id") is not None:
            r["job_id"] = ctx.job(r["job_id"])
    ctx.store.add_eval_results(ctx.run_id, rows, at=at)


_APPLY: dict[str, Callable[..., None]] = {
    "write_batch": _write_batch,
    "mark_running": lambda ctx, pid, pid_start, host, started: ctx.store.mark_running(
        ctx.run_id, pid=pid, pid_start=pid_start, host=host, started=started),
    "update_run": lambda ctx, fields: ctx.store.update_run(ctx.run_id, **_run_fields(fields)),
    "truncate_after": lambda ctx, step, at: ctx.cut(int(step), float(at)),
    "finish_run": lambda ctx, status, error: ctx.store.finish_run(ctx.run_id, status, error=error),
    "add_sample": _add_sample,
    "add_eval_results": _add_eval_results,
    "create_job": lambda ctx, key, kind, args: ctx.jobs.__setitem__(
        str(key), ctx.store.job_for_spool_key(ctx.run_id, str(key))
        or ctx.store.create_job(ctx.run_id, kind, args, spool_key=str(key))),
    "claim_job": lambda ctx, key, pid, pid_start, host, message: ctx.store.claim_job(
        ctx.job(key), pid=pid, pid_start=pid_start, host=host, message=message),
    "report_progress": lambda ctx, key, done, total, message: ctx.store.report_progress(
        ctx.job(key), done, total, message),
    "finish_job": lambda ctx, key, status, message, error: ctx.store.finish_job(
        ctx.job(key), status, message=message, error=error),
    "update_best_snapshot": lambda ctx: ctx.store.update_best_snapshot(ctx.run_id),
}


def _one(ctx: _Context, record: Any) -> None:
    _check(record)
    try:
        _APPLY[record[0]](ctx, *record[1:])
    except RecordError:
        raise
    except _BAD_ROW as e:
        raise RecordError(f"{record[0]}: {type(e).__name__}: {' '.join(str(e).split())[:200]}") from None


def _is_batch(rec: Any) -> bool:
    return (type(rec) is list and len(rec) == 6 and rec[0] == "write_batch" and type(rec[1]) is list
            and type(rec[2]) is list and type(rec[3]) is list and (rec[4] is None or type(rec[4]) is dict))


def _merged(records: list):
    """Consecutive write_batch records as one (their rows concatenated, the last run fields winning; a final status
    closes the group): a million small batches cost a few executemany calls."""
    group: list | None = None
    for rec in records:
        if _is_batch(rec):
            if group is None:
                group = ["write_batch", [], [], [], {}, None]
            if rec[1]:
                group[1] += rec[1]
            if rec[2]:
                group[2] += rec[2]
            if rec[3]:
                group[3] += rec[3]
            if rec[4]:
                group[4].update(rec[4])
            if rec[5] is not None:
                group[5] = rec[5]
                yield group
                group = None
            continue
        if group is not None:
            yield group
            group = None
        yield rec
    if group is not None:
        yield group


def apply(store, run_id: int, run_dir: str | Path, records: list) -> None:
    """Apply records (from `parse`) to run `run_id` in the caller's transaction. RecordError (one line) when one
    cannot be applied: the caller rolls back and finds which one with `apply_until_bad`."""
    ctx = _Context(store, run_id, Path(run_dir))
    for rec in _merged(records):
        _one(ctx, rec)


def apply_until_bad(store, run_id: int, run_dir: str | Path, records: list) -> tuple[int, str | None]:
    """Apply records one at a time until one fails: (how many were applied, the failing one's reason or None). Each
    record runs in a savepoint, so a failing one leaves nothing behind."""
    ctx = _Context(store, run_id, Path(run_dir))
    conn = store.db.conn
    for i, rec in enumerate(records):
        conn.execute("SAVEPOINT spool_record")
        try:
            _one(ctx, rec)
        except RecordError as e:
            conn.execute("ROLLBACK TO spool_record")
            conn.execute("RELEASE spool_record")
            return i, str(e)
        conn.execute("RELEASE spool_record")
    return len(records), None
