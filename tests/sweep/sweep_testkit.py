"""Shared helpers for the sweep tests (a module with a unique name): tiny member options, waits, launch counts."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from difftui.engine.store import Store
from difftui.engine.sweeps import RunSpec

# A tiny U-Net (16 channels), batch 8, a 4-step DDIM grid at the end only: a CPU step takes milliseconds, and the
# engine's start (importing torch) is most of a member's life.
TINY_SETS = ("recipe.batch_size=8", "backbone.arch.model_channels=16", "sampler.grid.steps=4", "recipe.log_every=5",
             "recipe.grid_every=100000", "recipe.snapshot_every=100000")


def tiny_spec(steps: int, *extra: str) -> RunSpec:
    return RunSpec(overrides=(*TINY_SETS, *extra), max_steps=steps, device="cpu")


def wait_until(db: Path, predicate: Callable[[Store], Any], timeout: float = 240.0, what: str = "condition",
               poll: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        with Store(db, create=False) as store:
            value = predicate(store)
            if value:
                return value
            if time.monotonic() > deadline:
                sweeps = store.list_sweeps()
                runs = [(r["id"], r["status"], r["step"], r["pid"], r["error"]) for r in store.list_runs()]
                logs = ""
                for s in sweeps:
                    log = Path(s["sweep_dir"]) / "supervisor.log"
                    logs += log.read_text()[-2000:] if log.exists() else ""
                raise AssertionError(f"timed out waiting for {what}: sweeps "
                                     f"{[(s['id'], s['status'], s['error']) for s in sweeps]} runs {runs}\n{logs}")
        time.sleep(poll)


def sweep_status(db: Path, sweep_id: int) -> str:
    with Store(db, create=False) as store:
        return store.get_sweep(sweep_id)["status"]


def launches(run: dict[str, Any]) -> int:
    """How many times an engine was started for this run (start_run writes one '--- launch' line each time)."""
    log = Path(run["run_dir"]) / "engine.log"
    return log.read_text().count("--- launch ") if log.exists() else 0


def engine_starts(store: Store, run_id: int) -> int:
    """How many engines took the run (each writes one 'started on ...' event)."""
    return sum(e["message"].startswith("started on") for e in store.events_since(run_id))
