"""The fixed-x_T sample grid, with a step scrubber through earlier grids.

`textual_image.widget.Image` picks the best the terminal offers (sixel, kitty graphics, else half-block characters);
it is imported at module import, before the app starts, because it queries the terminal once. PNG bytes are decoded
into a PIL image by the dashboard's workers, never here.
"""

from __future__ import annotations

import os
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static
from textual_image.widget import HalfcellImage, Image, SixelImage, TGPImage, UnicodeImage

__all__ = ["GridImage", "GridIndex", "image_class"]

# DIFFTUI_GRAPHICS pins the method (the snapshot tests pin half-blocks); "auto" lets textual_image decide.
IMAGE_CLASSES = {"auto": Image, "sixel": SixelImage, "kitty": TGPImage, "halfcell": HalfcellImage,
                 "unicode": UnicodeImage}


def image_class() -> type:
    return IMAGE_CLASSES.get(os.environ.get("DIFFTUI_GRAPHICS", "auto").lower(), Image)


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
    def current(self) -> dict[str, Any] | None:
        return self.rows[self.position] if self.rows and self.position >= 0 else None


class GridImage(Vertical):
    """Title line (step, position, sampler) above the grid image."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.index = GridIndex()
        self.shown_id: int | None = None

    def compose(self) -> ComposeResult:
        yield Static(self._caption(), id="grid-caption", markup=False)
        yield image_class()(None, id="grid-picture")

    def _caption(self) -> Text:
        row = self.index.current
        if row is None:
            return Text("sample grid - none yet", style="dim")
        n = len(self.index.rows)
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f"step {row['step']}", style="bold")
        text.append(f"  {self.index.position + 1}/{n}")
        text.append("  live" if self.index.live else "  [ ] scrub, end: live",
                    style="green" if self.index.live else "dim")
        return text

    def _subtitle(self) -> str:
        row = self.index.current
        if row is None:
            return ""
        parts = [row.get("sampler") or "", f"NFE {row['nfe']}" if row.get("nfe") else ""]
        return " ".join(p for p in parts if p)

    def add_rows(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.index.extend(rows)
            self.refresh_caption()

    def refresh_caption(self) -> None:
        self.query_one("#grid-caption", Static).update(self._caption())
        self.border_subtitle = self._subtitle()

    def show(self, sample_id: int, image: Any) -> None:
        """Display a decoded grid (PIL image); ignored when the scrubber has moved on to another one."""
        current = self.index.current
        if current is not None and current["id"] != sample_id:
            return
        self.shown_id = sample_id
        self.query_one("#grid-picture").image = image
        self.refresh_caption()
