"""A checkbox that reads as one: `[x]` when on, `[ ]` when off (Textual's draws an `X` in both states and only dims
it when off, which reads as checked)."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Checkbox

__all__ = ["TickBox"]


class TickBox(Checkbox):
    @property
    def _button(self) -> Content:
        style = self.get_visual_style("toggle--button")
        return Content.assemble("[", ("x" if self.value else " ", style), "]")
