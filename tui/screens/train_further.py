"""`r` on a run that has no step left (it completed all its steps): how far to train it now. Dismisses with the new
total number of steps, or None when cancelled; the app then resumes the run to that end (the engine's `resume` with
`total_steps`: the config's total is raised and the run continues from its final checkpoint)."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from difftui.tui import bindings

__all__ = ["TrainFurtherScreen", "parse_steps"]


def parse_steps(text: str, step: int) -> tuple[int | None, str]:
    """(steps, "") for a whole number above `step` ("2000", "2,000", "2_000"), else (None, why not)."""
    cleaned = text.strip().replace(",", "").replace("_", "")
    if not cleaned.isdigit():
        return None, f"'{text.strip()}' is not a whole number of steps"
    steps = int(cleaned)
    if steps <= step:
        return None, f"the run is at step {step:,}: enter more than that"
    return steps, ""


class TrainFurtherScreen(ModalScreen[int | None]):
    HELP_TITLE = "train a finished run further"
    BINDINGS = bindings.TRAIN_FURTHER
    AUTO_FOCUS = "#further-steps"

    def __init__(self, run_id: int, step: int, total_steps: int | None) -> None:
        super().__init__()
        self.run_id, self.step, self.total_steps = run_id, step, total_steps

    def compose(self) -> ComposeResult:
        total = self.total_steps or self.step
        with Vertical(id="further-box"):
            yield Static(f"run {self.run_id} completed all {total:,} steps: train it further?", id="further-title",
                         markup=False)
            yield Static("train on to step (the run continues from its final checkpoint)", id="further-label")
            yield Input(str(2 * max(total, 1)), id="further-steps", compact=True)
            yield Static("", id="further-error", markup=False)
            yield Static("enter resumes it, esc cancels", id="further-keys")

    @on(Input.Submitted, "#further-steps")
    def _submitted(self, event: Input.Submitted) -> None:
        steps, why = parse_steps(event.value, self.step)
        if steps is None:
            self.query_one("#further-error", Static).update(why)
            return
        self.dismiss(steps)

    def action_cancel(self) -> None:
        self.dismiss(None)
