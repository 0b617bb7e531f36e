"""A screen of the new-run flow (dataset -> backbone -> sampler -> recipe -> review): the steps, their titles and
the breadcrumb every step shows. Its own module so that the pickers (new_run.py) and the review (review.py) both
build on it without importing each other at load time."""

from __future__ import annotations

from rich.text import Text

from difftui.tui.screens.base import DifftuiScreen

__all__ = ["NewRunStep", "STEPS", "TITLES"]

STEPS = ("datasets", "backbones", "samplers", "recipes")
TITLES = {"datasets": "dataset profile", "backbones": "backbone tier", "samplers": "sampler panel",
          "recipes": "training recipe"}


class NewRunStep(DifftuiScreen):
    """A screen of the new-run flow (the app pops all of them once a run is launched)."""

    def __init__(self, choices: dict[str, str]) -> None:
        super().__init__()
        self.choices = choices

    def breadcrumb(self, here: str) -> Text:
        text = Text("new run  ", style="bold")
        for kind in STEPS:
            label = TITLES[kind].split()[-1] if kind != "datasets" else "dataset"
            if kind == here:
                text.append(f"[{label}]", style="bold reverse")
            elif kind in self.choices:
                text.append(f"{label}: {self.choices[kind]}", style="green")
            else:
                text.append(label, style="dim")
            text.append("  >  ", style="dim")
        text.append("[review]" if here == "review" else "review", style="bold reverse" if here == "review" else "dim")
        return text

    def action_back(self) -> None:
        self.app.pop_screen()
