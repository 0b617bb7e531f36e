"""The one way the tests wait (issue 15 item 6): poll a condition until it holds, bounded, and fail naming what never
happened. Three shapes of the same loop: a run row (`wait_for`), anything read from the store (`wait_until`), and a
Textual pilot (`pilot_wait`, which lets the app's event loop run between polls)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from difftui.engine.store import Store

__all__ = ["wait_for", "wait_until", "pilot_wait"]


def wait_until(db: Path, predicate: Callable[[Store], Any], timeout: float = 240.0, what: str = "condition",
               poll: float = 0.2, explain: Callable[[Store], str] | None = None) -> Any:
    """Poll `predicate(store)` on a fresh read of `db` until it is truthy; returns its value. On timeout the
    assertion names `what`, followed by `explain(store)` when given."""
    deadline = time.monotonic() + timeout
    while True:
        with Store(db, create=False) as store:
            value = predicate(store)
            if value:
                return value
            if time.monotonic() > deadline:
                detail = f"\n{explain(store)}" if explain is not None else ""
                raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(poll)


def _engine_tail(run: dict[str, Any] | None) -> str:
    if run is None:
        return "(no such run)"
    log = Path(run["run_dir"]) / "engine.log"
    tail = log.read_text()[-3000:] if log.exists() else "(no engine.log)"
    return f"run {run['id']} at status {run['status']} step {run['step']}\n{tail}"


def wait_for(db: Path, run_id: int, predicate: Callable[[dict[str, Any]], Any], timeout: float = 120.0,
             poll: float = 0.1) -> dict[str, Any]:
    """Poll run `run_id`'s row until predicate(row) holds; returns the row. On timeout: the engine log's tail."""
    return wait_until(db, lambda store: (lambda run: run if predicate(run) else None)(store.get_run(run_id)),
                      timeout=timeout, what=f"run {run_id}", poll=poll,
                      explain=lambda store: _engine_tail(store.get_run(run_id)))


async def pilot_wait(pilot, condition: Callable[[], Any], timeout: float = 30.0,
                     what: str | Callable[[], str] = "condition") -> Any:
    """Pause the pilot until `condition()` is truthy (bounded; the assertion names what never happened)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what() if callable(what) else what}")
        await pilot.pause(0.1)
