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
from pathlib import Path
from typing import Any

from waiting import pilot_wait  # noqa: F401  (the one pilot wait: tests/kit/waiting.py)

from difftui.engine.store import Store

FIXED_T = 1_767_225_600.0          # 2026-01-01 00:00:00 UTC


def grid_png(step: int, cells: int = 8, size: int = 8, *, seed: float = 0) -> bytes:
    """A deterministic stand-in for an 8x8 sample grid (grey squares whose brightness depends on the step, and on
    `seed` for one run among several)."""
    from PIL import Image
    pad = 2
    side = cells * size + (cells + 1) * pad
    img = Image.new("L", (side, side), 0)
    px = img.load()
    for gy in range(cells):
        for gx in range(cells):
            for y in range(size):
                for x in range(size):
                    v = 0.5 + 0.5 * math.sin(0.9 * x + 0.7 * y + gx * 1.3 + gy * 0.4 + step / 100 + seed)
                    px[pad + gx * (size + pad) + x, pad + gy * (size + pad) + y] = int(255 * v)
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="PNG")
    return buf.getvalue()


def config_dict(dataset="digits", backbone="unet-demo", sampler="ddim", recipe="p1-default", **recipe_over):
    """A resolved config as a plain dict, built from the real presets without importing torch-heavy code."""
    import yaml

    from difftui.engine.config.catalog import builtin_dir
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


def ensure_gpu_detail_columns(store: Store) -> None:
    """The gpu table's `name`, `uuid` and `error` columns (the engine's telemetry change adds them by a migration;
    added here only where that migration has not run)."""
    have = {r["name"] for r in store.db.query("PRAGMA table_info(gpu)")}
    for col in ("name", "uuid", "error"):
        if col not in have:
            store.db.execute(f"ALTER TABLE gpu ADD COLUMN {col} TEXT")


def make_dydit_db(tmp_path: Path, *, ratio_end: float = 0.523, steps: int = 2000) -> Path:
    """One finished DyDiT-S/2 run (lambda 0.5) on a GPU, with every figure the dashboard can show: losses, lr,
    img/s, grad norm, the FLOPs ratio and target, gflops_fwd / tflops / mfu, GPU readings (one failed), two grids."""
    db = tmp_path / "runs.db"
    with Store(db) as store:
        config = config_dict(backbone="dydit-s-2", recipe="p5-dydit-finetune", batch_size=256)
        config["backbone"]["arch"].update(depth=2, hidden_size=48)
        config["backbone"]["off_tier"] = True
        config["device"] = "cuda:0"
        run_id = store.create_run(config, name="dydit-s-lambda0.5", total_steps=steps, device="cuda:0")
        metrics = []
        for s in range(10, steps + 10, 10):
            t = FIXED_T + s
            kimg = s * 256 / 1000
            loss = 0.09 + 0.9 / (1 + s / 40) + 0.015 * math.sin(s / 7)
            ratio = ratio_end + (1.0 - ratio_end) * math.exp(-s / 300) + 0.004 * math.sin(s / 11)
            metrics += [(s, kimg, "L_simple", loss, t), (s, kimg, "lr", 1e-4, t),
                        (s, kimg, "img_per_s", 850.0 + 20 * math.sin(s / 50), t),
                        (s, kimg, "grad_norm", 0.4 + 2.0 / (1 + s / 30), t),
                        (s, kimg, "flops_ratio", ratio, t), (s, kimg, "flops_target", 0.5, t),
                        (s, kimg, "tflops", 48.3 + math.sin(s / 30), t), (s, kimg, "mfu", 0.0488, t)]
            if s == 10:
                metrics.append((s, kimg, "gflops_fwd", 12.12, t))
        store.write_batch(run_id, metrics=metrics, run_fields=dict(
            status="completed", step=steps, created=FIXED_T, started=FIXED_T + 1, heartbeat=FIXED_T + steps,
            ended=FIXED_T + steps + 5, pid=None, host=socket.gethostname()))
        ensure_gpu_detail_columns(store)
        with store.atomic():
            for i in range(60):
                t = FIXED_T + steps - 120 + 2 * i
                failed = i == 40
                store.db.execute(
                    "INSERT INTO gpu (run_id, time, idx, util, mem_used, mem_total, temperature, power, name, uuid,"
                    " error) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    [run_id, t, 0, None if failed else 88.0 + 8 * math.sin(i / 5), 21_000.0 + 40 * i, 81_559.0,
                     None if failed else 61.0 + i / 20, 305.0 + 25 * math.sin(i / 4),
                     "NVIDIA H100 80GB HBM3", "GPU-8f1c2d3e-0000-4a5b-9c6d-7e8f90a1b2c3",
                     "NVMLError_Unknown: utilization query failed" if failed else None])
            store.db.execute(
                "INSERT INTO gpu (run_id, time, idx, util, mem_used, mem_total, temperature, power, name, uuid, error)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                [run_id, FIXED_T + steps, 0, None, 23_400.0, 81_559.0, None, 318.0, "NVIDIA H100 80GB HBM3",
                 "GPU-8f1c2d3e-0000-4a5b-9c6d-7e8f90a1b2c3", "NVMLError_GpuIsLost: GPU is lost"])
        store.write_batch(run_id, events=[(FIXED_T + 1, "info", "engine started on cuda:0 (NVIDIA H100 80GB HBM3)"),
                                          (FIXED_T + 1000, "info", "grid at step 1000"),
                                          (FIXED_T + steps, "info", f"completed at step {steps}")])
        for s in (1000, steps):
            store.add_sample(run_id, step=s, kind="grid", sampler="DDIM eta=0 N=50 linear", nfe=50, png=grid_png(s))
    return db
