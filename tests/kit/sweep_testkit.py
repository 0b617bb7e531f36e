"""Shared helpers for the sweep tests (a module with a unique name): tiny member options, waits, launch counts."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import tui_helpers
import waiting
from tui_helpers import no_blink  # noqa: F401  (re-exported for the sweep screens' tests)
from waiting import pilot_wait  # noqa: F401  (the one pilot wait)

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
    """tests/kit/waiting.py's wait_until, failing with the sweeps, their runs and the supervisors' logs."""
    return waiting.wait_until(db, predicate, timeout=timeout, what=what, poll=poll, explain=_sweeps_now)


def _sweeps_now(store: Store) -> str:
    sweeps = store.list_sweeps()
    runs = [(r["id"], r["status"], r["step"], r["pid"], r["error"]) for r in store.list_runs()]
    logs = ""
    for s in sweeps:
        log = Path(s["sweep_dir"]) / "supervisor.log"
        logs += log.read_text()[-2000:] if log.exists() else ""
    return f"sweeps {[(s['id'], s['status'], s['error']) for s in sweeps]} runs {runs}\n{logs}"


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


#----------------------------------------------------------------------------
# A prepared database for the TUI tests: fixed times, fixed curves, no process.

FIXED_T = 1_767_225_600.0          # 2026-01-01 00:00:00 UTC


def grid_png(step: int, seed: int = 0) -> bytes:
    """tui_helpers' stand-in grid, one brightness pattern per run (`seed`)."""
    return tui_helpers.grid_png(step, seed=seed)


def tiny_config_dict(steps: int = 20, *extra: str) -> dict:
    from difftui.engine.config.catalog import Catalog, config_to_dict
    return config_to_dict(Catalog().resolve(overrides=[*TINY_SETS, *extra], max_steps=steps, device="cpu"))


def make_sweep_db(tmp_path: Path) -> Path:
    """Run 1: a finished tiny run with a curve and grids at steps 10 and 20. Sweep 1 (p1-dropout, cpu x2, partial)
    with runs 2-4: dropout 0.1 and 0.3 completed, 0.15 (off-grid) failed at step 10; runs 2 and 3 drew grids at 10
    and 20, and run 2 was evaluated (NLL)."""
    import math as m
    import socket

    from difftui.engine.sweeps import RunSpec
    db = tmp_path / "runs.db"
    host = socket.gethostname()

    def add(store, config, name, status, step, created, curve, sweep_id=None, axis=None, off_grid=False,
            error=None):
        run_id = store.create_run(config, name=name, total_steps=config["recipe"]["total_steps"], device="cpu",
                                  sweep_id=sweep_id)
        batch = config["recipe"]["batch_size"]
        metrics = []
        for s, v in curve:
            metrics.append((s, s * batch / 1000, "L_simple", v, created + s))
            metrics.append((s, s * batch / 1000, "img_per_s", 400.0 + (s % 3), created + s))
        store.write_batch(run_id, metrics=metrics, run_fields=dict(
            status=status, step=step, created=created, started=created + 1, ended=created + 60, host=host,
            heartbeat=created + step, error=error))
        if axis is not None:
            store.set_member(run_id, axis_values=axis, off_grid=off_grid)
        return run_id

    with Store(db) as store:
        base = tiny_config_dict(20)
        a = add(store, base, "digits-base", "completed", 20, FIXED_T, [(s, 1.0 / (1 + s / 5)) for s in range(5, 25, 5)])
        for s in (10, 20):
            store.add_sample(a, step=s, kind="grid", sampler="DDIM eta=0 N=4 linear", nfe=4, png=grid_png(s))
        spec = RunSpec(overrides=TINY_SETS, max_steps=20, device="cpu")
        grid = {"preset": "p1-dropout", "playbook": "4.5", "paper": {"recipe.dropout": [0.1, 0.2, 0.3]},
                "axes": {"recipe.dropout": [0.1, 0.3, 0.15]}, "off_grid": {"recipe.dropout": [0.15]}}
        sweep_id = store.create_sweep(name="p1-dropout-1", preset="p1-dropout", base_config=base, grid=grid,
                                      spec=spec.to_dict(), runs_per_device=2, devices=["cpu"])
        store.update_sweep(sweep_id, status="partial", created=FIXED_T + 100, started=FIXED_T + 100,
                           ended=FIXED_T + 400)
        for i, (dropout, status, step) in enumerate(((0.1, "completed", 20), (0.3, "completed", 20),
                                                     (0.15, "failed", 10))):
            config = tiny_config_dict(20, f"recipe.dropout={dropout}")
            config["name"] = f"s1-dropout={dropout:g}"
            curve = [(s, (0.9 + 0.2 * dropout) / (1 + s / (5 + 5 * i)) + 0.01 * m.sin(s)) for s in range(5, step + 5, 5)]
            run_id = add(store, config, config["name"], status, step, FIXED_T + 100 + 10 * i, curve,
                         sweep_id=sweep_id, axis={"recipe.dropout": dropout}, off_grid=dropout == 0.15,
                         error="FloatingPointError: L_simple is nan at step 10" if status == "failed" else None)
            if status == "completed":
                for s in (10, 20):
                    store.add_sample(run_id, step=s, kind="grid", sampler="DDIM eta=0 N=4 linear", nfe=4,
                                     png=grid_png(s, seed=i + 1))
        store.add_evals(2, [(20, "DDPM", 1000, "nll_bpd", 5.123)])
    return db


