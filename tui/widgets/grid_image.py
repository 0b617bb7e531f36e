"""The fixed-x_T sample grid, with a step scrubber through earlier grids.

The panel follows the newest grid as it arrives unless the user is scrubbing (`[` / `]`; `end` goes back to live).
Its caption says which step, sampler and NFE drew the grid shown and which renderer draws it: sixel or kitty
graphics where the terminal answered for them before the app started (graphics.py), half-block characters
otherwise; `i` switches between the terminal's graphics and half-blocks. PNG bytes are decoded into PIL images by
the dashboard's workers, never here.

With half-blocks the grid is laid out for the panel at an integer scale (grid_tiles.py): all 64 samples when they
fit at one pixel per half-block pixel, else as many as fit, said in the panel's subtitle (Enter shows them all); a grid
squeezed by a fractional factor into the panel could not be read (issue 16 item 12).
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from difftui.tui import graphics
from difftui.tui.grid_tiles import Tiling, fit_grid

__all__ = ["GridImage", "GridIndex", "describe_grid", "fit_picture", "TILED"]

TILED = ("halfcell",)                          # renderers drawn one pixel per half cell, laid out by fit_grid


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


def fit_picture(picture: Any, image: Any, renderer: str, width: int, height: int, *, keep_all: bool = False
                ) -> Tiling | None:
    """Show `image` in `picture` (a textual-image widget) for a box of `width` x `height` cells: with half-blocks
    re-tiled at an integer scale and sized to exactly one pixel per half cell; with graphics as it is, scaled by the
    widget (a terminal's pixels are fine enough). Returns the tiling used (None when not tiled)."""
    if image is None or renderer not in TILED or width <= 0 or height <= 0:
        picture.styles.width, picture.styles.height = "auto", "1fr"
        picture.image = image
        return None
    tiling = fit_grid(image, width, 2 * height, keep_all=keep_all)
    if tiling.scale:
        picture.styles.width, picture.styles.height = tiling.image.width, tiling.image.height // 2
    else:                                      # too small even at scale 1 (keep_all): the widget scales it down
        picture.styles.width, picture.styles.height = "auto", "1fr"
    picture.image = tiling.image
    return tiling


def describe_grid(row: dict[str, Any] | None, renderer: str) -> Text:
    """'DDIM eta=0 N=50 linear · NFE 50 · half-blocks': what drew the grid and what draws it here (wrapped, never
    cut, where the panel is narrow)."""
    text = Text()
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
        self.tiling: Tiling | None = None
        self._fitted: tuple | None = None

    def compose(self) -> ComposeResult:
        yield Static(self._caption(), id="grid-caption", markup=False)
        yield Static(describe_grid(None, self.renderer), id="grid-source", markup=False)
        yield graphics.widget_class(self.renderer)(None, id="grid-picture")

    def _caption(self) -> Text:
        row = self.index.current
        if row is None:
            return Text("sample grid - none yet", style="dim")
        n = len(self.index.rows)
        text = Text()                               # wraps rather than cut the scrubbing hint in a narrow panel
        text.append(f"step {row['step']:,}", style="bold")
        text.append(f"  {self.index.position + 1}/{n}")
        if self.index.live:
            text.append("  live", style="green")
        else:
            newest = self.index.newest
            text.append(f"  scrubbing · end: live (step {newest['step']:,})" if newest else "  scrubbing",
                        style="yellow")
        return text

    def add_rows(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.index.extend(rows)
            self.refresh_caption()

    def refresh_caption(self) -> None:
        caption, source = self._caption(), describe_grid(self.index.current, self.renderer)
        # The renderer again where a narrow panel cannot cut it off, after how many samples are shown when not all.
        label = graphics.LABELS.get(self.renderer, self.renderer)
        tiling = self.tiling
        self.border_subtitle = (f"{tiling.shown} of {tiling.total} samples, Enter: all · {label}"
                                if tiling is not None and tiling.partial else label)
        key = (caption.plain, tuple(caption.spans), source.plain, tuple(source.spans))
        if key != self._caption_key:                # they change with a new grid or the scrubber, not every poll
            self._caption_key = key
            self.query_one("#grid-caption", Static).update(caption)
            self.query_one("#grid-source", Static).update(source)
            self.call_after_refresh(self._fit)      # their height (wrapped or not) sets the picture's box

    def clear(self) -> None:
        """No grid (a run rewound to before its first grid): forget the index and the picture shown."""
        self.index.reset()
        self.shown_id = None
        self.image = None
        self.tiling = None
        self._fitted = None
        self.query_one("#grid-picture").image = None
        self.refresh_caption()

    def show(self, sample_id: int, image: Any) -> None:
        """Display a decoded grid (PIL image); ignored when the scrubber has moved on to another one."""
        current = self.index.current
        if current is not None and current["id"] != sample_id:
            return
        self.shown_id = sample_id
        self.image = image
        self._fit()
        self.refresh_caption()

    def picture_box(self) -> tuple[int, int]:
        """The cells the picture may take: the panel's content less the caption lines."""
        captions = sum(self.query_one(f"#{i}").outer_size.height for i in ("grid-caption", "grid-source"))
        return self.content_size.width, self.content_size.height - captions

    def _fit(self) -> None:
        if not self.is_mounted:
            return
        width, height = self.picture_box()
        key = (self.renderer, width, height)
        if self._fitted is not None and self._fitted[0] is self.image and self._fitted[1:] == key:
            return                                  # this very image at this size: already laid out
        self._fitted = (self.image, *key)
        self.tiling = fit_picture(self.query_one("#grid-picture"), self.image, self.renderer, width, height)
        self.refresh_caption()

    def on_resize(self) -> None:
        if self.image is not None:
            self._fit()
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
        await self.mount(graphics.widget_class(kind)(None, id="grid-picture"))
        self._fitted = None
        self._fit()
        self.refresh_caption()
