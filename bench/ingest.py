"""The spool (issue 17 item 2): how fast runs.db ingests a spool, and what the spool sink costs the training loop
against the SQLite sink.

1. Ingest throughput: a spool of 1,000,000 metric records (written by `SpoolSink`, as an engine writes them) ingested
   into a fresh runs.db by `ingest_run` (read, parse, insert through Store.write_batch, offsets; WAL, the real
   indexes). Twice: as a fast engine writes it (one line per ~1 s flush; `--per-line` metric rows in it) and as a
   slow one does (one logging interval, 10 rows, per line). Target: under 5 s.
2. Logging cost, side by side in one process: one trainer, two run owners (one writing runs.db, one writing a spool),
   blocks of the engine's logged step alternating between them (so drift in the machine's speed hits both alike),
   `log_every=1` so that every step queues rows (a tiny network, so that steps are short and flushes frequent); plus
   each sink's flush timed directly on the same batches. Target: the spool sink costs no more than the SQLite sink.

    python bench/ingest.py                        # both parts
    python bench/ingest.py --records 200000 --no-record

Prints one table and appends it to bench/RESULTS.md (with the date and the machine).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")     # as the engine worker does (difftui/engine/__main__.py)

import argparse
import platform
import resource
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")
CONFIG = {"dataset": {"name": "digits"}, "backbone": {"name": "unet-demo"}, "sampler": {"name": "ddim"},
          "recipe": {"name": "p1-default"}}
NAMES = ("L_simple", "L_vlb", "L_hybrid", "grad_norm", "lr", "img_per_s", "tflops", "skipped_steps", "flops_ratio",
         "ema_decay")


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def machine() -> str:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cores}-core CPU ({platform.processor() or platform.machine()})"


#----------------------------------------------------------------------------
# 1. Ingest throughput.

def write_spool(root: Path, records: int, per_line: int):
    from difftui.engine.store import Store
    from difftui.engine.store.spool import SpoolSink, write_run_json
    db = root / "runs.db"
    with Store(db) as store:
        run_id = store.create_run(CONFIG, name="bench", total_steps=records, sink="spool")
        run = store.get_run(run_id)
    write_run_json(run)
    with SpoolSink(run["run_dir"], run_id) as sink:
        step, left = 0, records
        while left > 0:
            n = min(per_line, left)
            rows = []
            for _ in range(n):
                rows.append((step, step * 0.128, NAMES[len(rows) % len(NAMES)], 0.1 + 1e-7 * step, 1.7e9 + step))
                if len(rows) % len(NAMES) == 0:
                    step += 1
            step += 1
            sink.write_batch(run_id, metrics=rows, run_fields={"step": step, "kimg": step * 0.128,
                                                               "heartbeat": 1.7e9 + step})
            left -= n
    size = sum(p.stat().st_size for p in (Path(run["run_dir"]) / "spool").glob("*.jsonl"))
    return db, run_id, size


def time_ingest(records: int, per_line: int) -> dict:
    from difftui.engine.store import Store
    from difftui.engine.store.ingest import ingest_run
    with tempfile.TemporaryDirectory() as tmp:
        db, run_id, size = write_spool(Path(tmp), records, per_line)
        c0, t0 = cpu_s(), time.perf_counter()
        with Store(db) as store:
            result = ingest_run(store, store.get_run(run_id))
        wall, cpu = time.perf_counter() - t0, cpu_s() - c0
        with Store(db) as store:
            rows = store._rows("SELECT COUNT(*) AS n FROM metrics WHERE run_id = ?", [run_id])[0]["n"]
            t1 = time.perf_counter()
            again = ingest_run(store, store.get_run(run_id))
            idle = time.perf_counter() - t1
    assert rows == records and not result.errors and again.records == 0, (rows, result.errors)
    return {"per_line": per_line, "lines": result.records, "mb": size / 1e6, "wall": wall, "cpu": cpu, "rows": rows,
            "idle_ms": idle * 1e3}


def time_direct(records: int) -> dict:
    """The floor: the same rows written by the SQLite sink's own call (one Store.write_batch) into a fresh runs.db."""
    from difftui.engine.store import Store
    rows = [(i // len(NAMES), i // len(NAMES) * 0.128, NAMES[i % len(NAMES)], 0.1 + 1e-7 * i, 1.7e9 + i)
            for i in range(records)]
    with tempfile.TemporaryDirectory() as tmp:
        with Store(Path(tmp) / "runs.db") as store:
            run_id = store.create_run(CONFIG, name="bench", total_steps=records)
            c0, t0 = cpu_s(), time.perf_counter()
            store.write_batch(run_id, metrics=rows)
            return {"wall": time.perf_counter() - t0, "cpu": cpu_s() - c0}


#----------------------------------------------------------------------------
# 2. The loop's logging cost with each sink.

def logged_step(loop) -> float:
    """The loop's per-step logging (bench/overhead.py's): returns the seconds spent flushing."""
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


def flush_direct(owner, flushes: int, rows: int) -> float:
    """Seconds per flush of `rows` metric rows, an event and the run's fields, back to back in the loop's thread (the
    spool's fsync is the heartbeat thread's, as in the engine)."""
    t0 = time.perf_counter()
    for i in range(flushes):
        owner.log.add_metrics(i, i * 0.128, {NAMES[j % len(NAMES)] + str(j // len(NAMES)): 0.1 * j
                                              for j in range(rows)})
        owner.log.event(f"flush {i}")
        owner.flush(i, i * 0.128)
    return (time.perf_counter() - t0) / flushes


def logging_cost(rounds: int, steps_per_block: int, flushes: int, rows: int, overrides: list[str]) -> dict:
    import torch

    from difftui.engine.config.catalog import Catalog
    from difftui.engine.launch.runs import create_run
    from difftui.engine.run.distributed import World
    from difftui.engine.run.loop import TrainLoop
    from difftui.engine.run.owner import RunOwner
    from difftui.engine.run.trainer import Trainer
    from difftui.engine.store import Store
    config = Catalog().resolve(overrides=["recipe.log_every=1", *overrides], device="cpu", max_steps=10**9)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "runs.db"
        owners = {"SQLite sink (runs.db)": RunOwner(db, create_run(db, config))}
        spool_id = create_run(db, config, sink="spool")
        with Store(db) as store:
            spool_dir = store.get_run(spool_id)["run_dir"]
        owners["spool sink (files)"] = RunOwner(None, spool_id, spool=spool_dir)
        first = next(iter(owners.values()))
        tr = Trainer(config, first.run_dir, World(), event=first.event)
        tr.setup()
        loop = TrainLoop(tr, first, World())
        for owner in owners.values():
            loop.owner = owner
            loop.measure_flops()
            for _ in range(3):
                logged_step(loop)
        blocks = {name: [] for name in owners}
        flush_in_loop = {name: [] for name in owners}
        for _ in range(rounds):
            for name, owner in owners.items():
                loop.owner = owner
                t0, spent = time.perf_counter(), 0.0
                for _ in range(steps_per_block):
                    spent += logged_step(loop)
                blocks[name].append((time.perf_counter() - t0) / steps_per_block)
                flush_in_loop[name].append(spent / steps_per_block)
        direct = {name: flush_direct(owner, flushes, rows) for name, owner in owners.items()}
        for owner in owners.values():
            owner.close()
    return {"step": {n: statistics.median(v) for n, v in blocks.items()},
            "flush_per_step": {n: statistics.mean(v) for n, v in flush_in_loop.items()},
            "direct": direct, "threads": torch.get_num_threads(), "config": config}


#----------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=1_000_000, help="metric records in the spool")
    ap.add_argument("--per-line", type=int, default=100, help="metric rows per line as the engine writes them")
    ap.add_argument("--rounds", type=int, default=6, help="alternating blocks per sink")
    ap.add_argument("--steps-per-block", type=int, default=20)
    ap.add_argument("--flushes", type=int, default=2000, help="flushes timed directly per sink")
    ap.add_argument("--rows", type=int, default=30, help="metric rows per directly timed flush")
    ap.add_argument("--set", action="append", dest="overrides", help="config override of the logging run",
                    default=None)
    ap.add_argument("--no-record", action="store_true", help="print only; do not append to bench/RESULTS.md")
    args = ap.parse_args()

    overrides = args.overrides or ["recipe.batch_size=16", "backbone.arch.model_channels=16"]
    ingests = [time_ingest(args.records, args.per_line), time_ingest(args.records, 10)]
    floor = time_direct(args.records)
    for r in ingests:
        print(f"  ingest, {r['per_line']} per line: {r['wall']:.2f} s wall, {r['cpu']:.2f} s CPU")
    cost = logging_cost(args.rounds, args.steps_per_block, args.flushes, args.rows, overrides)
    load = "load average %.1f over 1 min" % os.getloadavg()[0] if hasattr(os, "getloadavg") else ""
    db_name, spool_name = list(cost["step"])
    ok_ingest = all(r["wall"] < 5.0 for r in ingests)
    ok_cpu = all(r["cpu"] < 5.0 for r in ingests)
    ok_cost = cost["direct"][spool_name] <= cost["direct"][db_name]
    r = cost["config"].recipe
    lines = [
        f"### Spool ingest and logging cost ({date.today().isoformat()}, {machine()}, no GPU used)",
        "",
        f"`python bench/ingest.py --records {args.records} --per-line {args.per_line}"
        f"{''.join(' --set ' + o for o in overrides)}`: {load} when it ended (the machine is shared; CPU times beside "
        f"the wall times).",
        "",
        "| measure | value | target |",
        "|---|---:|---:|",
    ]
    for g in ingests:
        how = "a fast engine's flush" if g["per_line"] > 10 else "a logging interval"
        lines.append(f"| ingest {g['rows']:,} metric records, {g['per_line']} per line ({how}; {g['lines']:,} lines, "
                     f"{g['mb']:.0f} MB) into a fresh runs.db, wall (CPU) | {g['wall']:.2f} s ({g['cpu']:.2f} s); "
                     f"{g['rows'] / g['wall'] / 1e3:,.0f}k rows/s | < 5 s |")
    lines.append(f"| the floor: the same {args.records:,} rows in one Store.write_batch (the SQLite sink's own "
                 f"insert), wall (CPU) | {floor['wall']:.2f} s ({floor['cpu']:.2f} s) | |")
    lines.append(f"| ingest again with nothing new (one stat per file) | {ingests[0]['idle_ms']:.2f} ms | |")
    for name in (db_name, spool_name):
        lines.append(f"| {name}: one flush of {args.rows} metric rows + an event + the run's fields, timed directly "
                     f"(mean of {args.flushes}) | {cost['direct'][name] * 1e6:.0f} us | spool <= SQLite |")
    for name in (db_name, spool_name):
        lines.append(f"| {name}: logged step in the loop, median of {args.rounds} blocks of {args.steps_per_block} "
                     f"(of which flushing) | {cost['step'][name] * 1e3:.2f} ms "
                     f"({cost['flush_per_step'][name] * 1e3:.3f} ms) | |")
    lines += [
        "",
        f"Ingest target (< 5 s for 1,000,000 records): {'met' if ok_ingest else 'NOT met'} in wall time, "
        f"{'met' if ok_cpu else 'NOT met'} in CPU time; logging cost target "
        f"(spool sink <= SQLite sink, flush timed directly): {'met' if ok_cost else 'NOT met'}. The loop blocks "
        f"({cost['config'].dataset.name} / {cost['config'].backbone.name}, batch {r.batch_size}, log_every 1, "
        f"{cost['threads']} threads) alternate between the two owners on one trainer; their difference is within the "
        f"machine's noise, the direct flush timings are the logging code itself. The spool's fsync (every "
        f"SYNC_EVERY_S = 5 s) is the heartbeat thread's, before each checkpoint the loop's (not timed here).",
        "",
    ]
    text = "\n".join(lines)
    print()
    print(text)
    if not args.no_record:
        with open(RESULTS, "a", encoding="utf-8") as f:
            f.write("\n" + text)
        print(f"appended to {RESULTS}")


if __name__ == "__main__":
    main()
