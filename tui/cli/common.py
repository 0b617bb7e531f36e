"""What every command of the headless CLI shares: the one-line user error, the global options, the consoles,
tables and JSON on stdout, and the small option parsers.

Every user error (a malformed preset, a bad --set, an unknown run, missing data files, an unusable database, a
launch check that fails) prints one line `difftui: error: ...` to stderr and exits 2, never a traceback.
"""

from __future__ import annotations

import sys
from datetime import datetime
from functools import wraps
from pathlib import Path
from typing import Any, Callable

import typer
from rich.console import Console
from rich.table import Table

out = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)

KIND_ALIASES = {"dataset": "datasets", "backbone": "backbones", "sampler": "samplers", "recipe": "recipes",
                "sweep": "sweeps"}
LOSS_NAMES = ("L_simple", "L_hybrid", "L_vlb", "L_edm", "L_ocm", "loss")
POLL_S = 0.5


class UserError(Exception):
    """An error the user can fix; printed as one line, exit 2."""


def user_errors() -> tuple[type[BaseException], ...]:
    """The errors a command reports as one line and exit 2 (the sweep ones too: SweepError, and Owned when another
    process owns the run or sweep)."""
    from difftui.engine.config.model import PresetError
    from difftui.engine.data import DataError
    from difftui.engine.launch.outcome import LaunchError
    from difftui.engine.run.device import DeviceError
    from difftui.engine.store import StoreError
    from difftui.engine.sweeps import SweepError
    return (UserError, PresetError, StoreError, DataError, DeviceError, SweepError, LaunchError)


def fail(error: BaseException | str, code: int = 2) -> None:
    """Print `difftui: error: <one line>` (engine/text.py's rule, the TUI's too) on stderr and exit with `code`."""
    from difftui.engine.text import error_line
    print(error_line(error), file=sys.stderr, flush=True)
    raise typer.Exit(code)


def user_command(fn: Callable) -> Callable:
    """Turn the known user errors into one line on stderr and exit code 2."""
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except user_errors() as e:
            fail(e)
    return wrapper


def global_path_error(db: Path, presets: list[Path], *, db_named: str = "--db") -> str | None:
    """Why the global paths cannot be used (one line), or None (issue 16 item 6): a database in a folder that does
    not exist is refused, naming the folder, rather than silently creating it (a typo would put runs somewhere
    unexpected; git and sqlite3 refuse too); a preset folder that is not there is refused, not ignored."""
    folder = db.expanduser().absolute().parent
    if not folder.is_dir():
        what = "does not exist" if not folder.exists() else "is not a folder"
        return f"{db_named} {db}: the folder {folder} {what}; create it first, or name another database"
    for path in presets:
        if not path.expanduser().is_dir():
            what = "does not exist" if not path.expanduser().exists() else "is not a folder"
            return f"--presets {path}: {what}"
    return None


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


def get_run(store, run_id: int) -> dict[str, Any]:
    run = store.get_run(run_id)
    if run is None:
        raise UserError(f"no run {run_id} in {store.path}")
    return run


def fmt_loss(values: dict[str, float]) -> str:
    from difftui.engine.numbers import format_number
    parts = [f"{n} {format_number(values[n])}" for n in LOSS_NAMES if n in values]
    return "  ".join(parts)


def fmt_time(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def launch_plan(gpus: str | None, nproc_per_node: int | None, nnodes: int = 1, rdzv_endpoint: str | None = None):
    """--gpus / --nproc-per-node / --nnodes / --rdzv-endpoint -> a LaunchPlan (one line on a bad value)."""
    from difftui.engine.launch.plan import plan_from_options
    try:
        return plan_from_options(gpus, nproc_per_node, nnodes, rdzv_endpoint)
    except ValueError as e:
        raise UserError(str(e)) from None


def console() -> Console:
    """stdout as rich sees it: a terminal gets its width; a pipe or a file gets lines that never wrap."""
    tty = sys.stdout.isatty()
    return Console(highlight=False, width=None if tty else 1_000_000, soft_wrap=not tty)


def print_table(console: Console, table: Table) -> None:
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


def print_json(value: Any) -> None:
    import json
    sys.stdout.write(json.dumps(json_safe(value), allow_nan=False, indent=2) + "\n")
    sys.stdout.flush()


def steps_option(text: str | None) -> int | None:
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


