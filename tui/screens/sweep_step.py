"""A screen of the sweep setup flow (grid -> values and slots), and the base run's words and the breadcrumb both
screens show. Its own module so that the grid picker (sweep_grid.py) and the setup (sweep_setup.py) both build on it
without importing each other at load time."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from difftui.tui.screens.base import DifftuiScreen

__all__ = ["SweepStep", "sweep_breadcrumb", "base_words"]


def base_words(spec: Any, *, overrides: bool = True) -> str:
    """The sweep's base run in the TUI's words: its presets, steps, off-tier, and its overrides (every one, or how
    many: the breadcrumb has one line; the setup's review lists them all). Not RunSpec.describe, which writes
    `--set` for the command line."""
    if spec is None:
        return "..."
    parts = [" / ".join(n or "default" for n in (spec.dataset, spec.backbone, spec.sampler, spec.recipe))]
    if spec.max_steps:
        parts.append(f"{spec.max_steps:,} steps")
    if spec.overrides:
        parts.append("overrides " + " ".join(spec.overrides) if overrides else
                     f"{len(spec.overrides)} override{'s' if len(spec.overrides) > 1 else ''}")
    if spec.off_tier:
        parts.append("off-tier")
    return " · ".join(parts)


def sweep_breadcrumb(spec: Any, here: str, grid: str | None = None) -> Text:
    text = Text("new sweep  ", style="bold")
    text.append("base: ", style="dim")
    text.append(base_words(spec, overrides=False), style="green")
    text.append("  >  ", style="dim")
    text.append("[grid]" if here == "grid" else f"grid: {grid}", style="bold reverse" if here == "grid" else "green")
    text.append("  >  ", style="dim")
    text.append("[values & slots]" if here == "setup" else "values & slots",
                style="bold reverse" if here == "setup" else "dim")
    return text





class SweepStep(DifftuiScreen):
    """A screen of the sweep setup flow (the app pops all of them once the sweep is launched)."""

    def action_back(self) -> None:
        self.app.pop_screen()
