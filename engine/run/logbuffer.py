"""Buffered run logging: rows queued in memory and written to runs.db about once a second in ONE transaction, together
with the heartbeat and the run's step and kimg (DESIGN.md: "logging costs the training loop next to nothing").

The training loop hands over finished values (interval means from `engine.meter`, events, GPU samples); nothing here
touches a tensor or the device.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from difftui.engine.store import Store

__all__ = ["LogBuffer"]


class LogBuffer:
    def __init__(self, store: Store, run_id: int, *, flush_every_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic):
        self.store = store
        self.run_id = run_id
        self.flush_every_s = flush_every_s
        self.clock = clock
        self.metrics: list[tuple[int, float, str, float, float]] = []
        self.gpu: list[tuple] = []
        self.events: list[tuple[float, str, str]] = []
        self.last_flush = clock()

    def add_metrics(self, step: int, kimg: float, values: dict[str, float]) -> None:
        now = time.time()
        for name, value in values.items():
            self.metrics.append((step, kimg, name, float(value), now))

    def event(self, message: str, level: str = "info") -> None:
        self.events.append((time.time(), level, message))

    def add_gpu(self, rows: list[tuple]) -> None:
        self.gpu.extend(rows)

    def due(self) -> bool:
        return self.clock() - self.last_flush >= self.flush_every_s

    def flush(self, step: int, kimg: float, *, final: tuple[str, str | None] | None = None,
              **run_fields: Any) -> None:
        """One transaction: queued metrics, GPU rows and events, plus heartbeat, step and kimg; with `final`
        (status, error) the run ends in that same transaction (Store.finish_run)."""
        fields = {"step": step, "kimg": kimg, "heartbeat": time.time(), **run_fields}
        self.store.write_batch(self.run_id, metrics=self.metrics, gpu=self.gpu, events=self.events,
                               run_fields=fields, final=final)
        self.metrics, self.gpu, self.events = [], [], []
        self.last_flush = self.clock()
