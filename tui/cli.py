"""The headless CLI (typer): `difftui` opens the TUI; `run`, `ls`, `show`, `stop`, `resume`, `presets` work over SSH.

Every user error (a malformed preset, a bad --set, an unknown run, missing data files, an unusable database) prints
one line `difftui: error: ...` to stderr and exits 2, never a traceback. A followed run that fails exits 1.
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

__all__ = ["app", "main"]

app = typer.Typer(
    name="difftui",
    help="Launch, watch and resume diffusion-model training runs. With no command, opens the TUI.",
    invoke_without_command=True,
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)

KIND_ALIASES = {"dataset": "datasets", "backbone": "backbones", "sampler": "samplers", "recipe": "recipes"}
LOSS_NAMES = ("L_simple", "L_hybrid", "L_vlb", "L_edm", "L_ocm", "loss")
POLL_S = 0.5


class UserError(Exception):
    """An error the user can fix; printed as one line, exit 2."""


def _user_errors() -> tuple[type[BaseException], ...]:
    from difftui.engine.config import PresetError
    from difftui.engine.data import DataError
    from difftui.engine.device import DeviceError
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
        from difftui.engine.catalog import Catalog
        return Catalog(self.presets)

    def store(self, *, create: bool = False):
        from difftui.engine.store import Store
        return Store(self.db, create=create)


def ctx_obj(ctx: typer.Context) -> Context:
    return ctx.obj


@app.callback()
def root(
    ctx: typer.Context,
    db: Optional[Path] = typer.Option(None, "--db", help="run database (default: $DIFFTUI_DB, else ./runs.db)"),
    presets: Optional[list[Path]] = typer.Option(None, "--presets", help="extra preset directory (repeatable)"),
) -> None:
    from difftui.engine.store import default_db_path
    ctx.obj = Context((db or default_db_path()).expanduser(), list(presets or []))
    if ctx.invoked_subcommand is None:
        open_tui(ctx.obj)


@user_command
def open_tui(c: Context) -> None:
    from difftui.tui.app import DifftuiApp
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


#----------------------------------------------------------------------------
# Commands.

@app.command()
@user_command
def run(
    ctx: typer.Context,
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="dataset profile (default: digits)"),
    backbone: Optional[str] = typer.Option(None, "--backbone", "-b", help="backbone tier (default: unet-demo)"),
    sampler: Optional[str] = typer.Option(None, "--sampler", "-s", help="sampler panel (default: ddim)"),
    recipe: Optional[str] = typer.Option(None, "--recipe", "-r", help="training recipe (default: p1-default)"),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="override a config key: section.key=value"),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", min=1, help="train this many steps"),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:K"),
    name: str = typer.Option("", "--name", help="run name (default: dataset-backbone-id)"),
    off_tier: bool = typer.Option(False, "--off-tier", help="allow a backbone that is off its paper's tier ladder"),
    detach: bool = typer.Option(False, "--detach", help="start the run and return at once"),
) -> None:
    """Start a training run (in its own process; closing the terminal does not stop it)."""
    from difftui.engine.data import check_available
    from difftui.engine.launch import create_run, spawn_engine
    c = ctx_obj(ctx)
    config = c.catalog().resolve(dataset=dataset, backbone=backbone, sampler=sampler, recipe=recipe,
                                 overrides=set_ or [], max_steps=max_steps, device=device, off_tier=off_tier,
                                 name=name)
    check_available(config.dataset)
    run_id = create_run(c.db, config)
    proc = spawn_engine(c.db, run_id)
    out.print(f"run {run_id} started (pid {proc.pid}): {config.dataset.name} / {config.backbone.name} / "
              f"{config.sampler.name} / {config.recipe.name}, {config.recipe.total_steps} steps, device "
              f"{config.device}; log {Path(c.db).resolve().parent / 'runs' / str(run_id) / 'engine.log'}")
    if detach:
        out.print(f"watch: difftui show {run_id}   stop: difftui stop {run_id}")
        return
    raise typer.Exit(follow(c, run_id, proc))


@app.command("ls")
@user_command
def list_runs(ctx: typer.Context,
              status: Optional[str] = typer.Option(None, "--status", help="only runs with this status")) -> None:
    """List runs (runs whose engine died are marked crashed first)."""
    c = ctx_obj(ctx)
    if not c.db.exists():
        out.print(f"no runs yet ({c.db} does not exist)")
        return
    with c.store() as store:
        store.reap_dead_runs()
        runs = store.list_runs(status=status)
    if not runs:
        out.print("no runs")
        return
    table = Table(box=None, pad_edge=False)
    for col in ("id", "name", "status", "dataset", "backbone", "sampler", "step", "last loss", "device"):
        table.add_column(col, justify="right" if col in ("id", "step", "last loss") else "left",
                         overflow="fold", no_wrap=col in ("id", "status", "step"))
    for r in runs:
        backbone = (r["backbone"] or "") + (" (off-tier)" if r["off_tier"] else "")    # playbook 1.7
        table.add_row(str(r["id"]), r["name"], r["status"], r["dataset"] or "", backbone, r["sampler"] or "", f"{r['step']}/{r['total_steps']}",
                      f"{r['last_loss']:.4g}" if r["last_loss"] is not None else "-", r["device"] or "")
    out.print(table)


@app.command()
@user_command
def show(ctx: typer.Context, run_id: int = typer.Argument(..., help="run id"),
         events: int = typer.Option(10, "--events", help="how many recent events to show")) -> None:
    """A run's config, status, last metrics, grids and recent events."""
    import json
    c = ctx_obj(ctx)
    with c.store() as store:
        store.reap_dead_runs()
        r = _get_run(store, run_id)
        values = store.latest_values(run_id)
        grids = store.samples_index(run_id, "grid")
        evs = store.events_since(run_id)[-events:] if events > 0 else []
    cfg = json.loads(r["config"])
    rec, ds, bb, sp = cfg["recipe"], cfg["dataset"], cfg["backbone"], cfg["sampler"]
    out.print(f"[bold]run {r['id']}[/]  {r['name']}  [bold]{r['status']}[/]")
    out.print(f"  dataset   {ds['name']} ({ds['resolution']}x{ds['resolution']}x{ds['channels']})")
    out.print(f"  backbone  {bb['name']} ({bb['family']}{', off-tier' if bb.get('off_tier') else ''})")
    grid = sp["grid"]
    out.print(f"  sampler   {sp['name']} (grid: {grid['kind']} N={grid['steps']} eta={grid['eta']})")
    out.print(f"  recipe    {rec['name']}: {rec['loss']} loss, {rec['schedule']} schedule, T={rec['diffusion_steps']},"
              f" batch {rec['batch_size']}, lr {rec['lr']:g}, EMA {rec['ema_decay']}")
    out.print(f"  device    {r['device'] or cfg.get('device', '-')}   pid {r['pid'] or '-'} on {r['host'] or '-'}")
    out.print(f"  progress  step {r['step']}/{r['total_steps']}  kimg {r['kimg']:.1f}")
    out.print(f"  times     created {_fmt_time(r['created'])}  started {_fmt_time(r['started'])}"
              f"  ended {_fmt_time(r['ended'])}")
    if r["error"]:
        out.print(f"  error     {r['error']}")
    if values:
        out.print("  last      " + "  ".join(f"{k} {v:.4g}" for k, v in sorted(values.items())))
    out.print(f"  run dir   {r['run_dir']}")
    if grids:
        out.print(f"  grids     {len(grids)}; latest step {grids[-1]['step']}: {grids[-1]['path']}")
    show_evaluations(out, c, r)
    if evs:
        out.print("  events")
        for e in evs:
            out.print(f"    {_fmt_time(e['time'])}  {e['level']:<7} {e['message']}", markup=False)


@app.command()
@user_command
def stop(ctx: typer.Context, run_id: int = typer.Argument(..., help="run id"),
         wait: bool = typer.Option(False, "--wait", help="wait until the engine has checkpointed and exited")) -> None:
    """Ask a run to checkpoint and stop."""
    from difftui.engine.launch import request_stop
    from difftui.engine.store import ACTIVE_STATUSES
    c = ctx_obj(ctx)
    with c.store() as store:
        store.reap_dead_runs()
        _get_run(store, run_id)
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
def resume(ctx: typer.Context, run_id: int = typer.Argument(..., help="run id"),
           detach: bool = typer.Option(False, "--detach", help="start the engine and return at once"),
           max_steps: Optional[int] = typer.Option(None, "--max-steps", min=1,
                                                   help="new total steps (e.g. to train a completed run further)"),
           ) -> None:
    """Continue a stopped, crashed or failed run from its newest checkpoint."""
    from difftui.engine import launch
    c = ctx_obj(ctx)
    with c.store() as store:
        _get_run(store, run_id)
    try:
        proc = launch.resume(c.db, run_id, total_steps=max_steps)
    except RuntimeError as e:
        raise UserError(str(e)) from None
    out.print(f"run {run_id} resuming (pid {proc.pid})")
    if detach:
        return
    raise typer.Exit(follow(c, run_id, proc))


@app.command()
@user_command
def presets(ctx: typer.Context,
            kind: Optional[str] = typer.Argument(None, help="datasets | backbones | samplers | recipes")) -> None:
    """List the presets (with measured parameters and GMACs for backbones)."""
    from difftui.engine.catalog import KINDS
    c = ctx_obj(ctx)
    kinds = list(KINDS)
    if kind is not None:
        k = KIND_ALIASES.get(kind, kind)
        if k not in KINDS:
            raise UserError(f"unknown preset kind '{kind}' (kinds: {', '.join(KINDS)})")
        kinds = [k]
    catalog = c.catalog()
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
        out.print(table)
        out.print()


def _backbone_table(table: Table, files) -> None:
    from difftui.engine.models import describe_tier
    table.title = ("backbones: params (M) and GMACs per forward at batch 1, measured beside the paper's; "
                   "lr from the tier rule 1e-4/sqrt(C/128) (playbook A.6) or the recipe's")
    short = {"paper anchor": "anchor", "not a paper anchor": "no anchor", "off-tier": "OFF-TIER"}
    for col in ("name", "res", "tier", "params", "paper", "GMACs", "paper", "lr"):
        table.add_column(col, no_wrap=True, justify="left" if col in ("name", "tier", "lr") else "right")
    for f in files:
        d = describe_tier(f.preset)
        lr = f"{d['lr']:.3g}" if d["lr"] is not None else "recipe"
        table.add_row(f.name, str(d["resolution"]), short.get(d["status"], d["status"]), f"{d['params_m']:.2f}",
                      f"{d['anchor_params_m']:g}" if d["anchor_params_m"] else "-", f"{d['gmacs']:.3g}",
                      f"{d['anchor_gmacs']:g}" if d["anchor_gmacs"] else "-", lr)


# `difftui eval` and `difftui report` (tui/cli_eval.py), and their lines in `difftui show`.
from difftui.tui.cli_eval import register as _register_eval, show_evaluations  # noqa: E402

_register_eval(app)


def main() -> None:
    """Console-script entry point (`difftui = difftui.tui.cli:main`)."""
    app()


if __name__ == "__main__":
    main()
