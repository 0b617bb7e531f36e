"""The headless CLI (typer): `difftui` opens the TUI; `run`, `ls`, `show`, `stop`, `resume`, `delete`, `presets` work
over SSH.

Every user error (a malformed preset, a bad --set, an unknown run, missing data files, an unusable database, a
launch check that fails) prints one line `difftui: error: ...` to stderr and exits 2, never a traceback. A followed
run that fails exits 1. `--db` and `--presets` may come before or after the command; numbers may be written
1e5 / 2e-4 / 1_000 wherever one is expected; `ls` and `show` print JSON with `--json`, and never wrap a word when
piped; a runs.db in a folder this user cannot write is listed and shown read-only.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from functools import wraps
from pathlib import Path
from typing import Any, Callable, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

__all__ = ["app", "main"]

GLOBAL_OPTIONS = ("--db", "--presets")          # accepted before or after the command


def hoist_global_options(args: list[str], commands: Any) -> list[str]:
    """Move `--db X` / `--db=X` / `--presets X` given after the command name to the front, where the root reads them
    (so `difftui ls --db x` works as `difftui --db x ls`). Stops at `--`."""
    i = 0
    while i < len(args) and args[i] not in commands:
        i += 2 if args[i] in GLOBAL_OPTIONS else 1
    if i >= len(args):
        return list(args)
    head, rest, moved = list(args[: i + 1]), [], []
    j = i + 1
    while j < len(args):
        a = args[j]
        if a == "--":
            rest += args[j:]
            break
        if a in GLOBAL_OPTIONS and j + 1 < len(args):
            moved += [a, args[j + 1]]
            j += 2
            continue
        if any(a.startswith(o + "=") for o in GLOBAL_OPTIONS):
            moved.append(a)
        else:
            rest.append(a)
        j += 1
    return moved + head + rest


def _clean_metavars(command: Any) -> None:
    """No `<bool>` beside a flag (the help option included); other options name their metavar explicitly."""
    for param in getattr(command, "params", []):
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
        if getattr(param, "param_type_name", "") == "argument" and param.metavar:
            param.display_type_rich = lambda ctx: None      # the metavar (ID, KIND) already names it
    get_help_option = command.get_help_option

    def help_option(ctx: Any) -> Any:
        option = get_help_option(ctx)
        if option is not None and option.metavar is None:
            option.metavar = ""
        return option

    command.get_help_option = help_option


class DifftuiGroup(TyperGroup):
    """The root command: global options after the command too, and clean metavars on every command."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for command in [self, *self.commands.values()]:
            _clean_metavars(command)

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(args, self.commands))


app = typer.Typer(
    name="difftui",
    help="Launch, watch, sweep, evaluate and resume diffusion-model training runs. With no command, opens the TUI. "
         "--db and --presets may also follow the command.",
    invoke_without_command=True,
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=DifftuiGroup,
)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)

KIND_ALIASES = {"dataset": "datasets", "backbone": "backbones", "sampler": "samplers", "recipe": "recipes",
                "sweep": "sweeps"}
LOSS_NAMES = ("L_simple", "L_hybrid", "L_vlb", "L_edm", "L_ocm", "loss")
POLL_S = 0.5


class UserError(Exception):
    """An error the user can fix; printed as one line, exit 2."""


def _user_errors() -> tuple[type[BaseException], ...]:
    from difftui.engine.config.model import PresetError
    from difftui.engine.data import DataError
    from difftui.engine.run.device import DeviceError
    from difftui.engine.store import StoreError
    return (UserError, PresetError, StoreError, DataError, DeviceError)


def fail(message: str, code: int = 2) -> None:
    print(f"difftui: error: {' '.join(str(message).split())}", file=sys.stderr, flush=True)
    raise typer.Exit(code)


def user_command(fn: Callable) -> Callable:
    """Turn the known user errors into one line on stderr and exit code 2."""
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except _user_errors() as e:
            fail(str(e))
    return wrapper


#----------------------------------------------------------------------------
# Global options.

class Context:
    def __init__(self, db: Path, presets: list[Path]):
        self.db = db
        self.presets = presets

    def catalog(self):
        from difftui.engine.config.catalog import Catalog
        return Catalog(self.presets)

    def store(self, *, create: bool = False):
        from difftui.engine.store import Store
        return Store(self.db, create=create)

    def reading_store(self):
        """The store for `ls` / `show`: read-only (said in one line on stderr) when this user cannot write it."""
        from difftui.engine.store import open_for_reading
        store = open_for_reading(self.db)
        if store.read_only:
            print(f"difftui: note: {self.db} is read-only here (its folder or file cannot be written); showing it "
                  f"as it is, without marking dead runs crashed", file=sys.stderr, flush=True)
        return store


def ctx_obj(ctx: typer.Context) -> Context:
    return ctx.obj


@app.callback()
def root(
    ctx: typer.Context,
    db: Optional[Path] = typer.Option(None, "--db", metavar="PATH",
                                      help="run database (default: $DIFFTUI_DB, else ./runs.db)"),
    presets: Optional[list[Path]] = typer.Option(None, "--presets", metavar="DIR",
                                                 help="extra preset directory (repeatable)"),
) -> None:
    from difftui.engine.store import default_db_path
    ctx.obj = Context((db or default_db_path()).expanduser(), list(presets or []))
    if ctx.invoked_subcommand is None:
        open_tui(ctx.obj)


@user_command
def open_tui(c: Context) -> None:
    from difftui.tui.app import DifftuiApp
    from difftui.tui.graphics import detect_graphics
    detect_graphics()                               # sixel/kitty: ask before Textual reads stdin
    DifftuiApp(db_path=c.db, preset_dirs=c.presets).run()


#----------------------------------------------------------------------------
# Helpers.

def _get_run(store, run_id: int) -> dict[str, Any]:
    run = store.get_run(run_id)
    if run is None:
        raise UserError(f"no run {run_id} in {store.path}")
    return run


def _fmt_loss(values: dict[str, float]) -> str:
    parts = [f"{n} {values[n]:.4g}" for n in LOSS_NAMES if n in values]
    return "  ".join(parts)


def _fmt_time(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def _batch_size(run: dict[str, Any]) -> int:
    import json
    try:
        return int(json.loads(run["config"])["recipe"]["batch_size"])
    except (KeyError, ValueError, TypeError):
        return 0


def follow(c: Context, run_id: int, proc=None) -> int:
    """Show a progress bar and the latest losses until the run ends; returns the CLI exit code.

    Ctrl-C detaches (the engine runs in its own session and keeps going)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from difftui.engine.store import ACTIVE_STATUSES
    store = c.store()
    run = _get_run(store, run_id)
    batch = _batch_size(run)
    columns = [TextColumn("run {task.fields[run]} [bold]{task.fields[status]}[/]"), BarColumn(),
               TextColumn("{task.completed}/{task.total} steps"), TextColumn("{task.fields[ips]}"),
               TextColumn("ETA {task.fields[eta]}"), TimeElapsedColumn(), TextColumn("{task.fields[loss]}")]
    try:
        with Progress(*columns, console=out, transient=False, refresh_per_second=4) as progress:
            task = progress.add_task("", total=run["total_steps"] or 1, completed=run["step"], run=run_id,
                                     status=run["status"], ips="", eta="-", loss="")
            while True:
                run = _get_run(store, run_id)
                values = store.latest_values(run_id)
                ips = values.get("img_per_s")
                remaining = (run["total_steps"] or 0) - run["step"]
                eta = "-"
                if ips and batch and remaining > 0:
                    eta = time.strftime("%H:%M:%S", time.gmtime(remaining * batch / ips))
                progress.update(task, completed=run["step"], total=run["total_steps"] or 1, status=run["status"],
                                ips=f"{ips:.0f} img/s" if ips else "", eta=eta, loss=_fmt_loss(values))
                if run["status"] not in ACTIVE_STATUSES:
                    break
                if proc is not None and proc.poll() is not None:
                    # The process is gone; give its last write a moment, then let the reaper decide.
                    time.sleep(POLL_S)
                    if _get_run(store, run_id)["status"] in ACTIVE_STATUSES:
                        store.reap_dead_runs()
                    continue
                time.sleep(POLL_S)
    except KeyboardInterrupt:
        out.print(f"detached from run {run_id}; it keeps running. Watch: difftui show {run_id}   "
                  f"Stop: difftui stop {run_id}")
        return 0
    finally:
        store.close()
    return _report_end(c, run_id)


def _report_end(c: Context, run_id: int) -> int:
    with c.store() as store:
        run = _get_run(store, run_id)
        grids = store.samples_index(run_id, "grid")
        values = store.latest_values(run_id)
    status = run["status"]
    line = f"run {run_id} {status} at step {run['step']}/{run['total_steps']}"
    if values:
        line += f"  {_fmt_loss(values)}"
    out.print(line)
    if grids and grids[-1]["path"]:
        out.print(f"latest grid: {grids[-1]['path']}")
    if status in ("failed", "crashed"):
        print(f"difftui: run {run_id} {status}: {run['error'] or 'see ' + str(Path(run['run_dir']) / 'engine.log')}",
              file=sys.stderr)
        return 1
    return 0


def launch_plan(gpus: str | None, nproc_per_node: int | None, nnodes: int = 1, rdzv_endpoint: str | None = None):
    """--gpus / --nproc-per-node / --nnodes / --rdzv-endpoint -> a LaunchPlan (one line on a bad value)."""
    from difftui.engine.launch.runs import plan_from_options
    try:
        return plan_from_options(gpus, nproc_per_node, nnodes, rdzv_endpoint)
    except ValueError as e:
        raise UserError(str(e)) from None


#----------------------------------------------------------------------------
# Commands.

@app.command()
@user_command
def run(
    ctx: typer.Context,
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", metavar="NAME",
                                          help="dataset profile (default: digits)"),
    backbone: Optional[str] = typer.Option(None, "--backbone", "-b", metavar="NAME",
                                           help="backbone tier (default: unet-demo)"),
    sampler: Optional[str] = typer.Option(None, "--sampler", "-s", metavar="NAME", help="sampler panel (default: ddim)"),
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
) -> None:
    """Start a training run (in its own process; closing the terminal does not stop it)."""
    from difftui.engine.launch.runs import create_run, start_run
    c = ctx_obj(ctx)
    plan = launch_plan(gpus, nproc_per_node, nnodes, rdzv_endpoint)
    if plan.gpus is not None and device == "auto":
        device = "cuda"                             # GPUs were named: never fall back to the CPU silently
    config, defaulted = _resolve_launch(c, processes=plan.nproc_per_node * plan.nnodes, dataset=dataset,
                                        backbone=backbone, sampler=sampler, recipe=recipe, overrides=set_ or [],
                                        max_steps=_steps_option(max_steps), device=device, off_tier=off_tier,
                                        name=name)
    run_id = create_run(c.db, config, plan=plan)
    proc = start_run(c.db, run_id, plan)
    steps = f"{config.recipe.total_steps} steps" + (" (the CPU default; --max-steps N for more)" if defaulted else "")
    out.print(f"run {run_id} started (pid {proc.pid}): {config.dataset.name} / {config.backbone.name} / "
              f"{config.sampler.name} / {config.recipe.name}, {steps}, device {config.device}, {plan.describe()}; "
              f"log {Path(c.db).resolve().parent / 'runs' / str(run_id) / 'engine.log'}", markup=False)
    if plan.nnodes > 1:
        out.print(f"on each of the other {plan.nnodes - 1} machine(s), with the same data set paths, run:\n  "
                  f"python -m torch.distributed.run --nnodes {plan.nnodes} --nproc-per-node {plan.nproc_per_node} "
                  f"--rdzv-backend c10d --rdzv-endpoint {plan.rdzv_endpoint} --rdzv-id difftui-run-{run_id} "
                  f"-m difftui.engine train {run_id} --db {Path(c.db).resolve()}", markup=False)
    if detach:
        out.print(f"watch: difftui show {run_id}   stop: difftui stop {run_id}")
        return
    raise typer.Exit(follow(c, run_id, proc))


def _check_data_in_process(profile) -> str | None:
    from difftui.engine.data import DataError, check_available
    try:
        check_available(profile)
    except DataError as e:
        return str(e)
    return None


def _resolve_launch(c: Context, processes: int = 1, **choices: Any):
    """Resolve a new run and run the launch checks (issue 11 item 6): a refusal raises before any run row exists;
    warnings go to stderr. `processes` share the recipe's (global) batch. Returns (config, whether the max steps
    are the device default)."""
    from difftui.engine.launch.checks import launch_checks, probe_devices
    from difftui.engine.launch.request import resolve_new_run
    c.catalog().resolve(**choices)                  # a config error is refused at once, before torch loads
    import difftui.engine.data  # noqa: F401  (torch, once: the data check and the device probe)
    probe = probe_devices()
    config, defaulted = resolve_new_run(c.catalog(), probe=probe, **choices)
    report = launch_checks(config, probe=probe, check_data=_check_data_in_process)
    if not report.ok:
        raise UserError(report.errors[0])
    if config.recipe.batch_size % processes:
        raise UserError(f"recipe.batch_size {config.recipe.batch_size} does not split over {processes} processes "
                        f"(the recipe's batch is the global batch)")
    for warning in report.warnings:
        print(f"difftui: warning: {warning}", file=sys.stderr, flush=True)
    return config, defaulted


def _console() -> Console:
    """stdout as rich sees it: a terminal gets its width; a pipe or a file gets lines that never wrap."""
    tty = sys.stdout.isatty()
    return Console(highlight=False, width=None if tty else 1_000_000, soft_wrap=not tty)


def _print_table(console: Console, table: Table) -> None:
    """A table on a terminal as rich draws it; piped, the same lines without trailing blanks."""
    if console.is_terminal:
        console.print(table)
        return
    with console.capture() as captured:
        console.print(table)
    sys.stdout.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))
    sys.stdout.flush()


def json_safe(value: Any) -> Any:
    """NaN and infinities as the strings "NaN", "Infinity", "-Infinity", so that the output is valid JSON."""
    import math
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def _print_json(value: Any) -> None:
    import json
    sys.stdout.write(json.dumps(json_safe(value), allow_nan=False, indent=2) + "\n")
    sys.stdout.flush()


RUN_FIELDS = ("id", "name", "status", "dataset", "backbone", "sampler", "recipe", "off_tier", "step", "total_steps",
              "kimg", "device", "pid", "host", "created", "started", "ended", "error", "run_dir")


@app.command("ls")
@user_command
def list_runs(ctx: typer.Context,
              status: Optional[str] = typer.Option(None, "--status", metavar="STATUS",
                                                   help="only runs with this status"),
              as_json: bool = typer.Option(False, "--json", help="print the runs as a JSON list")) -> None:
    """List runs (runs whose engine died are marked crashed first)."""
    c = ctx_obj(ctx)
    if not c.db.exists():
        if as_json:
            _print_json([])
            return
        out.print(f"no runs yet ({c.db} does not exist)", markup=False)
        return
    with c.reading_store() as store:
        store.reap_dead_runs()
        runs = store.list_runs(status=status)
    if as_json:
        _print_json([{**{k: r[k] for k in RUN_FIELDS}, "off_tier": bool(r["off_tier"]), "last_loss": r["last_loss"]}
                     for r in runs])
        return
    console = _console()
    if not runs:
        console.print("no runs")
        return
    table = Table(box=None, pad_edge=False)
    for col in ("id", "name", "status", "dataset", "backbone", "sampler", "step", "last loss", "device"):
        table.add_column(col, justify="right" if col in ("id", "step", "last loss") else "left",
                         overflow="fold", no_wrap=col in ("id", "status", "step"))
    for r in runs:
        backbone = (r["backbone"] or "") + (" (off-tier)" if r["off_tier"] else "")    # playbook 1.7
        cells = (str(r["id"]), r["name"] + cli_sweep.run_marks(r), r["status"], r["dataset"] or "", backbone, r["sampler"] or "",
                 f"{r['step']}/{r['total_steps']}", f"{r['last_loss']:.4g}" if r["last_loss"] is not None else "-",
                 r["device"] or "")
        table.add_row(*(Text(str(cell)) for cell in cells))
    _print_table(console, table)


@app.command()
@user_command
def show(ctx: typer.Context, run_id: int = typer.Argument(..., metavar="ID", help="run id"),
         events: str = typer.Option("10", "--events", metavar="N", help="how many recent events to show"),
         as_json: bool = typer.Option(False, "--json", help="print the run, its config, last values, grids and "
                                                             "events as JSON")) -> None:
    """A run's config, status, last metrics, grids and recent events."""
    import json

    from difftui.engine.config.schema import parse_integer
    try:
        events_n = parse_integer(events)
    except ValueError:
        raise UserError(f"--events: expected a whole number, got {events!r}") from None
    c = ctx_obj(ctx)
    with c.reading_store() as store:
        store.reap_dead_runs()
        r = _get_run(store, run_id)
        values = store.latest_values(run_id)
        grids = store.samples_index(run_id, "grid")
        evs = store.events_since(run_id)[-events_n:] if events_n > 0 else []
    cfg = json.loads(r["config"])
    if as_json:
        _print_json({**{k: r[k] for k in RUN_FIELDS}, "off_tier": bool(r["off_tier"]), "config": cfg,
                     "last": values, "grids": [{k: g[k] for k in ("step", "sampler", "nfe", "path", "time")}
                                               for g in grids],
                     "events": [{k: e[k] for k in ("time", "level", "message")} for e in evs]})
        return
    out = _console()
    rec, ds, bb, sp = cfg["recipe"], cfg["dataset"], cfg["backbone"], cfg["sampler"]
    out.print(Text.assemble(Text(f"run {r['id']}", style="bold"), f"  {r['name']}  ",
                            Text(r["status"], style="bold")))
    lines = [f"  dataset   {ds['name']} ({ds['resolution']}x{ds['resolution']}x{ds['channels']})",
             f"  backbone  {bb['name']} ({bb['family']}{', off-tier' if bb.get('off_tier') else ''})"]
    grid = sp["grid"]
    lines += [f"  sampler   {sp['name']} (grid: {grid['kind']} N={grid['steps']} eta={grid['eta']})",
              f"  recipe    {rec['name']}: {rec['loss']} loss, {rec['schedule']} schedule, T={rec['diffusion_steps']},"
              f" batch {rec['batch_size']}, lr {rec['lr']:g}, EMA {rec['ema_decay']}",
              f"  device    {r['device'] or cfg.get('device', '-')}   pid {r['pid'] or '-'} on {r['host'] or '-'}"
              + (f", started {_fmt_time(r['pid_start'])}" if r.get("pid_start") else ""),
              f"  progress  step {r['step']}/{r['total_steps']}  kimg {r['kimg']:.1f}",
              f"  times     created {_fmt_time(r['created'])}  started {_fmt_time(r['started'])}"
              f"  ended {_fmt_time(r['ended'])}"]
    if r["error"]:
        lines.append(f"  error     {r['error']}")
    lines += cli_sweep.show_lines(r)
    if values:
        lines.append("  last      " + "  ".join(f"{k} {v:.4g}" for k, v in sorted(values.items())))
    lines.append(f"  run dir   {r['run_dir']}")
    if grids:
        lines.append(f"  grids     {len(grids)}; latest step {grids[-1]['step']}: {grids[-1]['path']}")
    for line in lines:
        out.print(line, markup=False)
    show_evaluations(out, c, r)
    if evs:
        out.print("  events", markup=False)
        for e in evs:
            out.print(f"    {_fmt_time(e['time'])}  {e['level']:<7} {e['message']}", markup=False)


@app.command()
@user_command
def stop(ctx: typer.Context, run_id: int = typer.Argument(..., metavar="ID", help="run id"),
         wait: bool = typer.Option(False, "--wait", help="wait until the engine has checkpointed and exited"),
         force: bool = typer.Option(False, "--force", help="SIGTERM to the engine's process group (it checkpoints "
                                                          "and stops), SIGKILL if it still runs after --grace"),
         grace: float = typer.Option(30.0, "--grace", metavar="SECONDS", help="with --force: how long to wait "
                                                                               "before SIGKILL"),
         ) -> None:
    """Ask a run to checkpoint and stop."""
    from difftui.engine.launch.runs import force_stop, request_stop
    from difftui.engine.store import ACTIVE_STATUSES
    c = ctx_obj(ctx)
    with c.store() as store:
        store.reap_dead_runs()
        _get_run(store, run_id)
    if force:
        try:
            out.print(force_stop(c.db, run_id, grace_s=grace))
        except RuntimeError as e:
            raise UserError(str(e)) from None
        return
    try:
        request_stop(c.db, run_id)
    except RuntimeError as e:
        raise UserError(str(e)) from None
    out.print(f"stop requested for run {run_id}; it checkpoints, then exits")
    if wait:
        with c.store() as store:
            while _get_run(store, run_id)["status"] in ACTIVE_STATUSES:
                time.sleep(POLL_S)
                store.reap_dead_runs()
            r = _get_run(store, run_id)
        out.print(f"run {run_id} {r['status']} at step {r['step']}")


@app.command()
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
    with c.store() as store:
        _get_run(store, run_id)
    total = _steps_option(max_steps)
    plan = launch_plan(gpus, nproc_per_node) if gpus is not None or nproc_per_node is not None else None
    try:
        proc = launch.resume(c.db, run_id, total_steps=total, plan=plan)
    except RuntimeError as e:
        raise UserError(str(e)) from None
    out.print(f"run {run_id} resuming (pid {proc.pid})")
    if detach:
        return
    raise typer.Exit(follow(c, run_id, proc))


@app.command()
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
    out = _console()                                    # piped: one line per preset, never folded
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
        _print_table(out, table)
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
        lr = f"{d['lr']:.3g}" if d["lr"] is not None else "recipe"
        table.add_row(d["name"], str(d["resolution"]), short.get(d["status"], d["status"]), f"{d['params_m']:.2f}",
                      f"{d['anchor_params_m']:g}" if d["anchor_params_m"] else "-", f"{d['gmacs']:.3g}",
                      f"{d['anchor_gmacs']:g}" if d["anchor_gmacs"] else "-", lr)


def _steps_option(text: str | None) -> int | None:
    """--max-steps N: a whole number >= 1, written any way a number is (1e5, 2_000, 300)."""
    from difftui.engine.config.schema import parse_integer
    if text is None:
        return None
    try:
        steps = parse_integer(text)
    except ValueError:
        raise UserError(f"--max-steps: expected a whole number, got {text!r}") from None
    if steps < 1:
        raise UserError(f"--max-steps: expected >= 1, got {steps}")
    return steps


@app.command()
@user_command
def delete(ctx: typer.Context, run_id: int = typer.Argument(..., metavar="ID", help="run id"),
           yes: bool = typer.Option(False, "--yes", "-y", help="delete without asking (for scripts)")) -> None:
    """Delete a run: its row, metrics, grids, evaluations and events, and its runs/<id>/ folder. Refused while its
    engine is alive."""
    c = ctx_obj(ctx)
    with c.store() as store:
        store.reap_dead_runs()
        run = _get_run(store, run_id)
        if store.is_alive(run):
            raise UserError(f"run {run_id} is {run['status']} (pid {run['pid']}); stop it first: "
                            f"difftui stop {run_id} --wait")
        if not yes:
            if not sys.stdin.isatty():
                raise UserError(f"delete run {run_id}: not asking without a terminal; pass --yes to delete it")
            question = (f"delete run {run_id} ({run['name']}, {run['status']}, step {run['step']}) "
                        f"and {run['run_dir']}?")
            if not typer.confirm(question, default=False):
                out.print(f"run {run_id} kept")
                return
        store.delete_run(run_id)
    out.print(f"run {run_id} deleted")


# `difftui data check | card | prepare` (issue 10; tui/cli_data.py).
from difftui.tui import cli_data  # noqa: E402

cli_data.register(app)


# Sweeps, compare and clone (issue 8) live in their own module.
from difftui.tui import cli_sweep  # noqa: E402

cli_sweep.register(app)


# `difftui eval` and `difftui report` (tui/cli_eval.py), and their lines in `difftui show`.
from difftui.tui.cli_eval import register as _register_eval  # noqa: E402
from difftui.tui.cli_eval import show_evaluations

_register_eval(app)


def main() -> None:
    """Console-script entry point (`difftui = difftui.tui.cli:main`)."""
    app()


if __name__ == "__main__":
    main()
