"""What a run logs: metrics, GPU samples and events in the engine's one batched transaction (`write_batch`, about once
a second; DESIGN.md: logging costs the training loop next to nothing), grids and evaluation rows, and the cut a
resume makes (`truncate_after`)."""

from __future__ import annotations

import time
from typing import Any

from difftui.engine.store.connection import encode_value

__all__ = ["LogsTable"]


def _gpu_row(run_id: int, row: tuple) -> tuple:
    """(time, idx, util, mem_used, mem_total, temp, power[, name, uuid, error]) -> the INSERT's parameters."""
    time_, idx, *readings = row[:7]
    name, uuid, error = (*row[7:10], None, None, None)[:3]
    return (run_id, time_, idx, *map(encode_value, readings), name, uuid, error)


class LogsTable:
    """metrics, gpu, events, samples and evals writes (a mixin of `Store`)."""

    def write_batch(self, run_id: int, *, metrics: list[tuple[int, float, str, float, float]] = (),
                    gpu: list[tuple[float, int, float, float, float, float, float]] = (),
                    events: list[tuple[float, str, str]] = (),
                    run_fields: dict[str, Any] | None = None,
                    final: tuple[str, str | None] | None = None) -> None:
        """One transaction. metrics: (step, kimg, name, value, time); gpu: (time, idx, util, mem_used, mem_total,
        temp, power[, name, uuid, error]) with NaN for a reading that failed and its reason in `error`;
        events: (time, level, message); run_fields: columns of `runs` to update (step, kimg, heartbeat; the engine
        never sets the status here, tests may to prepare a state); final: (status, error) to end the run with
        everything still queued (`finish_run`)."""
        with self.atomic():
            conn = self.db.conn
            if metrics:
                # encode_value inlined (NaN -> 'NaN'; v != v only for NaN): the hot path of logging and of ingest
                conn.executemany("INSERT INTO metrics (run_id, step, kimg, name, value, time) VALUES (?,?,?,?,?,?)",
                                 [(run_id, s, k, n, v if v == v else "NaN", t) for s, k, n, v, t in metrics])
            if gpu:
                conn.executemany("INSERT INTO gpu (run_id, time, idx, util, mem_used, mem_total, temperature, power,"
                                 " name, uuid, error) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                                 [_gpu_row(run_id, g) for g in gpu])
            if events:
                conn.executemany("INSERT INTO events (run_id, time, level, message) VALUES (?,?,?,?)",
                                 [(run_id, *e) for e in events])
            if run_fields:
                cols = ", ".join(f"{k} = ?" for k in run_fields)
                conn.execute(f"UPDATE runs SET {cols} WHERE id = ?", [*run_fields.values(), run_id])
            if final is not None:
                self._finish(run_id, *final)

    def _event(self, run_id: int, level: str, message: str) -> None:
        self.db.execute("INSERT INTO events (run_id, time, level, message) VALUES (?,?,?,?)",
                        [run_id, time.time(), level, message])

    def add_event(self, run_id: int, level: str, message: str) -> None:
        with self.atomic():
            self._event(run_id, level, message)

    def add_sample(self, run_id: int, *, step: int, kind: str, sampler: str, nfe: int, png: bytes,
                   path: str | None = None, at: float | None = None) -> int:
        """One grid (or panel, curve) image; `at` is when it was drawn (default now; the ingester passes the
        engine's time)."""
        with self.atomic():
            cur = self.db.execute(
                "INSERT INTO samples (run_id, step, kind, sampler, nfe, path, png, time) VALUES (?,?,?,?,?,?,?,?)",
                [run_id, step, kind, sampler, nfe, path, png, time.time() if at is None else at])
        return int(cur.lastrowid)

    def add_evals(self, run_id: int, rows: list[tuple[int, str, int, str, float]]) -> None:
        """rows: (step, sampler, nfe, metric, value)."""
        now = time.time()
        with self.atomic():
            self.db.conn.executemany(
                "INSERT INTO evals (run_id, step, sampler, nfe, metric, value, time) VALUES (?,?,?,?,?,?,?)",
                [(run_id, *r[:4], encode_value(r[4]), now) for r in rows])

    def truncate_after(self, run_id: int, step: int) -> int:
        """Drop rows logged after `step` (before a resume from that checkpoint); return the metric rows removed."""
        with self.atomic():
            n = self.db.execute("DELETE FROM metrics WHERE run_id = ? AND step > ?", [run_id, step]).rowcount
            self.db.execute("DELETE FROM samples WHERE run_id = ? AND step > ?", [run_id, step])
            self.db.execute("DELETE FROM evals WHERE run_id = ? AND step > ?", [run_id, step])
        return n
