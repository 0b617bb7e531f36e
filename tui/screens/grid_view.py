"""Enter on the dashboard: the grid shown in the panel, at the size of the whole terminal, centred, with all its
samples (half-blocks: at the largest integer scale that fits, else scaled down; graphics: scaled by the widget)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Container
from textual.screen import Screen
from textual.widgets import Footer, Static

from difftui.tui import bindings, graphics
from difftui.tui.grid_tiles import Tiling
from difftui.tui.widgets.grid_image import describe_grid, fit_picture

__all__ = ["GridViewScreen"]


class GridViewScreen(Screen[None]):
    HELP_TITLE = "full-size grid"
    BINDINGS = bindings.GRID_VIEW

    def __init__(self, image: Any, row: dict[str, Any] | None, renderer: str, best: str, run_name: str = "") -> None:
        super().__init__()
        self.image = image
        self.row = row
        self.renderer = renderer
        self.best = best
        self.run_name = run_name
        self.tiling: Tiling | None = None

    def compose(self) -> ComposeResult:
        yield Static(self._caption(), id="grid-view-caption", markup=False)
        with Container(id="grid-view-box"):
            yield graphics.widget_class(self.renderer)(None, id="grid-view-picture")
        yield Footer()

    def on_mount(self) -> None:
        self.call_after_refresh(self._fit)

    def on_resize(self) -> None:
        self.call_after_refresh(self._fit)

    def _fit(self) -> None:
        box = self.query_one("#grid-view-box")
        # One row kept free under the picture (see app.tcss).
        self.tiling = fit_picture(self.query_one("#grid-view-picture"), self.image, self.renderer,
                                  box.content_size.width, box.content_size.height - 1, keep_all=True)

    def _caption(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        if self.run_name:
            text.append(f"{self.run_name}  ", style="bold")
        if self.row is not None:
            text.append(f"step {self.row['step']:,}  ", style="bold")
        text.append_text(describe_grid(self.row, self.renderer))
        return text

    async def action_toggle_renderer(self) -> None:
        if self.best not in ("sixel", "kitty"):
            self.notify("this terminal did not answer for sixel or kitty graphics: half-blocks only")
            return
        self.renderer = "halfcell" if self.renderer == self.best else self.best
        await self.query_one("#grid-view-picture").remove()
        await self.query_one("#grid-view-box").mount(graphics.widget_class(self.renderer)(None, id="grid-view-picture"))
        self._fit()
        self.query_one("#grid-view-caption", Static).update(self._caption())

    def action_close(self) -> None:
        self.dismiss(None)
