"""The fixed-x_T sample grid, with a step scrubber through earlier grids.

The panel follows the newest grid as it arrives unless the user is scrubbing (`[` / `]`; `end` goes back to live).
Its caption says which step, sampler and NFE drew the grid shown and which renderer draws it: sixel or kitty
graphics where the terminal answered for them before the app started (graphics.py), half-block characters
otherwise; `i` switches between the terminal's graphics and half-blocks. PNG bytes are decoded into PIL images by
the dashboard's workers, never here.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from difftui.tui import graphics

__all__ = ["GridImage", "GridIndex", "describe_grid"]


class GridIndex:
    """The grids of a run in step order, and which one is shown (`live`: always the newest)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.position = -1                     # index into rows; -1 while there is none
        self.live = True                       # follow the newest grid as it arrives

    def extend(self, rows: list[dict[str, Any]]) -> None:
        known = {r["id"] for r in self.rows}
        self.rows.extend(r for r in rows if r["id"] not in known)
        self.rows.sort(key=lambda r: (r["step"], r["id"]))
        if self.live:
            self.position = len(self.rows) - 1

    def move(self, delta: int) -> dict[str, Any] | None:
        """Step the scrubber; returns the row to show, or None when it did not move."""
        if not self.rows:
            return None
        new = min(max(self.position + delta, 0), len(self.rows) - 1)
        self.live = new == len(self.rows) - 1
        if new == self.position:
            return None
        self.position = new
        return self.rows[new]

    def latest(self) -> dict[str, Any] | None:
        if not self.rows:
            return None
        self.live = True
        if self.position == len(self.rows) - 1:
            return None
        self.position = len(self.rows) - 1
        return self.rows[-1]

    @property
    def newest(self) -> dict[str, Any] | None:
        return self.rows[-1] if self.rows else None

    @property
    def current(self) -> dict[str, Any] | None:
        return self.rows[self.position] if self.rows and self.position >= 0 else None


def describe_grid(row: dict[str, Any] | None, renderer: str) -> Text:
    """'DDIM eta=0 N=50 linear · NFE 50 · half-blocks': what drew the grid and what draws it here."""
    text = Text(no_wrap=True, overflow="ellipsis")
    if row is not None:
        if row.get("sampler"):
            text.append(str(row["sampler"]))
            text.append(" · ", style="dim")
        if row.get("nfe"):
            text.append(f"NFE {row['nfe']}")
            text.append(" · ", style="dim")
    text.append(graphics.label(renderer), style="dim")
    return text


class GridImage(Vertical):
    """Caption (step, position, live; sampler, NFE, renderer) above the grid image."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.index = GridIndex()
        self.shown_id: int | None = None
        self.image: Any = None
        self._caption_key: tuple | None = None
        self.renderer = graphics.preferred()
        self.best = self.renderer if self.renderer in ("sixel", "kitty") else (graphics.detected() or "halfcell")

    def compose(self) -> ComposeResult:
        yield Static(self._caption(), id="grid-caption", markup=False)
        yield Static(describe_grid(None, self.renderer), id="grid-source", markup=False)
        yield graphics.widget_class(self.renderer)(None, id="grid-picture")

    def _caption(self) -> Text:
        row = self.index.current
        if row is None:
            return Text("sample grid - none yet", style="dim")
        n = len(self.index.rows)
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f"step {row['step']:,}", style="bold")
        text.append(f"  {self.index.position + 1}/{n}")
        if self.index.live:
            text.append("  live", style="green")
        else:
            newest = self.index.newest
            text.append(f"  scrubbing (newest: step {newest['step']:,}; end: live)" if newest else "  scrubbing",
                        style="yellow")
        return text

    def add_rows(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.index.extend(rows)
            self.refresh_caption()

    def refresh_caption(self) -> None:
        caption, source = self._caption(), describe_grid(self.index.current, self.renderer)
        key = (caption.plain, tuple(caption.spans), source.plain, tuple(source.spans))
        if key != self._caption_key:                # two fixed lines: no layout pass, and none when unchanged
            self._caption_key = key
            # The renderer again where a narrow panel cannot cut it off.
            self.border_subtitle = graphics.LABELS.get(self.renderer, self.renderer)
            self.query_one("#grid-caption", Static).update(caption, layout=False)
            self.query_one("#grid-source", Static).update(source, layout=False)

    def clear(self) -> None:
        """No grid (a run rewound to before its first grid): forget the index and the picture shown."""
        self.index.reset()
        self.shown_id = None
        self.image = None
        self.query_one("#grid-picture").image = None
        self.refresh_caption()

    def show(self, sample_id: int, image: Any) -> None:
        """Display a decoded grid (PIL image); ignored when the scrubber has moved on to another one."""
        current = self.index.current
        if current is not None and current["id"] != sample_id:
            return
        self.shown_id = sample_id
        self.image = image
        self.query_one("#grid-picture").image = image
        self.refresh_caption()

    # -- the renderer ---------------------------------------------------------------------------------------------

    async def toggle_renderer(self) -> str | None:
        """Switch between the terminal's graphics (sixel / kitty) and half-blocks; returns the new renderer, or None
        when the terminal has no graphics to switch to."""
        if self.best not in ("sixel", "kitty"):
            return None
        await self.set_renderer("halfcell" if self.renderer == self.best else self.best)
        return self.renderer

    async def set_renderer(self, kind: str) -> None:
        if kind == self.renderer:
            return
        self.renderer = kind
        await self.query_one("#grid-picture").remove()
        await self.mount(graphics.widget_class(kind)(self.image, id="grid-picture"))
        self.refresh_caption()
