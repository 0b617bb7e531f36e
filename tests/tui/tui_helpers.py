"""Helpers for the TUI tests (a module with a unique name, so that test files can import it whatever other
conftest.py files the suite holds): fixed run data, bounded waits, engine cleanup."""

from __future__ import annotations

import io
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from difftui.engine.store import Store

FIXED_T = 1_767_225_600.0          # 2026-01-01 00:00:00 UTC


def grid_png(step: int, cells: int = 8, size: int = 8) -> bytes:
    """A deterministic stand-in for an 8x8 sample grid (grey squares whose brightness depends on step)."""
    from PIL import Image
    pad = 2
    side = cells * size + (cells + 1) * pad
    img = Image.new("L", (side, side), 0)
    px = img.load()
    for gy in range(cells):
        for gx in range(cells):
            for y in range(size):
                for x in range(size):
                    v = 0.5 + 0.5 * math.sin(0.9 * x + 0.7 * y + gx * 1.3 + gy * 0.4 + step / 100)
                    px[pad + gx * (size + pad) + x, pad + gy * (size + pad) + y] = int(255 * v)
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="PNG")
    return buf.getvalue()


def config_dict(dataset="digits", backbone="unet-demo", sampler="ddim", recipe="p1-default", **recipe_over):
    """A resolved config as a plain dict, built from the real presets without importing torch-heavy code."""
    import yaml

    from difftui.engine.catalog import builtin_dir
    root = builtin_dir()
    out = {}
    for kind, name in (("dataset", dataset), ("backbone", backbone), ("sampler", sampler), ("recipe", recipe)):
        out[kind] = yaml.safe_load((root / f"{kind}s" / f"{name}.yaml").read_text())
    out["recipe"].update(recipe_over)
    out["device"] = "cpu"
    out["name"] = ""
    return out


def add_run(store: Store, *, name: str, status: str, step: int, total: int, created: float,
            dataset="digits", backbone="unet-demo", losses: list[tuple[int, float]] = (), pid: int | None = None,
            device: str = "cpu", batch_size: int = 128, recipe: str = "p1-default") -> int:
    run_id = store.create_run(config_dict(dataset=dataset, backbone=backbone, recipe=recipe, batch_size=batch_size),
                              name=name, total_steps=total, device=device)
    metrics = []
    for s, v in losses:
        metrics.append((s, s * batch_size / 1000, "L_simple", v, created + s))
        metrics.append((s, s * batch_size / 1000, "img_per_s", 1000.0 + s % 7, created + s))
    store.write_batch(run_id, metrics=metrics, run_fields=dict(
        status=status, step=step, created=created, started=created + 1, heartbeat=created + step,
        pid=pid, host=socket.gethostname(), ended=None if status in ("running", "queued") else created + 3600))
    return run_id


def dead_pid() -> int:
    """A pid that belongs to no process (a child that has exited and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def no_blink(app) -> None:
    from textual.widgets import Input
    for screen in app.screen_stack:
        for widget in screen.query(Input):
            widget.cursor_blink = False


async def wait_for(pilot, condition: Callable[[], Any], timeout: float = 30.0,
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


def kill_engines(db: Path) -> None:
    """Teardown: end any engine a test left behind (by its recorded pid; the test's own processes only)."""
    if not db.exists():
        return
    with Store(db) as store:
        for run in store.list_runs():
            if run["pid"] and run["status"] in ("queued", "running", "stopping"):
                try:
                    os.killpg(run["pid"], signal.SIGTERM)
                except (ProcessLookupError, PermissionError):
                    pass


def run_status(db: Path, run_id: int) -> dict[str, Any] | None:
    with Store(db) as store:
        return store.get_run(run_id)


def engine_log(db: Path, run_id: int) -> str:
    run = run_status(db, run_id)
    path = Path(run["run_dir"]) / "engine.log" if run and run["run_dir"] else None
    return path.read_text(errors="replace")[-3000:] if path and path.exists() else "(no engine.log)"


def make_prepared_db(tmp_path: Path) -> Path:
    """Three finished runs and one 'running' run whose process is gone, with fixed times and data."""
    db = tmp_path / "runs.db"
    with Store(db) as store:
        curve = [(s, 1.0 / (1 + s / 50) + 0.02 * math.sin(s)) for s in range(10, 1010, 10)]
        a = add_run(store, name="digits-baseline", status="completed", step=1000, total=1000, created=FIXED_T,
                    losses=curve)
        store.write_batch(a, events=[(FIXED_T + 1, "info", "engine started on cpu"),
                                     (FIXED_T + 2, "info", "resumed from nothing: fresh start at step 0"),
                                     (FIXED_T + 500, "info", "checkpoint written at step 500"),
                                     (FIXED_T + 999, "warning", "grad norm spiked to 12.4 at step 990"),
                                     (FIXED_T + 1000, "info", "completed 1000 steps")])
        for s in (250, 500, 750, 1000):
            store.add_sample(a, step=s, kind="grid", sampler="DDIM eta=0 N=50 linear", nfe=50, png=grid_png(s))
        add_run(store, name="cifar-p1", status="stopped", step=420, total=500000, created=FIXED_T + 86400,
                dataset="cifar10", backbone="unet-cifar10", losses=[(s, 0.08 - s / 1e5) for s in range(10, 430, 10)])
        add_run(store, name="digits-hybrid", status="failed", step=0, total=2000, created=FIXED_T + 2 * 86400)
        store.update_run(3, error="CUDA out of memory")
        add_run(store, name="digits-orphan", status="running", step=120, total=4000, created=FIXED_T + 3 * 86400,
                losses=[(s, 0.5 - s / 1000) for s in range(10, 130, 10)], pid=dead_pid())
    return db
