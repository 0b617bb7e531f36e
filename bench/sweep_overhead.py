"""What the sweep scheduler costs its members (issue 8; target: no measurable difference in step time).

The same member is run twice at the same moment, side by side, one process each: once alone (`launch.launch`, as
`difftui run` starts it) and once as the only member of a sweep of one (its supervisor starts it as a slot frees up,
and polls runs.db about once a second for the member's whole life). Both engines get the same thread count and the
same config and seed, and they share the machine's cores equally, so a drift in the machine's speed hits both; the
start order alternates between rounds. Each engine's step time is its own img/s (measured over each logging interval
by the engine itself); the first intervals (start-up) are dropped and the median of the rest is compared. The
supervisor's own CPU time over its whole life is read from its rusage.

    python bench/sweep_overhead.py                          # 3 rounds, digits / unet-demo, batch 32, 400 steps
    python bench/sweep_overhead.py --rounds 5 --steps 1000 --set recipe.batch_size=64 --device cuda

Prints one table and appends it to bench/RESULTS.md (with the date, the machine and the card).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

from difftui.engine.config.catalog import Catalog
from difftui.engine.launch.runs import new_run
from difftui.engine.store import ACTIVE_STATUSES, Store
from difftui.engine.sweeps import RunSpec, Slots, launch_sweep, plan_sweep

RESULTS = Path(__file__).with_name("RESULTS.md")
WARMUP_INTERVALS = 3                                # logging intervals dropped at the start (imports, first steps)


def median_ips(store: Store, run_id: int) -> tuple[float, int]:
    values = [v for _, v in store.series(run_id, "img_per_s")][WARMUP_INTERVALS:]
    return (statistics.median(values), len(values)) if values else (float("nan"), 0)


def one_round(db: Path, spec: RunSpec, slots: Slots, sweep_first: bool) -> dict:
    catalog = Catalog()
    plan = plan_sweep(catalog, "p1-dropout", spec, values={"recipe.dropout": [0.1]}, device=slots.member_device)
    config = plan.members[0].config                 # the very same config for the lone run
    if sweep_first:
        sweep_id, sup = launch_sweep(db, plan, slots)
        alone = new_run(db, config).run_id
    else:
        alone = new_run(db, config).run_id
        sweep_id, sup = launch_sweep(db, plan, slots)
    start = time.monotonic()
    while True:
        with Store(db) as store:
            members = store.sweep_members(sweep_id)
            runs = [store.get_run(alone), *members]
            if all(r["status"] not in ACTIVE_STATUSES for r in runs) and store.get_sweep(sweep_id)["status"] not in (
                    "running", "stopping"):
                break
        time.sleep(0.5)
    _, status, usage = os.wait4(sup.pid, 0)
    wall = time.monotonic() - start
    with Store(db) as store:
        member = store.sweep_members(sweep_id)[0]
        ips_alone, n_alone = median_ips(store, alone)
        ips_sweep, n_sweep = median_ips(store, member["id"])
        statuses = (store.get_run(alone)["status"], member["status"])
    return dict(alone=ips_alone, sweep=ips_sweep, n=min(n_alone, n_sweep), statuses=statuses, wall=wall,
                sup_cpu=usage.ru_utime + usage.ru_stime, first="sweep" if sweep_first else "alone")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", default="1", help="DIFFTUI_CPU_THREADS for both engines (CPU)")
    parser.add_argument("--set", dest="sets", action="append", default=[])
    parser.add_argument("--no-append", action="store_true", help="print only; do not append to bench/RESULTS.md")
    args = parser.parse_args()
    os.environ["DIFFTUI_CPU_THREADS"] = args.threads
    sets = ["recipe.batch_size=32", "recipe.log_every=10", "recipe.grid_every=100000",
            "recipe.snapshot_every=100000", "sampler.grid.steps=10", *args.sets]
    spec = RunSpec(overrides=tuple(sets), max_steps=args.steps, device=args.device)
    slots = Slots.choose(device=args.device, runs_per_device=1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "runs.db"
        for r in range(args.rounds):
            rows.append(one_round(db, spec, slots, sweep_first=r % 2 == 1))
            print(f"round {r + 1}: {rows[-1]}", flush=True)
    ratios = [row["sweep"] / row["alone"] for row in rows]
    machine = f"{os.cpu_count()}-core CPU ({platform.machine()})"
    card = "no GPU"
    if args.device.startswith("cuda"):
        import torch
        card = torch.cuda.get_device_name(0)
    lines = [f"### Sweep scheduler overhead ({date.today().isoformat()}, {machine}, {card})", "",
             f"`python bench/sweep_overhead.py --rounds {args.rounds} --steps {args.steps} --device {args.device}`: "
             f"the same member ({spec.describe()}, DIFFTUI_CPU_THREADS={args.threads}) alone and as the only member "
             f"of a sweep, side by side; median img/s over the logging intervals after the first {WARMUP_INTERVALS}.",
             "", "| round | started first | alone img/s | in a sweep img/s | sweep / alone | intervals | supervisor CPU s"
             " | supervisor wall s |", "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for i, row in enumerate(rows, 1):
        lines.append(f"| {i} | {row['first']} | {row['alone']:.1f} | {row['sweep']:.1f} | "
                     f"{row['sweep'] / row['alone']:.3f} | {row['n']} | {row['sup_cpu']:.2f} | {row['wall']:.0f} |")
    lines += ["", f"Median ratio sweep / alone: **{statistics.median(ratios):.3f}** (range {min(ratios):.3f} - "
                  f"{max(ratios):.3f}); the supervisor used {statistics.mean(r['sup_cpu'] for r in rows):.2f} s of CPU "
                  f"on average over a member's whole life (its poll: about one runs.db read a second).", ""]
    table = "\n".join(lines)
    print(table)
    if not args.no_append:
        with open(RESULTS, "a") as f:
            f.write("\n" + table)


if __name__ == "__main__":
    main()
