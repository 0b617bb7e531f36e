"""The engine worker: `python -m difftui.engine train RUN_ID --db PATH` (spawned by the TUI and the CLI), and a
sweep's supervisor: `python -m difftui.engine sweep SWEEP_ID --db PATH` (difftui.engine.sweeps.supervisor).

No TUI, no typer: argparse only, so the worker starts with the fewest imports (DESIGN.md: the engine never imports
the TUI).
"""

from __future__ import annotations

import os
import sys

from difftui.engine import signals

signals.install()                                   # first: a stop signal during the imports below is not lost

import argparse                                     # noqa: E402

# Before torch loads libgomp: idle OpenMP threads sleep instead of spinning. On a small CPU shared with the TUI
# (or with other runs) spinning threads starve each other; measured on 2 busy cores, 2 spinning threads ran the demo
# step 2-5x slower than 1 thread, while passive waiting matched 1 thread there and still uses both cores when idle.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m difftui.engine", description="difftui engine worker")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train one run of a run database (resumes from its newest checkpoint)")
    train.add_argument("run_id", type=int)
    train.add_argument("--db", required=True, help="path to runs.db")
    # Issue 11 item 7: parameter and MAC figures for the tier cache (difftui.engine.tier_cache), in this process.
    measure = sub.add_parser("measure-tiers", help="measure backbone tiers' parameters and MACs into the tier cache")
    measure.add_argument("--keys", help="JSON list of networks to measure ('-': stdin); prints a JSON answer")
    measure.add_argument("--shipped", action="store_true", help="regenerate the shipped engine/tier_figures.json")
    measure.add_argument("--presets", action="append", help="extra preset directory (repeatable)")
    measure.add_argument("--force", action="store_true", help="measure again even when cached")
    sweep = sub.add_parser("sweep", help="supervise one sweep: start its queued members as slots free up")
    sweep.add_argument("sweep_id", type=int)
    sweep.add_argument("--db", required=True, help="path to runs.db")
    args = parser.parse_args(argv)
    if args.command == "measure-tiers":
        from difftui.engine.measure_tiers import main as measure_tiers
        return measure_tiers(args)
    if args.command == "train":
        from difftui.engine.train import train_run
        return train_run(args.db, args.run_id)
    if args.command == "sweep":
        from difftui.engine.sweeps.supervisor import supervise
        return supervise(args.db, args.sweep_id)
    return 2


if __name__ == "__main__":
    sys.exit(main())
