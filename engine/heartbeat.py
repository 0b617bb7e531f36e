"""A heartbeat that keeps beating while the training loop is busy with one long thing (loading data, building the
model, drawing a grid, writing a checkpoint), so that `Store.reap_dead_runs` never mistakes a slow step for a dead
engine. It uses its own connection (one connection per thread, DESIGN.md); in the loop itself the heartbeat rides
in the batched log flush.
"""

from __future__ import annotations

import os
import threading
import time

from difftui.engine.store import Store

__all__ = ["Keepalive", "BEAT_EVERY_S"]

BEAT_EVERY_S = 5.0                                  # well inside store.HEARTBEAT_TIMEOUT_S (60 s)


class Keepalive:
    def __init__(self, db_path: str | os.PathLike[str], run_id: int, every_s: float = BEAT_EVERY_S):
        self.db_path = db_path
        self.run_id = run_id
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _beat(self) -> None:
        with Store(self.db_path, create=False) as store:
            while True:
                store.update_run(self.run_id, heartbeat=time.time())
                if self._stop.wait(self.every_s):
                    return

    def __enter__(self) -> "Keepalive":
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{self.run_id}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
