"""The sweep, compare and clone commands of the headless CLI (`register(app)` adds them to difftui's typer app).

    difftui sweep start GRID [run options as for 'difftui run'] [--values 0.1,0.3] [--off-grid] [--concurrency N]
                             [--gpus 0,1] [--detach]
    difftui sweep ls | show ID | stop ID | resume ID | retry ID [--run RUN_ID] | add ID VALUE [--axis KEY]
    difftui compare ID ID...            last and best metrics side by side, and the config keys that differ
    difftui clone ID [--set key=value]  a new run with that run's config (it records its parent)

Every user error is one line `difftui: error: ...` on stderr with exit code 2 (the CLI's rule); a followed sweep with
a failed or crashed member exits 1.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table
from rich.text import Text

from difftui.engine.numbers import format_number, format_setting
from difftui.tui.cli.common import UserError, ctx_obj, fmt_time, out, user_command
from difftui.tui.cli.follow import follow
from difftui.tui.cli.slurm import SLURM_OPTIONS, slurm_options

__all__ = ["register", "sweep_app", "member_rows", "sweep_header", "run_marks", "show_lines"]

sweep_app = typer.Typer(help="Sweep a grid preset (playbook 1.8, 4.5, A.2): start, watch, stop, resume, retry, add.",
                        no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
LOSSES = ("L_simple", "L_vlb", "L_hybrid", "L_edm")
FOLLOW_S = 1.0




def run_marks(run: dict[str, Any]) -> str:
    """What `ls` adds to a run's name: its lineage (fork of 3 @ 400), its sweep and an off-grid mark."""
    from difftui.engine.launch.fork import lineage
    marks = [lineage(run)] if run.get("parent_id") else []
    if run.get("sweep_id"):
        marks.append(f"sweep {run['sweep_id']}")
    if run.get("off_grid"):
        marks.append("off-grid")
    return f" ({', '.join(marks)})" if marks else ""


def show_lines(run: dict[str, Any]) -> list[str]:
    """What `show` adds: the sweep and axis values of a member (off-grid marked), the run a clone or fork came
    from (and the fork's step)."""
    from difftui.engine.sweeps import member_label
    lines = []
    if run.get("sweep_id"):
        values = json.loads(run.get("axis_values") or "{}")
        lines.append(f"  sweep     {run['sweep_id']}: {member_label(values) or '-'}"
                     + ("  (OFF-GRID: a value off the paper's grid)" if run.get("off_grid") else ""))
    if run.get("parent_id"):
        step = run.get("fork_step")
        detail = ("cloned from" if step is None else f"forked from its checkpoint at step {step:,}" if step else
                  "forked fresh: its settings with the change, from step 0")
        lines.append(f"  parent    run {run['parent_id']} ({detail})")
    return lines


#----------------------------------------------------------------------------
# The member table (shared with the TUI's formatting: the same columns, in text).

def member_rows(summaries: list[Any]) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of a sweep's member table: id, axis values, status, the Slurm job (a sweep on Slurm), step,
    last/best of each loss present, NLL, FLOPs ratio; off-grid members are marked, and so is every value of a member
    that ended before its last step (PARTIAL_MARK; partial_notes says how each ended)."""
    from difftui.engine.launch.liveness import is_waiting
    from difftui.engine.launch.slurm.jobs import describe_job
    from difftui.engine.sweeps.compare import PARTIAL_MARK
    axes: list[str] = []
    for s in summaries:
        axes.extend(k for k in s.axis_values if k not in axes)
    losses = [n for n in LOSSES if any(n in s.last for s in summaries)]
    flops = any("flops_ratio" in s.last for s in summaries)
    nll = any(s.nll for s in summaries)
    slurm = any(s.run.get("slurm_job") for s in summaries)
    header = ["run", *[a.split(".")[-1] for a in axes], "status", *(["slurm job"] if slurm else []), "step"]
    for n in losses:
        header += [f"{n} last", "best"]
    if nll:
        header.append("NLL bits/dim")
    if flops:
        header.append("FLOPs ratio")
    rows = []
    for s in summaries:
        r = s.run
        axis_cells = []
        for a in axes:
            axis_cells.append(format_setting(s.setting(a)))
        if r.get("off_grid"):
            axis_cells[-1:] = [f"{axis_cells[-1]} (off-grid)"] if axis_cells else []
        status = r["status"] + (" (waiting)" if is_waiting(r) else "")
        job = [describe_job(r, prefix="") or "-"] if slurm else []
        row = [str(r["id"]), *axis_cells, status, *job, f"{r['step']}/{r['total_steps']}"]
        # A member that ended before its last step: each value it shows is a partial one, marked (issue 16 item 7).
        def mark(text: str, partial: bool = bool(s.partial)) -> str:
            return f"{text}{PARTIAL_MARK}" if partial and text != "-" else text
        for n in losses:
            row += [mark(format_number(s.last.get(n))), mark(format_number(s.best.get(n)))]
        if nll:
            row.append(mark(format_number(s.nll[1])) if s.nll else "-")
        if flops:
            row.append(mark(format_number(s.last.get("flops_ratio"))))
        rows.append(row)
    return header, rows


def partial_notes(summaries: list[Any]) -> list[str]:
    """One line per member that ended before its last step, under the member table (issue 16 item 7)."""
    from difftui.engine.sweeps.compare import PARTIAL_MARK
    def how(s: Any) -> str:
        sweep_id = s.run["sweep_id"]
        return (f"sweep retry {sweep_id} runs it again" if s.run["status"] == "failed" else
                f"sweep resume {sweep_id} continues it")
    return [f"{PARTIAL_MARK} run {s.run['id']} {s.partial}: its values are partial, not results ({how(s)})"
            for s in summaries if s.partial]


def sweep_header(sweep: dict[str, Any], alive: bool) -> list[str]:
    from difftui.engine.sweeps import RunSpec, sweep_grid, sweep_slots
    grid = sweep_grid(sweep)
    axes = "  ".join(f"{k} in {{{', '.join(format_setting(v) for v in vs)}}}"
                     for k, vs in grid["axes"].items())
    off = grid.get("off_grid") or {}
    supervisor = (f"pid {sweep['pid']} on {sweep['host']}" if alive else "not running")
    if sweep.get("slurm"):
        from difftui.engine.sweeps.slurm import sweep_options
        supervisor = f"none: Slurm job arrays ({sweep_options(sweep).describe()})"
    lines = [f"sweep {sweep['id']}  {sweep['name']}  {sweep['status']}",
             f"  grid      {grid['preset']} (playbook {grid['playbook']}): {axes}"
             + (f"  off-grid: {json.dumps(off)}" if off else ""),
             f"  base      {RunSpec.from_dict(json.loads(sweep['spec'] or '{}')).describe()}",
             f"  slots     {sweep_slots(sweep).describe()}",
             f"  supervisor {supervisor}   log {Path(sweep['sweep_dir']) / ('slurm' if sweep.get('slurm') else 'supervisor.log')}"]
    if sweep.get("error") and sweep["status"] in ("crashed", "stopped"):
        lines.append(f"  note      {sweep['error']}")
    return lines


def _member_table(summaries: list[Any]) -> Table:
    header, rows = member_rows(summaries)
    table = Table(box=None, pad_edge=False)
    for col in header:
        table.add_column(col, justify="left" if col in ("status",) else "right", no_wrap=True)
    styles = {"failed": "red", "crashed": "red", "running": "green", "completed": "blue", "stopped": "cyan"}
    for s, row in zip(summaries, rows, strict=False):
        table.add_row(*row, style=styles.get(s.run["status"], ""))
    return table


def _read_sweep(db: Path, sweep_id: int) -> tuple[dict[str, Any], bool, list[Any]]:
    from difftui.engine.launch import liveness
    from difftui.engine.store import Store
    from difftui.engine.sweeps import SweepError
    from difftui.engine.sweeps.compare import summarise_runs
    with Store(db, create=False) as store:
        liveness.reap_dead_runs(store)
        liveness.reap_dead_sweeps(store)
        sweep = store.get_sweep(sweep_id)
        if sweep is None:
            raise SweepError(f"no sweep {sweep_id} in {db}")
        summaries = summarise_runs(store, store.sweep_members(sweep_id))
        alive = liveness.sweep_alive(sweep)
    return sweep, alive, summaries


def _render(sweep: dict[str, Any], alive: bool, summaries: list[Any]) -> Any:
    from rich.console import Group
    notes = [Text(line, style="yellow") for line in partial_notes(summaries)]
    return Group(*[Text(line) for line in sweep_header(sweep, alive)], Text(""), _member_table(summaries), *notes)


def follow_sweep(c: Any, sweep_id: int) -> int:
    """Redraw the member table until the sweep ends; Ctrl-C detaches (the supervisor and members keep going)."""
    from rich.live import Live
    try:
        with Live(console=out, refresh_per_second=2, transient=False) as live:
            while True:
                sweep, alive, summaries = _read_sweep(c.db, sweep_id)
                live.update(_render(sweep, alive, summaries))
                if sweep["status"] not in ("running", "stopping"):
                    break
                time.sleep(FOLLOW_S)
    except KeyboardInterrupt:
        out.print(f"detached from sweep {sweep_id}; it keeps running. Watch: difftui sweep show {sweep_id}   "
                       f"Stop: difftui sweep stop {sweep_id}")
        return 0
    bad = [s.run["id"] for s in summaries if s.run["status"] in ("failed", "crashed")]
    out.print(f"sweep {sweep_id} {sweep['status']}: " + ", ".join(
        f"{n} {st}" for st, n in _counts(summaries).items()))
    return 1 if bad else 0


def _counts(summaries: list[Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in summaries:
        counts[s.run["status"]] = counts.get(s.run["status"], 0) + 1
    return counts


#----------------------------------------------------------------------------
# sweep commands.

@sweep_app.command("start")
@user_command
def start(
    ctx: typer.Context,
    grid: str = typer.Argument(..., help="grid preset (difftui presets sweeps), e.g. p1-dropout"),
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d",
                                          help="dataset profile (default: digits, or the recipe's anchor)"),
    backbone: Optional[str] = typer.Option(None, "--backbone", "-b",
                                           help="backbone tier (default: unet-demo, or the recipe's anchor)"),
    sampler: Optional[str] = typer.Option(None, "--sampler", "-s",
                                          help="sampler panel (default: the recipe's: edm-heun for EDM, "
                                               "covariance-ocm for OCM, else ddim)"),
    recipe: Optional[str] = typer.Option(None, "--recipe", "-r", help="training recipe (default: p1-default)"),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="override a config key: section.key=value"),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", min=1, help="train each member this many steps"),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:K"),
    name: str = typer.Option("", "--name", help="sweep name (default: GRID-ID)"),
    off_tier: bool = typer.Option(False, "--off-tier", help="allow a backbone that is off its paper's tier ladder"),
    values: Optional[list[str]] = typer.Option(None, "--values",
                                               help="values to run: 0.1,0.3 (one axis) or KEY=0.1,0.3 (repeatable); "
                                                    "default: the whole grid"),
    off_grid: bool = typer.Option(False, "--off-grid", help="allow values off the paper's grid (marked off-grid)"),
    concurrency: int = typer.Option(1, "--concurrency", min=1, help="runs at once on each device (slots = devices x N)"),
    gpus: Optional[str] = typer.Option(None, "--gpus", help="GPU indices, e.g. 0,1 (default: every GPU, else the CPU)"),
    detach: bool = typer.Option(False, "--detach", help="start the sweep and return at once"),
    slurm: Optional[str] = SLURM_OPTIONS["slurm"], partition: Optional[str] = SLURM_OPTIONS["partition"],
    time_limit: Optional[str] = SLURM_OPTIONS["time"], nodes: Optional[str] = SLURM_OPTIONS["nodes"],
    gpus_per_node: Optional[str] = SLURM_OPTIONS["gpus_per_node"],
    cpus_per_task: Optional[str] = SLURM_OPTIONS["cpus_per_task"], mem: Optional[str] = SLURM_OPTIONS["mem"],
    account: Optional[str] = SLURM_OPTIONS["account"], qos: Optional[str] = SLURM_OPTIONS["qos"],
    constraint: Optional[str] = SLURM_OPTIONS["constraint"], sbatch: Optional[list[str]] = SLURM_OPTIONS["sbatch"],
    max_retries: Optional[str] = SLURM_OPTIONS["max_retries"],
    signal_before: Optional[str] = SLURM_OPTIONS["signal_before"],
    save_profile: Optional[str] = SLURM_OPTIONS["save_profile"],
) -> None:
    """Start a sweep: one run per grid point, run by a detached supervisor as slots free up; with --slurm, one Slurm
    job array with --concurrency members at once (Slurm's throttle, --array=0-N%K)."""
    from difftui.engine.launch.plan import parse_gpus
    from difftui.engine.sweeps import RunSpec, Slots, launch_sweep, parse_values_option, plan_sweep
    c = ctx_obj(ctx)
    catalog = c.catalog()
    grid_preset = catalog.get("sweeps", grid)
    chosen = parse_values_option(grid_preset, values or [])
    options = slurm_options(slurm, partition=partition, time=time_limit, nodes=nodes, gpus_per_node=gpus_per_node,
                            cpus_per_task=cpus_per_task, mem=mem, account=account, qos=qos, constraint=constraint,
                            sbatch=sbatch, max_retries=max_retries, signal_before=signal_before,
                            save_profile=save_profile)
    if options is not None:
        if gpus:
            raise UserError("--gpus is for this machine; with --slurm use --gpus-per-node")
        device = options.device if device == "auto" else device
    spec = RunSpec(dataset=dataset, backbone=backbone, sampler=sampler, recipe=recipe, overrides=tuple(set_ or ()),
                   max_steps=max_steps, device=device, off_tier=off_tier)
    try:
        chosen_gpus = parse_gpus(gpus)
    except ValueError as e:
        raise UserError(str(e)) from None
    if options is not None:
        slots = Slots(("slurm",), concurrency)
        plan = plan_sweep(catalog, grid_preset, spec, values=chosen, off_grid=off_grid, device=device)
        from difftui.engine.config.batch import batch_split_error
        problem = batch_split_error(plan.members[0].config.recipe.batch_size, options.processes) if plan.members \
            else None
        if problem is not None:
            raise UserError(problem)
        sweep_id, job = launch_sweep(c.db, plan, slots, name=name, slurm=options)
        out.print(f"sweep {sweep_id} submitted to Slurm as job array {job}: {grid} (playbook "
                  f"{grid_preset.playbook}), {len(plan.members)} runs, {plan.total_steps:,} steps in all, "
                  f"{slots.describe()}; {options.describe()}", markup=False)
    else:
        slots = Slots.choose(device=device, gpus=chosen_gpus, runs_per_device=concurrency)
        plan = plan_sweep(catalog, grid_preset, spec, values=chosen, off_grid=off_grid, device=slots.member_device)
        sweep_id, proc = launch_sweep(c.db, plan, slots, name=name)       # the launch checks first (SweepError)
        out.print(f"sweep {sweep_id} started (supervisor pid {proc.pid}): {grid} (playbook {grid_preset.playbook}), "
                  f"{len(plan.members)} runs, {plan.total_steps:,} steps in all, {slots.describe()}")
    if detach:
        out.print(f"watch: difftui sweep show {sweep_id}   stop: difftui sweep stop {sweep_id}")
        return
    raise typer.Exit(follow_sweep(c, sweep_id))


@sweep_app.command("ls")
@user_command
def list_sweeps(ctx: typer.Context) -> None:
    """List sweeps with their members' statuses (a sweep whose supervisor died is marked crashed first)."""
    from difftui.engine.launch import liveness
    from difftui.engine.store import Store
    from difftui.engine.sweeps import sweep_slots
    c = ctx_obj(ctx)
    if not c.db.exists():
        out.print(f"no sweeps yet ({c.db} does not exist)")
        return
    with Store(c.db, create=False) as store:
        liveness.reap_dead_runs(store)
        liveness.reap_dead_sweeps(store)
        sweeps = store.list_sweeps()
    if not sweeps:
        out.print("no sweeps")
        return
    table = Table(box=None, pad_edge=False)
    for col in ("id", "name", "status", "grid", "members", "slots", "created"):
        table.add_column(col, justify="right" if col == "id" else "left", no_wrap=col in ("id", "status"))
    for s in sweeps:
        counts = ", ".join(f"{n} {st}" for st, n in sorted(s["counts"].items()))
        table.add_row(str(s["id"]), s["name"], s["status"], s["preset"] or "", counts or "none",
                      sweep_slots(s).short(), fmt_time(s["created"]))
    out.print(table)


@sweep_app.command("show")
@user_command
def show_sweep(ctx: typer.Context, sweep_id: int = typer.Argument(..., help="sweep id")) -> None:
    """A sweep's grid, slots and supervisor, and its member table (axis values, status, step, last/best losses)."""
    c = ctx_obj(ctx)
    sweep, alive, summaries = _read_sweep(c.db, sweep_id)
    out.print(_render(sweep, alive, summaries))


@sweep_app.command("stop")
@user_command
def stop_sweep(ctx: typer.Context, sweep_id: int = typer.Argument(..., help="sweep id")) -> None:
    """Hold the queue; every running member checkpoints and stops."""
    from difftui.engine.sweeps import stop_sweep as stop
    out.print(stop(ctx_obj(ctx).db, sweep_id))


@sweep_app.command("resume")
@user_command
def resume_sweep(ctx: typer.Context, sweep_id: int = typer.Argument(..., help="sweep id")) -> None:
    """Release the queue, queue stopped and crashed members again, restart the supervisor if it died."""
    from difftui.engine.sweeps import resume_sweep as resume
    out.print(resume(ctx_obj(ctx).db, sweep_id))


@sweep_app.command("retry")
@user_command
def retry_sweep(ctx: typer.Context, sweep_id: int = typer.Argument(..., help="sweep id"),
                run: Optional[list[int]] = typer.Option(None, "--run", help="only this member (repeatable; a stopped "
                                                                             "member too)")) -> None:
    """Run failed and crashed members again (from their newest checkpoint, or afresh without one)."""
    from difftui.engine.sweeps import retry_members
    out.print(retry_members(ctx_obj(ctx).db, sweep_id, run or None))


@sweep_app.command("add")
@user_command
def add_to_sweep(ctx: typer.Context, sweep_id: int = typer.Argument(..., help="sweep id"),
                 value: str = typer.Argument(..., help="the new value, e.g. 0.4"),
                 axis: Optional[str] = typer.Option(None, "--axis", help="which axis (when the grid has several)"),
                 off_grid: bool = typer.Option(False, "--off-grid", help="allow a value off the paper's grid")) -> None:
    """Add a value to a sweep (one new member per point of the other axes); a running sweep picks it up."""
    from difftui.engine.sweeps import add_value
    c = ctx_obj(ctx)
    out.print(add_value(c.db, c.catalog(), sweep_id, value, axis=axis, off_grid=off_grid))


#----------------------------------------------------------------------------
# compare and clone.

def compare(ctx: typer.Context, run_ids: list[int] = typer.Argument(..., help="two or more run ids")) -> None:
    """Runs side by side: last and best losses, NLL, FLOPs ratio, and only the config keys that differ."""
    from difftui.engine.sweeps.compare import compare_runs
    c = ctx_obj(ctx)
    if len(run_ids) < 2:
        raise UserError("compare needs at least two run ids")
    summaries, diff = compare_runs(c.db, run_ids)
    header, rows = member_rows(summaries)
    table = Table(box=None, pad_edge=False, title="metrics", title_justify="left")
    table.add_column("", no_wrap=True)
    for s in summaries:
        table.add_column(f"run {s.run['id']}", justify="right", no_wrap=True)
    table.add_row("name", *[s.run["name"] for s in summaries])
    for i, col in enumerate(header[1:], start=1):
        label = col if col != "best" else f"{header[i - 1].replace(' last', '')} best"
        table.add_row(label, *[row[i] for row in rows])
    out.print(table)
    for line in partial_notes(summaries):          # a run that ended early: its values are not results (16.7)
        out.print(line, style="yellow", markup=False, soft_wrap=True)
    out.print()
    if not diff:
        out.print("configs: identical")
        return
    keys = Table(box=None, pad_edge=False, title=f"config difference ({len(diff)} keys)", title_justify="left")
    keys.add_column("key", no_wrap=True)
    for s in summaries:
        keys.add_column(f"run {s.run['id']}", justify="right")
    for key, values in diff:
        keys.add_row(key, *[format_setting(v) for v in values])
    out.print(keys)


def clone(
    ctx: typer.Context,
    run_id: int = typer.Argument(..., help="the run to clone"),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="change a config key: section.key=value"),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", min=1, help="train this many steps"),
    device: Optional[str] = typer.Option(None, "--device", help="auto | cpu | cuda | cuda:K (default: the run's)"),
    name: str = typer.Option("", "--name", help="run name"),
    detach: bool = typer.Option(False, "--detach", help="start the clone and return at once"),
) -> None:
    """Start a new run with another run's config (plus --set changes); it records the run it was cloned from."""
    from difftui.engine.sweeps import clone_run
    c = ctx_obj(ctx)
    new_id, proc = clone_run(c.db, c.catalog(), run_id, sets=set_ or [], max_steps=max_steps, device=device,
                             name=name)
    out.print(f"run {new_id} started (pid {proc.pid}), cloned from run {run_id}"
                   + (f" with {' '.join(set_)}" if set_ else ""))
    if detach:
        return
    raise typer.Exit(follow(c, new_id, proc))


def register(app: typer.Typer) -> None:
    """Add `sweep ...`, `compare` and `clone` to difftui's CLI."""
    app.add_typer(sweep_app, name="sweep")
    app.command("compare")(user_command(compare))
    app.command("clone")(user_command(clone))
