"""What logging to runs.db and drawing the fixed-x_T grid cost the training loop (issue 2; target: < 3% of step time).

One process, one model, one data stream, one seed: blocks of the bare training step (`Trainer.train_step`: objective,
backward, the non-finite guard, Adam, EMA) alternate with blocks of the engine's logged step (the same plus the
`Meter`, the interval close every `log_every` steps and the ~1 s flush to a real runs.db in WAL mode, with the run
owner's heartbeat thread running beside it), so that drift in the machine's speed hits both alike; the medians of
the per-step block times are compared. The grid (the panel's grid sampler on 64
fixed latents with the EMA weights, PNG, file and samples row) is timed on its own and amortised over
`recipe.grid_every` steps. Checkpoint cost is shown too, amortised over `snapshot_every` (not part of the target).

    python bench/overhead.py                      # the default run: digits, unet-demo, ddim, p1-default
    python bench/overhead.py --rounds 8 --steps-per-block 10 --device auto --set recipe.batch_size=64

Prints one table and appends it to bench/RESULTS.md (with the date, the machine and the card).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")     # as the engine worker does (difftui/engine/__main__.py)

import argparse
import platform
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

import torch

from difftui.engine.config.catalog import Catalog
from difftui.engine.launch.runs import create_run
from difftui.engine.run.distributed import World
from difftui.engine.run.loop import TrainLoop
from difftui.engine.run.meter import Meter
from difftui.engine.run.owner import RunOwner
from difftui.engine.run.trainer import Trainer

RESULTS = Path(__file__).with_name("RESULTS.md")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_step(loop: TrainLoop) -> float:
    """The trainer's step alone: the loop as it would be with no logging and no database."""
    loop.trainer.train_step()
    return 0.0


def logged_step(loop: TrainLoop) -> float:
    """The loop's per-step logging: accumulate, close the interval at logging steps, flush about once a second;
    returns the seconds spent flushing."""
    t = loop.trainer
    result = t.train_step()
    loop.meter.accumulate(result.terms, result.ok)
    loop.clock.tick()
    if t.step % loop.recipe.log_every == 0:
        loop.control()
        interval = loop.meter.close(loop.world)
        seconds, steps = loop.clock.lap()
        loop.log_interval(interval, seconds, steps)
    if loop.owner.log.due():
        t0 = time.perf_counter()
        loop.flush()
        return time.perf_counter() - t0
    return 0.0


def block(loop: TrainLoop, step_fn, steps: int) -> tuple[float, float]:
    sync(loop.trainer.device)
    t0 = time.perf_counter()
    flush = 0.0
    for _ in range(steps):
        flush += step_fn(loop)
    sync(loop.trainer.device)
    return (time.perf_counter() - t0) / steps, flush / steps


def meter_cost(loop: TrainLoop, calls: int = 20_000) -> float:
    """Seconds per step of the Meter's per-step work (accumulate; one interval close per log_every), timed directly."""
    meter = Meter(loop.trainer.device)
    values = {"L_simple": torch.tensor(0.1, device=loop.trainer.device),
              "grad_norm": torch.tensor(1.0, device=loop.trainer.device)}
    ok = torch.tensor(True, device=loop.trainer.device)
    sync(loop.trainer.device)
    t0 = time.perf_counter()
    for step in range(1, calls + 1):
        meter.accumulate(values, ok)
        if step % loop.recipe.log_every == 0:
            meter.close(loop.world)
    sync(loop.trainer.device)
    return (time.perf_counter() - t0) / calls


def machine() -> str:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA), {cores}-core CPU"
    return f"{cores}-core CPU ({platform.processor() or platform.machine()}), no GPU"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=6, help="alternating (bare, logged) block pairs")
    ap.add_argument("--steps-per-block", type=int, default=10)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--set", action="append", default=[], dest="overrides", help="config override key=value")
    ap.add_argument("--no-record", action="store_true", help="print only; do not append to bench/RESULTS.md")
    args = ap.parse_args()

    config = Catalog().resolve(overrides=args.overrides, device=args.device, max_steps=10**9)
    r = config.recipe
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "runs.db"
        run_id = create_run(db, config)
        owner = RunOwner(db, run_id)
        tr = Trainer(config, owner.run_dir, World(), event=owner.event)
        tr.setup()
        loop = TrainLoop(tr, owner, World())
        loop.measure_flops()
        print(f"device {tr.device}, {torch.get_num_threads()} threads; {config.dataset.name} / "
              f"{config.backbone.name} / batch {r.batch_size}; log_every {r.log_every}, grid_every {r.grid_every}")
        for _ in range(3):                                   # warm-up (allocator, oneDNN primitives)
            logged_step(loop)
        bare, logged, flushes = [], [], []
        for i in range(args.rounds):
            b, _ = block(loop, bare_step, args.steps_per_block)
            l, f = block(loop, logged_step, args.steps_per_block)
            bare.append(b)
            logged.append(l)
            flushes.append(f)
            print(f"  round {i + 1}/{args.rounds}: bare {b * 1e3:.1f} ms/step, logged {l * 1e3:.1f} ms/step")
        grid_times = []
        for _ in range(2):
            sync(tr.device)
            t0 = time.perf_counter()
            loop.draw_grid()
            sync(tr.device)
            grid_times.append(time.perf_counter() - t0)
        logbuf = meter_cost(loop)
        t0 = time.perf_counter()
        loop.checkpoint()
        ckpt_s = time.perf_counter() - t0
        loop.flush()
        rows = owner.store.db.execute("SELECT COUNT(*) FROM metrics WHERE run_id = ?", [run_id]).fetchone()[0]
        owner.close()

    step = statistics.median(bare)
    log_ab = statistics.median(logged) - step
    flush = statistics.mean(flushes)
    grid = min(grid_times)
    grid_per_step = grid / r.grid_every
    total = log_ab + grid_per_step
    direct = logbuf + flush + grid_per_step
    load = "load average %.1f over 5 min" % os.getloadavg()[1] if hasattr(os, "getloadavg") else ""
    pct = lambda s: 100.0 * s / step
    lines = [
        f"### Logging and grid overhead ({date.today().isoformat()}, {machine()}, torch {torch.__version__})",
        "",
        f"`python bench/overhead.py --rounds {args.rounds} --steps-per-block {args.steps_per_block}"
        f"{''.join(' --set ' + o for o in args.overrides)}`: {config.dataset.name} / {config.backbone.name} / "
        f"{config.sampler.name} grid ({config.sampler.grid.describe()}) / {config.recipe.name}, batch "
        f"{r.batch_size}, device {tr.device}; log_every {r.log_every}, flush ~1 s, grid_every {r.grid_every}, "
        f"snapshot_every {r.snapshot_every}. {rows} metric rows written; {load} while it ran.",
        "",
        "| part | ms per step | % of bare step |",
        "| --- | ---: | ---: |",
        f"| bare training step (median of {args.rounds} blocks of {args.steps_per_block}) | {step * 1e3:.1f} | 100 |",
        f"| logged step minus bare step (Meter + interval close + flush, A/B) | {log_ab * 1e3:.2f} | "
        f"{pct(log_ab):.2f} |",
        f"| Meter per step (accumulate + interval close), timed directly | {logbuf * 1e3:.3f} | "
        f"{pct(logbuf):.3f} |",
        f"| flush per step, timed directly | {flush * 1e3:.3f} | {pct(flush):.3f} |",
        f"| grid: {grid:.2f} s each, amortised over {r.grid_every} steps | {grid_per_step * 1e3:.2f} | "
        f"{pct(grid_per_step):.2f} |",
        f"| **total: A/B logging + grid** | **{total * 1e3:.2f}** | **{pct(total):.2f}** |",
        f"| total: direct logging + grid | {direct * 1e3:.2f} | {pct(direct):.2f} |",
        f"| (checkpoint: {ckpt_s:.2f} s each, amortised over {r.snapshot_every} steps; not in the target) | "
        f"{ckpt_s / r.snapshot_every * 1e3:.2f} | {pct(ckpt_s / r.snapshot_every):.2f} |",
        "",
        f"Target < 3% of step time: {'met' if max(pct(total), pct(direct)) < 3.0 else 'NOT met'}. The A/B line is "
        f"the difference of two medians and carries the machine's noise (it can even come out negative on a busy "
        f"machine); the direct timings measure the logging code itself.",
        "",
    ]
    text = "\n".join(lines)
    print()
    print(text)
    if not args.no_record:
        new = not RESULTS.exists()
        with open(RESULTS, "a", encoding="utf-8") as f:
            f.write(("# Benchmark results\n" if new else "") + "\n" + text)
        print(f"appended to {RESULTS}")


if __name__ == "__main__":
    main()
