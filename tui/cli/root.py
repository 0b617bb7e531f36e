"""The root of the headless CLI (typer): `difftui` opens the TUI; `run`, `ls`, `show`, `stop`, `resume`, `delete`, `presets`,
`data`, `sweep`, `compare`, `clone`, `eval`, `report`, `doctor`, `fork`, `recheck` and `sync` work over SSH.

`--db` and `--presets` may come before or after the command. The commands live beside this module, one file per
subject (runs, sweep, eval, data); what they share is in common.py. Textual is imported only where the TUI opens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from typer.core import TyperGroup

from difftui.tui.cli import data, doctor, eval, fork, runs, sweep, sync
from difftui.tui.cli.common import Context, fail, global_path_error, user_command
from difftui.tui.cli.slurm import optional_values

__all__ = ["app", "main"]

GLOBAL_OPTIONS = ("--db", "--presets")          # accepted before or after the command
# click's UsageError as typer raises it (recent typer carries its own copy of click: its BadParameter derives from it).
UsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
TYPER_NOT_AN_INTEGER = "Input should be a valid integer, unable to parse string as an integer"


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


def usage_line(error: Any) -> str:
    """A usage error (a run id that is not a number, a missing argument, an unknown option or command) as the one
    line every other user error is (issue 16 item 10), naming the command and where its help is: typer would draw a
    six-line box."""
    path = error.ctx.command_path if error.ctx is not None else "difftui"
    text = error.format_message().rstrip(".").replace(TYPER_NOT_AN_INTEGER, "expected a whole number")
    where = path.removeprefix("difftui").strip()
    return f"{where + ': ' if where else ''}{text} (see {path} --help)"


class DifftuiGroup(TyperGroup):
    """The root command: global options after the command too, clean metavars on every command, and usage errors
    (the root's and every command's) as one line with exit 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for command in [self, *self.commands.values()]:
            _clean_metavars(command)

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, optional_values(hoist_global_options(args, self.commands)))
        except UsageError as e:
            fail(usage_line(e), code=e.exit_code)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)              # resolves the command and parses its own arguments
        except UsageError as e:
            fail(usage_line(e), code=e.exit_code)


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
    problem = global_path_error(ctx.obj.db, ctx.obj.presets, db_named="--db" if db else "$DIFFTUI_DB")
    if problem is not None and not ctx.resilient_parsing:
        fail(problem)
    if ctx.invoked_subcommand is None:
        open_tui(ctx.obj)


@user_command
def open_tui(c: Context) -> None:
    from difftui.tui.app import DifftuiApp
    from difftui.tui.graphics import detect_graphics
    detect_graphics()                               # sixel/kitty: ask before Textual reads stdin
    DifftuiApp(db_path=c.db, preset_dirs=c.presets).run()




runs.register(app)
data.register(app)
sweep.register(app)
eval.register(app)
doctor.register(app)
fork.register(app)
sync.register(app)


def main() -> None:
    """Console-script entry point (`difftui = difftui.tui.cli:main`)."""
    app()
