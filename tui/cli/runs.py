"""The run commands of the headless CLI: `run`, `ls`, `show`, `stop`, `resume`, `presets`, `delete`.

Numbers may be written 1e5 / 2e-4 / 1_000 wherever one is expected; `ls` and `show` print JSON with `--json`, and
never wrap a word when piped; a runs.db in a folder this user cannot write is listed and shown read-only.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table
from rich.text import Text

from difftui.engine.numbers import format_number, format_setting
from difftui.tui.cli import sweep as sweep_lines
from difftui.tui.cli.common import (
    KIND_ALIASES,
    POLL_S,
    Context,
    UserError,
    console,
    ctx_obj,
    fmt_time,
    get_run,
    launch_plan,
    out,
    print_json,
    print_table,
    steps_option,
    user_command,
)
from difftui.tui.cli.eval import show_evaluations
from difftui.tui.cli.follow import follow, run_status
from difftui.tui.cli.slurm import SLURM_OPTIONS, slurm_options


@user_command
def run(
    ctx: typer.Context,
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", metavar="NAME",
                                          help="dataset profile (default: digits, or the recipe's anchor)"),
    backbone: Optional[str] = typer.Option(None, "--backbone", "-b", metavar="NAME",
                                           help="backbone tier (default: unet-demo, or the recipe's anchor)"),
    sampler: Optional[str] = typer.Option(None, "--sampler", "-s", metavar="NAME",
                                          help="sampler panel (default: the recipe's: edm-heun for EDM, "
                                               "covariance-ocm for OCM, else ddim)"),
    recipe: Optional[str] = typer.Option(None, "--recipe", "-r", metavar="NAME",
                                         help="training recipe (default: p1-default)"),
    set_: Optional[list[str]] = typer.Option(None, "--set", metavar="KEY=VALUE",
                                             help="override a config key: section.key=value (repeatable)"),
    max_steps: Optional[str] = typer.Option(None, "--max-steps", metavar="N",
                                            help="train this many steps (default: the recipe's on a GPU, "
                                                 "a 1,000-step demo on the CPU)"),
    device: str = typer.Option("auto", "--device", metavar="DEVICE", help="auto | cpu | cuda | cuda:K"),
    name: str = typer.Option("", "--name", metavar="NAME", help="run name (default: dataset-backbone-id)"),
    off_tier: bool = typer.Option(False, "--off-tier", help="allow a backbone that is off its paper's tier ladder"),
    detach: bool = typer.Option(False, "--detach", help="start the run and return at once"),
    gpus: Optional[str] = typer.Option(None, "--gpus", metavar="0,1",
                                       help="GPUs to train on (CUDA_VISIBLE_DEVICES); several run one process each "
                                            "through torchrun (DDP)"),
    nproc_per_node: Optional[int] = typer.Option(None, "--nproc-per-node", metavar="K", min=1,
                                                 help="processes on this machine (DDP; gloo on the CPU)"),
    nnodes: int = typer.Option(1, "--nnodes", metavar="N", min=1, help="machines (torchrun; see the README)"),
    rdzv_endpoint: Optional[str] = typer.Option(None, "--rdzv-endpoint", metavar="HOST:PORT",
                                                help="torchrun rendezvous on the machine of rank 0 (with --nnodes)"),
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
    """Start a training run (in its own process; closing the terminal does not stop it), or submit it to Slurm
    (--slurm: sbatch; it is watched from here)."""
    from difftui.engine.launch.plan import LaunchPlan
    from difftui.engine.launch.runs import new_run
    c = ctx_obj(ctx)
    options = slurm_options(slurm, partition=partition, time=time_limit, nodes=nodes, gpus_per_node=gpus_per_node,
                            cpus_per_task=cpus_per_task, mem=mem, account=account, qos=qos, constraint=constraint,
                            sbatch=sbatch, max_retries=max_retries, signal_before=signal_before,
                            save_profile=save_profile, tasks_per_node=nproc_per_node)
    if options is not None:
        for given, option, instead in ((gpus, "--gpus", "--gpus-per-node"), (nnodes != 1, "--nnodes", "--nodes"),
                                       (rdzv_endpoint, "--rdzv-endpoint", "nothing: srun's first node is rank 0")):
            if given:
                raise UserError(f"{option} is for this machine; with --slurm use {instead}")
        plan = LaunchPlan(slurm=options.to_dict())
        if device == "auto":
            device = options.device                 # the nodes' device: CUDA when the job asks for GPUs
    else:
        plan = launch_plan(gpus, nproc_per_node, nnodes, rdzv_endpoint)
    if plan.gpus is not None and device == "auto":
        device = "cuda"                             # GPUs were named: never fall back to the CPU silently
    config, defaulted = _resolve_launch(c, processes=plan.processes, dataset=dataset,
                                        backbone=backbone, sampler=sampler, recipe=recipe, overrides=set_ or [],
                                        max_steps=steps_option(max_steps), device=device, off_tier=off_tier,
                                        name=name, slurm=options)
    started = new_run(c.db, config, plan=plan)
    run_id, proc = started.run_id, started.proc
    with c.store() as store:                        # the run's own folder: runs/<id>.1 when runs/<id> was taken
        log = Path(get_run(store, run_id)["run_dir"]) / "engine.log"
    steps = f"{config.recipe.total_steps} steps" + (" (the CPU default; --max-steps N for more)" if defaulted else "")
    what = f"submitted to Slurm as job {started.slurm_job}" if started.slurm_job else f"started (pid {proc.pid})"
    out.print(f"run {run_id} {what}: {config.dataset.name} / {config.backbone.name} / "
              f"{config.sampler.name} / {config.recipe.name}, {steps}, device {config.device}, {plan.describe()}; "
              f"log {log}", markup=False)
    if plan.nnodes > 1:
        out.print(f"on each of the other {plan.nnodes - 1} machine(s), with the same data set paths, run:\n  "
                  f"python -m torch.distributed.run --nnodes {plan.nnodes} --nproc-per-node {plan.nproc_per_node} "
                  f"--rdzv-backend c10d --rdzv-endpoint {plan.rdzv_endpoint} --rdzv-id difftui-run-{run_id} "
                  f"-m difftui.engine train {run_id} --db {Path(c.db).resolve()}", markup=False)
    if detach:
        out.print(f"watch: difftui show {run_id}   stop: difftui stop {run_id}")
        return
    raise typer.Exit(follow(c, run_id, proc))


def _check_data_in_process(profile, batch_size: int) -> str | None:
    from difftui.engine.data import DataError, check_available
    try:
        check_available(profile, batch_size)
    except DataError as e:
        return str(e)
    return None


def _resolve_launch(c: Context, processes: int = 1, slurm: Any = None, **choices: Any):
    """Resolve a new run and run the launch checks (issue 11 item 6; with `slurm` options, Slurm's: issue 17 item
    7): a refusal raises before any run row exists; warnings go to stderr. `processes` share the recipe's (global)
    batch. Returns (config, whether the max steps are the device default)."""
    from difftui.engine.config.batch import batch_split_error
    from difftui.engine.launch.checks import launch_checks
    from difftui.engine.launch.devices import probe_devices
    from difftui.engine.launch.request import resolve_new_run
    c.catalog().resolve(**choices)                  # a config error is refused at once, before torch loads
    import difftui.engine.data  # noqa: F401  (torch, once: the data check and the device probe)
    probe = probe_devices()
    config, defaulted = resolve_new_run(c.catalog(), probe=probe, **choices)
    if slurm is None:
        report = launch_checks(config, probe=probe, check_data=_check_data_in_process)
    else:                                           # the nodes' devices are Slurm's to check, the data is here
        from difftui.engine.launch.slurm.checks import check_submission
        report = check_submission(c.db, config, slurm, check_data=_check_data_in_process)
    warnings = list(report.warnings)
    if not report.ok:
        raise UserError(report.errors[0])
    if (problem := batch_split_error(config.recipe.batch_size, processes)) is not None:
        raise UserError(problem)
    for warning in warnings:
        print(f"difftui: warning: {warning}", file=sys.stderr, flush=True)
    return config, defaulted


RUN_FIELDS = ("id", "name", "status", "dataset", "backbone", "sampler", "recipe", "off_tier", "step", "total_steps",
              "kimg", "device", "pid", "host", "created", "started", "ended", "error", "run_dir", "slurm_job",
              "slurm_state", "slurm_reason", "slurm_nodes", "parent_id", "fork_step")


@user_command
def list_runs(ctx: typer.Context,
              status: Optional[str] = typer.Option(None, "--status", metavar="STATUS",
                                                   help="only runs with this status"),
              as_json: bool = typer.Option(False, "--json", help="print the runs as a JSON list")) -> None:
    """List runs (runs whose engine died are marked crashed first)."""
    c = ctx_obj(ctx)
    if not c.db.exists():
        if as_json:
            print_json([])
            return
        out.print(f"no runs yet ({c.db} does not exist)", markup=False)
        return
    from difftui.engine.launch import liveness
    with c.reading_store() as store:
        liveness.reap_dead_runs(store)
        runs = store.list_runs(status=status)
    if as_json:
        print_json([{**{k: r[k] for k in RUN_FIELDS}, "off_tier": bool(r["off_tier"]), "last_loss": r["last_loss"]}
                     for r in runs])
        return
    table_out = console()
    if not runs:
        table_out.print("no runs")
        return
    table = Table(box=None, pad_edge=False)
    for col in ("id", "name", "status", "dataset", "backbone", "sampler", "step", "last loss", "device"):
        table.add_column(col, justify="right" if col in ("id", "step", "last loss") else "left",
                         overflow="fold", no_wrap=col in ("id", "status", "step"))
    for r in runs:
        backbone = (r["backbone"] or "") + (" (off-tier)" if r["off_tier"] else "")    # playbook 1.7
        cells = (str(r["id"]), r["name"] + sweep_lines.run_marks(r), run_status(r), r["dataset"] or "", backbone,
                 r["sampler"] or "", f"{r['step']}/{r['total_steps']}", format_number(r["last_loss"]),
                 r["device"] or "")
        table.add_row(*(Text(str(cell)) for cell in cells))
    print_table(table_out, table)


@user_command
def show(ctx: typer.Context, run_id: int = typer.Argument(..., metavar="ID", help="run id"),
         events: str = typer.Option("10", "--events", metavar="N", help="how many recent events to show"),
         as_json: bool = typer.Option(False, "--json", help="print the run, its config, last values, grids and "
                                                             "events as JSON")) -> None:
    """A run's config, status, last metrics, grids and recent events."""
    import json

    from difftui.engine.config.schema import parse_integer
    from difftui.engine.launch.plan import LaunchPlan
    from difftui.engine.launch.slurm.jobs import describe_job
    try:
        events_n = parse_integer(events)
    except ValueError:
        raise UserError(f"--events: expected a whole number, got {events!r}") from None
    from difftui.engine.launch import liveness
    from difftui.engine.store.ingest import ingest_runs
    c = ctx_obj(ctx)
    with c.reading_store() as store:
        liveness.reap(store)
        ingest_runs(store, [get_run(store, run_id)])      # a spool run's late rows (its evaluators) too
        r = get_run(store, run_id)
        values = store.latest_values(run_id)
        grids = store.samples_index(run_id, "grid")
        evs = store.events_since(run_id)[-events_n:] if events_n > 0 else []
    cfg = json.loads(r["config"])
    if as_json:
        print_json({**{k: r[k] for k in RUN_FIELDS}, "off_tier": bool(r["off_tier"]), "config": cfg,
                     "last": values, "grids": [{k: g[k] for k in ("step", "sampler", "nfe", "path", "time")}
                                               for g in grids],
                     "events": [{k: e[k] for k in ("time", "level", "message")} for e in evs]})
        return
    out = console()
    rec, ds, bb, sp = cfg["recipe"], cfg["dataset"], cfg["backbone"], cfg["sampler"]
    out.print(Text.assemble(Text(f"run {r['id']}", style="bold"), f"  {r['name']}  ",
                            Text(run_status(r), style="bold")))
    lines = [f"  dataset   {ds['name']} ({ds['resolution']}x{ds['resolution']}x{ds['channels']})",
             f"  backbone  {bb['name']} ({bb['family']}{', off-tier' if bb.get('off_tier') else ''})"]
    grid = sp["grid"]
    lines += [f"  sampler   {sp['name']} (grid: {grid['kind']} N={grid['steps']} eta={grid['eta']})",
              f"  recipe    {rec['name']}: {rec['loss']} loss, {rec['schedule']} schedule, T={rec['diffusion_steps']},"
              f" batch {rec['batch_size']}, lr {format_setting(rec['lr'])}, EMA {rec['ema_decay']}",
              f"  device    {r['device'] or cfg.get('device', '-')}   pid {r['pid'] or '-'} on {r['host'] or '-'}"
              + (f", started {fmt_time(r['pid_start'])}" if r.get("pid_start") else ""),
              f"  progress  step {r['step']}/{r['total_steps']}  kimg {r['kimg']:.1f}",
              f"  times     created {fmt_time(r['created'])}  started {fmt_time(r['started'])}"
              f"  ended {fmt_time(r['ended'])}"]
    if r.get("slurm_job"):
        plan = LaunchPlan.from_json(r.get("launch"))
        lines.append(f"  slurm     {describe_job(r)}"
                     + (f"; {plan.slurm_options().describe()}" if plan.slurm is not None else ""))
    if r["error"]:
        lines.append(f"  error     {r['error']}")
    lines += sweep_lines.show_lines(r)
    if values:
        lines.append("  last      " + "  ".join(f"{k} {format_number(v)}" for k, v in sorted(values.items())))
    lines.append(f"  run dir   {r['run_dir']}")
    if grids:
        lines.append(f"  grids     {len(grids)}; latest step {grids[-1]['step']}: {grids[-1]['path']}")
    for line in lines:
        out.print(line, markup=False)
    show_evaluations(out, c, r)
    if evs:
        out.print("  events", markup=False)
        for e in evs:
            out.print(f"    {fmt_time(e['time'])}  {e['level']:<7} {e['message']}", markup=False)


@user_command
def stop(ctx: typer.Context, run_id: int = typer.Argument(..., metavar="ID", help="run id"),
         wait: bool = typer.Option(False, "--wait", help="wait until the engine has checkpointed and exited"),
         force: bool = typer.Option(False, "--force", help="SIGTERM to the engine's process group (it checkpoints "
                                                          "and stops), SIGKILL if it still runs after --grace"),
         grace: float = typer.Option(30.0, "--grace", metavar="SECONDS", help="with --force: how long to wait "
                                                                               "before SIGKILL"),
         ) -> None:
    """Ask a run to checkpoint and stop. A run on Slurm: waits for it (its pending job is cancelled at once; a
    running one gets --grace seconds to checkpoint, then scancel); --force cancels its job at once."""
    from difftui.engine.launch import liveness
    from difftui.engine.launch.runs import force_stop, request_stop
    from difftui.engine.store import ACTIVE_STATUSES
    c = ctx_obj(ctx)
    if force:
        out.print(force_stop(c.db, run_id, grace_s=grace).message)
        return
    asked = request_stop(c.db, run_id)
    out.print(asked.message)
    if wait or asked.slurm_job:
        try:
            with c.store() as store:
                while get_run(store, run_id)["status"] in ACTIVE_STATUSES:
                    time.sleep(POLL_S)
                    liveness.reap_dead_runs(store)  # on Slurm: ingests its spool, scancel after the grace period
                r = get_run(store, run_id)
        except KeyboardInterrupt:
            out.print(f"not waiting for run {run_id}; its stop stands (difftui show {run_id})")
            return
        out.print(f"run {run_id} {r['status']} at step {r['step']}")


@user_command
def resume(ctx: typer.Context, run_id: int = typer.Argument(..., metavar="ID", help="run id"),
           detach: bool = typer.Option(False, "--detach", help="start the engine and return at once"),
           max_steps: Optional[str] = typer.Option(None, "--max-steps", metavar="N",
                                                   help="new total steps (e.g. to train a completed run further)"),
           gpus: Optional[str] = typer.Option(None, "--gpus", metavar="0,1",
                                              help="resume on these GPUs (default: as the run was launched)"),
           nproc_per_node: Optional[int] = typer.Option(None, "--nproc-per-node", metavar="K", min=1,
                                                        help="resume with this many processes"),
           ) -> None:
    """Continue a stopped, crashed or failed run from its newest checkpoint."""
    from difftui.engine.launch import runs as launch
    c = ctx_obj(ctx)
    total = steps_option(max_steps)
    plan = launch_plan(gpus, nproc_per_node) if gpus is not None or nproc_per_node is not None else None
    since = time.time()                             # the follower says this engine's warnings, not older ones
    resumed = launch.resume(c.db, run_id, total_steps=total, plan=plan)
    proc = resumed.proc
    out.print(resumed.message)
    if detach:
        return
    raise typer.Exit(follow(c, run_id, proc, since=since))


@user_command
def presets(ctx: typer.Context,
            kind: Optional[str] = typer.Argument(None, metavar="KIND",
                                                 help="datasets | backbones | samplers | recipes | sweeps")) -> None:
    """List the presets (with measured parameters and GMACs for backbones)."""
    from difftui.engine.config.catalog import KINDS
    c = ctx_obj(ctx)
    kinds = list(KINDS)
    if kind is not None:
        k = KIND_ALIASES.get(kind, kind)
        if k not in KINDS:
            raise UserError(f"unknown preset kind '{kind}' (kinds: {', '.join(KINDS)})")
        kinds = [k]
    catalog = c.catalog()
    out = console()                                    # piped: one line per preset, never folded
    for k in kinds:
        files = catalog.all(k)
        table = Table(title=k, title_justify="left", box=None, pad_edge=False)
        if k == "backbones":
            _backbone_table(table, files)
        else:
            table.add_column("name", no_wrap=True)
            table.add_column("description")
            for f in files:
                table.add_row(f.name, f.preset.description)
        print_table(out, table)
        out.print()


def _backbone_table(table: Table, files) -> None:
    from difftui.engine.config.tier_figures import describe_tiers
    table.title = ("backbones: params (M) and GMACs per forward at batch 1, measured beside the paper's; "
                   "lr from the tier rule 1e-4/sqrt(C/128) (playbook A.6) or the recipe's")
    short = {"paper anchor": "anchor", "not a paper anchor": "no anchor", "off-tier": "OFF-TIER"}
    for col in ("name", "res", "tier", "params", "paper", "GMACs", "paper", "lr"):
        table.add_column(col, no_wrap=True, justify="left" if col in ("name", "tier", "lr") else "right")
    # Issue 11 item 7: the figures come from the tier cache (shipped, then ~/.cache/difftui); a tier not cached yet
    # is measured once, in a subprocess.
    for d in describe_tiers([f.preset for f in files]):
        lr = format_number(d["lr"], 3) if d["lr"] is not None else "recipe"
        table.add_row(d["name"], str(d["resolution"]), short.get(d["status"], d["status"]), f"{d['params_m']:.2f}",
                      f"{d['anchor_params_m']:g}" if d["anchor_params_m"] else "-", format_number(d["gmacs"], 3),
                      f"{d['anchor_gmacs']:g}" if d["anchor_gmacs"] else "-", lr)


@user_command
def delete(ctx: typer.Context, run_id: int = typer.Argument(..., metavar="ID", help="run id"),
           yes: bool = typer.Option(False, "--yes", "-y", help="delete without asking (for scripts)")) -> None:
    """Delete a run: its row, metrics, grids, evaluations and events, and its runs/<id>/ folder. Refused while its
    engine is alive."""
    from difftui.engine.launch.runs import check_delete, delete_run
    c = ctx_obj(ctx)
    run = check_delete(c.db, run_id)                # the engine's rule, before asking (LaunchError: one line)
    if not yes:
        if not sys.stdin.isatty():
            raise UserError(f"delete run {run_id}: not asking without a terminal; pass --yes to delete it")
        question = (f"delete run {run_id} ({run['name']}, {run['status']}, step {run['step']}) "
                    f"and {run['run_dir']}?")
        if not typer.confirm(question, default=False):
            out.print(f"run {run_id} kept")
            return
    out.print(delete_run(c.db, run_id).message)




def register(app: typer.Typer) -> None:
    """Add the run commands to difftui's CLI, in the order `difftui --help` lists them."""
    app.command("run")(run)
    app.command("ls")(list_runs)
    app.command("show")(show)
    app.command("stop")(stop)
    app.command("resume")(resume)
    app.command("presets")(presets)
    app.command("delete")(delete)
