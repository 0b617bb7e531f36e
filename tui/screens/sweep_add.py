"""A small dialog: the value to add to a running sweep, and the explicit off-grid switch. Dismisses with
(text, off_grid), or None when cancelled; the sweep view adds it in a worker (the rules live in the engine)."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Checkbox, Input, Static

from difftui.engine.numbers import format_setting
from difftui.tui import bindings
from difftui.tui.widgets.tickbox import TickBox

__all__ = ["SweepAddScreen"]


class SweepAddScreen(ModalScreen[tuple[str, bool] | None]):
    HELP_TITLE = "sweep: add a value"
    BINDINGS = bindings.SWEEP_ADD
    AUTO_FOCUS = "#add-value"

    def __init__(self, sweep_id: int, axes: list[str], paper: dict[str, list]) -> None:
        super().__init__()
        self.sweep_id = sweep_id
        self.axes = axes
        self.paper = paper

    def compose(self) -> ComposeResult:
        with Vertical(id="add-box"):
            yield Static(f"Add a value to sweep {self.sweep_id}", id="add-title")
            grid = "; ".join(f"{k}: {', '.join(format_setting(v) for v in vs)}"
                             for k, vs in self.paper.items())
            yield Static(f"the paper's grid - {grid}", id="add-grid", markup=False)
            hint = "0.4" if len(self.axes) == 1 else f"{self.axes[-1]}=0.4"
            yield Input(placeholder=f"e.g. {hint}", id="add-value")
            yield TickBox("off-grid (explicit): allow a value off the paper's grid", id="add-off-grid", compact=True)
            yield Static("enter adds it, escape cancels", id="add-keys")

    @on(Input.Submitted, "#add-value")
    def _submitted(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self.dismiss((event.value.strip(), self.query_one("#add-off-grid", Checkbox).value))

    def action_cancel(self) -> None:
        self.dismiss(None)
