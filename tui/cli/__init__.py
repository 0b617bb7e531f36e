"""difftui's headless CLI: the typer app (root.py), its commands by subject (runs, sweep, eval, data) and what they
share (common.py, follow.py). `difftui = difftui.tui.cli:main`."""

from difftui.tui.cli.root import app, main

__all__ = ["app", "main"]
