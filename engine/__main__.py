"""The engine's processes: `python -m difftui.engine train RUN_ID --db PATH` (one run's engine), `... eval RUN_ID
--db PATH [...]` (an evaluation of a run that is not training), `... sweep SWEEP_ID --db PATH` (a sweep's supervisor,
difftui.engine.sweeps.supervisor), `... measure-tiers` (the tier cache), spawned by the TUI and the CLI, and
`... slurm-task TASK_FILE` (a Slurm job's wrapper, engine/launch/slurm/task.py), which a batch script execs.

`train` and `eval` take `--spool RUN_DIR` instead of `--db` (issue 17: spool mode, what a compute node runs): the
process never opens runs.db; it reads RUN_DIR/run.json and config.yaml and writes records to RUN_DIR/spool/, which a
front end ingests (difftui.engine.store.ingest).

No TUI, no typer: argparse only, so the worker starts with the fewest imports (DESIGN.md: the engine never imports
the TUI).
"""

from __future__ import annotations

import os
import sys

from difftui.engine.launch import signals

if sys.argv[1:2] in (["train"], ["sweep"]):
    signals.install()                               # first: a stop signal during the imports below is not lost

import argparse  # noqa: E402

# Before torch loads libgomp: idle OpenMP threads sleep instead of spinning. On a small CPU shared with the TUI
# (or with other runs) spinning threads starve each other; measured on 2 busy cores, 2 spinning threads ran the demo
# step 2-5x slower than 1 thread, while passive waiting matched 1 thread there and still uses both cores when idle.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m difftui.engine", description="difftui engine worker")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train one run of a run database (resumes from its newest checkpoint)")
    train.add_argument("run_id", type=int)
    where = train.add_mutually_exclusive_group(required=True)
    where.add_argument("--db", help="path to runs.db")
    where.add_argument("--spool", metavar="RUN_DIR", help="spool mode: the run's folder; runs.db is never opened")
    # Issue 11 item 7: parameter and MAC figures for the tier cache (difftui.engine.config.tier_figures), in this process.
    measure = sub.add_parser("measure-tiers", help="measure backbone tiers' parameters and MACs into the tier cache")
    measure.add_argument("--keys", help="JSON list of networks to measure ('-': stdin); prints a JSON answer")
    measure.add_argument("--shipped", action="store_true", help="regenerate the shipped engine/config/tier_figures.json")
    measure.add_argument("--presets", action="append", help="extra preset directory (repeatable)")
    measure.add_argument("--force", action="store_true", help="measure again even when cached")
    task = sub.add_parser("slurm-task", help="a Slurm job's wrapper: run its engines with srun, requeue on a crash")
    task.add_argument("task_file", help="the job's task file (runs/<id>/slurm/job.json, sweeps/<id>/slurm/array-K.json)")
    sweep = sub.add_parser("sweep", help="supervise one sweep: start its queued members as slots free up")
    sweep.add_argument("sweep_id", type=int)
    sweep.add_argument("--db", required=True, help="path to runs.db")
    add_eval_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "measure-tiers":
        from difftui.engine.run.measure_tiers import main as measure_tiers
        return measure_tiers(args)
    if args.command == "train":
        from difftui.engine.run.loop import train_run
        return train_run(args.db, args.run_id, spool=args.spool)
    if args.command == "slurm-task":
        from difftui.engine.launch.slurm.task import main as slurm_task
        return slurm_task(args.task_file)
    if args.command == "sweep":
        from difftui.engine.sweeps.supervisor import supervise
        return supervise(args.db, args.sweep_id)
    if args.command == "eval":
        from difftui.engine.eval.evaluator import main as eval_main
        return eval_main(args)
    return 2


def add_eval_parser(sub) -> None:
    """`eval RUN_ID --db PATH [...]`: evaluate a run that is not training, or any of its snapshots (evaluator.py)."""
    ev = sub.add_parser("eval", help="evaluate a run in this process: panel, held-out NLL, FID, few-step curve")
    ev.add_argument("run_id", type=int)
    where = ev.add_mutually_exclusive_group(required=True)
    where.add_argument("--db", help="path to runs.db")
    where.add_argument("--spool", metavar="RUN_DIR", help="spool mode: the run's folder; runs.db is never opened")
    ev.add_argument("--fid", action="store_true", help="FID and precision/recall (k=3) with the fixed sampler")
    ev.add_argument("--samples", type=int, default=None, help="generated images per FID (default 50,000)")
    ev.add_argument("--quick", action="store_true", help="the recipe's quick FID count (and 256 NLL images)")
    ev.add_argument("--repeats", type=int, default=1, help="compute FID K times; report the minimum and spread")
    ev.add_argument("--inception", default=None, help="Inception weights file (else $DIFFTUI_INCEPTION, the cache)")
    ev.add_argument("--snapshot", type=int, default=None, help="evaluate this snapshot step (else the newest checkpoint)")
    ev.add_argument("--pending-snapshots", action="store_true",
                    help="FID of every snapshot not yet evaluated, then mark the best (what training starts)")
    ev.add_argument("--curve", action="store_true", help="the few-step curve: FID and NLL at 5/10/15/20 steps")
    ev.add_argument("--nll-images", type=int, default=None, help="held-out images for NLL (default: the whole split)")
    ev.add_argument("--no-panel", action="store_true", help="skip the sampler panel")
    ev.add_argument("--no-nll", action="store_true", help="skip the held-out NLL")
    ev.add_argument("--batch", type=int, default=None, help="images per batch (default: the recipe's batch size, at least 64)")
    ev.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:K (default: the run's device)")
    ev.add_argument("--seed", type=int, default=0, help="seed of the generated images")
    ev.add_argument("--job", type=int, default=None, help="the jobs row to report to (set by the spawner)")


if __name__ == "__main__":
    sys.exit(main())
