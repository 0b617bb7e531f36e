"""What logging to runs.db and drawing the fixed-x_T grid cost the training loop (issue 2; target: < 3% of step time).

One process, one model, one data stream, one seed: blocks of the bare training step (objective, backward, Adam, EMA)
alternate with blocks of the engine's real step (`Trainer.train_step`: the same plus the `LogBuffer`, the ~1 s
flush to a real runs.db in WAL mode with its heartbeat, and the command poll), so that drift in the machine's speed
hits both alike; the medians of the per-step block times are compared. The grid (the panel's grid sampler on 64
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

from difftui.engine.catalog import Catalog
from difftui.engine.launch import create_run
from difftui.engine.store import Store
from difftui.engine.train import Trainer

RESULTS = Path(__file__).with_name("RESULTS.md")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_step(tr: Trainer) -> None:
    """`Trainer.train_step` without the LogBuffer: the loop as it would be with no database at all."""
    x, _ = tr.stream.next()
    x = x.to(tr.device, non_blocking=True)
    lr = tr.learning_rate()
    for group in tr.optimizer.param_groups:
        group["lr"] = lr
    with tr.autocast:
        loss = tr.objective(tr.net, x)["loss"]
    tr.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    tr.optimizer.step()
    tr.ema.update(tr.net)
    tr.step += 1


def logged_step(tr: Trainer) -> float:
    """The engine's step and its once-a-second flush + command poll; returns the seconds spent flushing."""
    tr.train_step()
    if tr.log.due():
        t0 = time.perf_counter()
        tr.flush()
        tr.poll_commands()
        return time.perf_counter() - t0
    return 0.0


def block(tr: Trainer, step_fn, steps: int) -> tuple[float, float]:
    sync(tr.device)
    t0 = time.perf_counter()
    flush = 0.0
    for _ in range(steps):
        flush += step_fn(tr) or 0.0
    sync(tr.device)
    return (time.perf_counter() - t0) / steps, flush / steps


def logbuffer_cost(tr: Trainer, calls: int = 20_000) -> float:
    """Seconds per step of the LogBuffer's per-step work (accumulate + end_step), timed directly."""
    from difftui.engine.logbuffer import LogBuffer
    buf = LogBuffer(tr.store, tr.run_id, log_every=tr.recipe.log_every, batch_size=tr.recipe.batch_size)
    value = {"L_simple": torch.tensor(0.1, device=tr.device)}
    sync(tr.device)
    t0 = time.perf_counter()
    for step in range(1, calls + 1):
        buf.accumulate(value)
        buf.end_step(step, step * 0.128, {"lr": 1e-4})
    sync(tr.device)
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
        store = Store(db)
        store.update_run(run_id, status="running", pid=os.getpid())
        tr = Trainer(store, run_id, config, Path(tmp) / "runs" / str(run_id))
        tr.setup()
        print(f"device {tr.device}, {torch.get_num_threads()} threads; {config.dataset.name} / "
              f"{config.backbone.name} / batch {r.batch_size}; log_every {r.log_every}, grid_every {r.grid_every}")
        for _ in range(3):                                   # warm-up (allocator, oneDNN primitives)
            logged_step(tr)
        bare, logged, flushes = [], [], []
        for i in range(args.rounds):
            b, _ = block(tr, bare_step, args.steps_per_block)
            l, f = block(tr, logged_step, args.steps_per_block)
            bare.append(b)
            logged.append(l)
            flushes.append(f)
            print(f"  round {i + 1}/{args.rounds}: bare {b * 1e3:.1f} ms/step, logged {l * 1e3:.1f} ms/step")
        grid_times = []
        for _ in range(2):
            sync(tr.device)
            t0 = time.perf_counter()
            tr.draw_grid()
            sync(tr.device)
            grid_times.append(time.perf_counter() - t0)
        logbuf = logbuffer_cost(tr)
        t0 = time.perf_counter()
        tr.checkpoint()
        ckpt_s = time.perf_counter() - t0
        rows = store.db.execute("SELECT COUNT(*) FROM metrics WHERE run_id = ?", [run_id]).fetchone()[0]
        store.close()

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
        f"| logged step minus bare step (LogBuffer + flush + command poll, A/B) | {log_ab * 1e3:.2f} | "
        f"{pct(log_ab):.2f} |",
        f"| LogBuffer per step (accumulate + interval mean), timed directly | {logbuf * 1e3:.3f} | "
        f"{pct(logbuf):.3f} |",
        f"| flush + command poll per step, timed directly | {flush * 1e3:.3f} | {pct(flush):.3f} |",
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
