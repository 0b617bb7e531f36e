"""Buffered run logging: per-step values are summed on the device, averaged every `log_every` steps, and written to
runs.db about once a second in ONE transaction together with the heartbeat and the run's step and kimg (DESIGN.md:
"logging costs the training loop next to nothing").

The per-step cost is a tensor add per series (no host sync); the host sync (`.item()`) happens once per logging
interval, and SQLite is touched once per flush interval. The partial interval is part of a checkpoint, so a resumed
run logs the same means at the same steps as an uninterrupted one.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import torch
from torch import Tensor

from difftui.engine.store import Store

__all__ = ["LogBuffer"]


class LogBuffer:
    def __init__(self, store: Store, run_id: int, *, log_every: int, batch_size: int, flush_every_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic):
        self.store = store
        self.run_id = run_id
        self.log_every = log_every
        self.batch_size = batch_size
        self.flush_every_s = flush_every_s
        self.clock = clock
        self.sums: dict[str, Tensor] = {}
        self.count = 0
        self.metrics: list[tuple[int, float, str, float, float]] = []
        self.gpu: list[tuple] = []
        self.events: list[tuple[float, str, str]] = []
        self.last_flush = clock()
        self.interval_start = clock()
        self.interval_images = 0
        self.latest: dict[str, float] = {}

    #------------------------------------------------------------------------
    # Per step.

    def accumulate(self, values: dict[str, Tensor]) -> None:
        """Add one step's scalar tensors (detached; no host sync)."""
        for name, v in values.items():
            v = v.detach()
            s = self.sums.get(name)
            self.sums[name] = v.clone() if s is None else s.add_(v)
        self.count += 1
        self.interval_images += self.batch_size

    def end_step(self, step: int, kimg: float, extra: dict[str, float] | None = None) -> bool:
        """Close the interval when `step` is a multiple of log_every: queue the means, img/s and `extra`."""
        if step % self.log_every:
            return False
        now_wall, now = time.time(), self.clock()
        if self.count:
            names = list(self.sums)
            means = torch.stack([self.sums[n].float() for n in names]).div_(self.count).tolist()
            for name, value in zip(names, means):
                self.metrics.append((step, kimg, name, value, now_wall))
                self.latest[name] = value
        for name, value in (extra or {}).items():
            self.metrics.append((step, kimg, name, float(value), now_wall))
            self.latest[name] = float(value)
        elapsed = now - self.interval_start
        if elapsed > 0 and self.interval_images:
            ips = self.interval_images / elapsed
            self.metrics.append((step, kimg, "img_per_s", ips, now_wall))
            self.latest["img_per_s"] = ips
        self.sums.clear()
        self.count = 0
        self.interval_start = now
        self.interval_images = 0
        return True

    def restart_clock(self) -> None:
        """After a pause that is not training (a grid, a checkpoint), so img/s measures training only."""
        self.interval_start = self.clock()
        self.interval_images = 0

    #------------------------------------------------------------------------
    # Events, GPU rows, flushing.

    def event(self, message: str, level: str = "info") -> None:
        self.events.append((time.time(), level, message))

    def add_gpu(self, rows: list[tuple]) -> None:
        self.gpu.extend(rows)

    def due(self) -> bool:
        return self.clock() - self.last_flush >= self.flush_every_s

    def flush(self, step: int, kimg: float, **run_fields: Any) -> None:
        """One transaction: queued metrics, GPU rows and events, plus heartbeat, step and kimg."""
        fields = {"step": step, "kimg": kimg, "heartbeat": time.time(), **run_fields}
        self.store.write_batch(self.run_id, metrics=self.metrics, gpu=self.gpu, events=self.events,
                               run_fields=fields)
        self.metrics, self.gpu, self.events = [], [], []
        self.last_flush = self.clock()

    #------------------------------------------------------------------------
    # Checkpointed state: the partial interval.

    def state_dict(self) -> dict[str, Any]:
        return {"sums": {k: v.cpu() for k, v in self.sums.items()}, "count": self.count}

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        self.sums = {k: v.to(device) for k, v in state["sums"].items()}
        self.count = int(state["count"])
        self.restart_clock()
