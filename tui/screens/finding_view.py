"""One finding in full (issue 18 item 2): what was seen with its numbers, the playbook section and why, every
suggested edit, the grid, the commands, the data read and lacked. `f` takes the fix (as on the findings panel), `g` its grid's sweep."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from difftui.engine.doctor.finding import Finding
from difftui.tui import bindings
from difftui.tui.widgets.findings_panel import finding_text

__all__ = ["FindingScreen"]


class FindingScreen(ModalScreen[str]):
    """Dismissed with "fix" (`f`), "grid" (`g`: its sweep) or "" (back)."""

    HELP_TITLE = "a finding in full"
    BINDINGS = bindings.FINDING_VIEW

    def __init__(self, finding: Finding, run_id: int) -> None:
        super().__init__()
        self.finding = finding
        self.run_id = run_id

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="finding-box"):
            yield Static(finding_text(self.finding), id="finding-text")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#finding-box").border_title = f"run {self.run_id}: {self.finding.rule}"

    def action_close(self) -> None:
        self.dismiss("")

    def action_fix(self) -> None:
        self.dismiss("fix")

    def action_grid(self) -> None:
        self.dismiss("grid")
