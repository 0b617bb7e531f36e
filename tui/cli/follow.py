"""Following a run from the shell: a progress bar with the latest losses until the run ends (`run`, `resume`,
`sweep` and `clone` without --detach). Ctrl-C detaches; the engine runs in its own session and keeps going."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from difftui.tui.cli.common import POLL_S, Context, fmt_loss, get_run, out


def _batch_size(run: dict[str, Any]) -> int:
    import json
    try:
        return int(json.loads(run["config"])["recipe"]["batch_size"])
    except (KeyError, ValueError, TypeError):
        return 0


def run_status(run: dict[str, Any]) -> str:
    """A run's status as the CLI prints it: with its Slurm job's state while it is active on Slurm ("queued, job 12
    PENDING (Priority)", "running, job 12 RUNNING on node03")."""
    from difftui.engine.launch.slurm.jobs import describe_job
    from difftui.engine.store import ACTIVE_STATUSES
    job = describe_job(run) if run["status"] in ACTIVE_STATUSES else None
    return f"{run['status']}, {job}" if job else run["status"]


def follow(c: Context, run_id: int, proc=None) -> int:
    """Show a progress bar and the latest losses until the run ends; returns the CLI exit code.

    Ctrl-C detaches (the engine runs in its own session and keeps going)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from difftui.engine.launch.liveness import is_slurm, reap_dead_runs
    from difftui.engine.numbers import format_duration, format_number
    from difftui.engine.store import ACTIVE_STATUSES
    store = c.store()
    run = get_run(store, run_id)
    on_slurm = is_slurm(run)
    batch = _batch_size(run)
    columns = [TextColumn("run {task.fields[run]} [bold]{task.fields[status]}[/]"), BarColumn(),
               TextColumn("{task.completed}/{task.total} steps"), TextColumn("{task.fields[ips]}"),
               TextColumn("ETA {task.fields[eta]}"), TimeElapsedColumn(), TextColumn("{task.fields[loss]}")]
    try:
        with Progress(*columns, console=out, transient=False, refresh_per_second=4) as progress:
            task = progress.add_task("", total=run["total_steps"] or 1, completed=run["step"], run=run_id,
                                     status=run_status(run), ips="", eta="-", loss="")
            while True:
                if on_slurm:                        # its spool into runs.db, its job's state (one squeue per poll)
                    reap_dead_runs(store)
                run = get_run(store, run_id)
                values = store.latest_values(run_id)
                ips = values.get("img_per_s")
                remaining = (run["total_steps"] or 0) - run["step"]
                eta = format_duration(remaining * batch / ips if ips and batch and remaining > 0 else None)
                progress.update(task, completed=run["step"], total=run["total_steps"] or 1, status=run_status(run),
                                ips=f"{format_number(ips)} img/s" if ips else "", eta=eta, loss=fmt_loss(values))
                if run["status"] not in ACTIVE_STATUSES:
                    break
                if proc is not None and proc.poll() is not None:
                    # The process is gone; give its last write a moment, then let the reaper decide.
                    time.sleep(POLL_S)
                    if get_run(store, run_id)["status"] in ACTIVE_STATUSES:
                        reap_dead_runs(store)
                    continue
                time.sleep(POLL_S)
    except KeyboardInterrupt:
        out.print(f"detached from run {run_id}; it keeps running. Watch: difftui show {run_id}   "
                  f"Stop: difftui stop {run_id}")
        return 0
    finally:
        store.close()
    return report_end(c, run_id)


def report_end(c: Context, run_id: int) -> int:
    with c.store() as store:
        run = get_run(store, run_id)
        grids = store.samples_index(run_id, "grid")
        values = store.latest_values(run_id)
    status = run["status"]
    line = f"run {run_id} {status} at step {run['step']}/{run['total_steps']}"
    if values:
        line += f"  {fmt_loss(values)}"
    out.print(line)
    if grids and grids[-1]["path"]:
        out.print(f"latest grid: {grids[-1]['path']}")
    if status in ("failed", "crashed"):
        print(f"difftui: run {run_id} {status}: {run['error'] or 'see ' + str(Path(run['run_dir']) / 'engine.log')}",
              file=sys.stderr)
        return 1
    return 0


