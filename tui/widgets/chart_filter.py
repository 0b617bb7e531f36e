"""The dashboard's chart filter: an input that takes focus only when the user asks for it with `/`.

A plain Input is in the focus chain, so a stray Tab put the cursor in it and every later key (`l`, `e`, digits) was
typed into the filter: no chart matched and the metric grid went blank (issue 16 item 10). This one is out of the
focus chain until `edit()` (the `/` key) and leaves it again when it loses focus; what it holds stays visible in the
bar, with what it does to the grid.
"""

from __future__ import annotations

from textual.widgets import Input

__all__ = ["ChartFilter"]


class ChartFilter(Input):
    """Focusable only while being edited (`edit()`), so Tab and the mouse wheel never land in it by accident."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(placeholder="/ filters the charts (e.g. loss, lr, eval)", id=id, compact=True)
        self.can_focus = False

    def edit(self) -> None:
        """Take focus for typing (the dashboard's `/`)."""
        self.can_focus = True
        self.focus()

    def on_blur(self) -> None:
        self.can_focus = False
