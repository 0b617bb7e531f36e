"""A checkbox that reads as one: `[x]` when on, `[ ]` when off (Textual's draws an `X` in both states and only dims
it when off, which reads as checked)."""

from __future__ import annotations

from rich.segment import Segment
from textual.content import Content
from textual.strip import Strip
from textual.widgets import Checkbox, SelectionList
from textual.widgets._toggle_button import ToggleButton
from textual.widgets.option_list import OptionDoesNotExist

__all__ = ["TickBox", "TickList"]


class TickBox(Checkbox):
    @property
    def _button(self) -> Content:
        style = self.get_visual_style("toggle--button")
        return Content.assemble("[", ("x" if self.value else " ", style), "]")


class TickList(SelectionList):
    """A SelectionList whose boxes read `[x]` / `[ ]` like TickBox (Textual's draws an X on every line)."""

    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        segments = list(strip)
        if len(segments) < 3 or segments[1].text != ToggleButton.BUTTON_INNER:
            return strip
        try:
            selection = self.get_option_at_index(self.scroll_offset[1] + y)
        except OptionDoesNotExist:
            return strip
        style = segments[1].style
        mark = "x" if selection.value in self._selected else " "
        return Strip([Segment("[", style), Segment(mark, style), Segment("]", style), *segments[3:]],
                     strip.cell_length)
