"""A sample grid re-tiled for a panel of half-block characters (issue 16 item 12).

A half-block cell shows two pixels (one above the other). The engine's 8x8 grid of 8x8-pixel digits is 64 columns
and 32 rows at one pixel per pixel; squeezed by a fractional factor into a dashboard panel of ~46x23 cells, no digit
could be read. Here the grid's tiles are found (engine/run/grid_layout.py), brought back to their native size (the
engine enlarged them by nearest neighbour), and laid out again at the largest integer scale at which all of them fit;
when not even one pixel per pixel fits, as many whole tiles as fit are shown at scale 1 (the first rows and columns,
so each keeps its place in the grid), and the caption says how many. The full-size view keeps all tiles.

Pure functions of PIL images (no Textual), cheap enough for the UI thread (a few dozen crops of a few hundred
pixels), and cached by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from difftui.engine.run.grid_layout import GRID_SIDE, tile_boxes

__all__ = ["Tiling", "fit_grid", "native_scale", "PAD"]

PAD = 1                                         # pixels between tiles when re-tiled (a half-block row is 2 px)


@dataclass(frozen=True)
class Tiling:
    image: Any                                  # the PIL image to draw (one pixel per half-block pixel when scale > 0)
    shown: int                                  # tiles in it
    total: int                                  # tiles in the grid
    scale: int                                  # integer scale of a native tile; 0 when drawn scaled down to fit

    @property
    def partial(self) -> bool:
        return self.shown < self.total


def native_scale(tiles: list[np.ndarray]) -> int:
    """The nearest-neighbour factor the engine enlarged the tiles by: the largest k such that every tile is made of
    k x k blocks of one colour (1 when the tiles are at their native size)."""
    size = tiles[0].shape[0]
    for k in range(size, 1, -1):
        if size % k:
            continue
        if all(np.array_equal(t, t[::k, ::k].repeat(k, axis=0).repeat(k, axis=1)) for t in tiles):
            return k
    return 1


def fit_grid(image: Any, width_px: int, height_px: int, *, keep_all: bool = False) -> Tiling:
    """`image` (a grid PNG, decoded) laid out for a box of `width_px` x `height_px` pixels at an integer scale.

    All tiles when they fit at scale >= 1; else (unless `keep_all`) as many whole rows and columns of tiles as fit at
    scale 1. With `keep_all`, a box too small for scale 1 gets the image as it is (the renderer scales it down). An
    image that is not a grid of the engine's layout is returned as it is."""
    from PIL import Image
    boxes = tile_boxes(*image.size)
    if boxes is None:
        return Tiling(image, 1, 1, 0)
    total = len(boxes)
    rows = total // GRID_SIDE
    arrays = [np.asarray(image.crop(box)) for box in boxes]
    k = native_scale(arrays)
    tile = arrays[0].shape[0] // k

    def span(n: int, scale: int) -> int:
        return n * (tile * scale + PAD) + PAD

    scale = 0
    for s in range(max(width_px, height_px) // max(tile, 1), 0, -1):
        if span(GRID_SIDE, s) <= width_px and span(rows, s) <= height_px:
            scale = s
            break
    if scale:
        cols, keep_rows = GRID_SIDE, rows
    elif keep_all:
        return Tiling(image, total, total, 0)
    else:
        scale = 1
        cols = max(1, min(GRID_SIDE, (width_px - PAD) // (tile + PAD)))
        keep_rows = max(1, min(rows, (height_px - PAD) // (tile + PAD)))
    height = span(keep_rows, scale)
    canvas = Image.new(image.mode, (span(cols, scale), height + height % 2))    # even: two pixels per cell
    step = tile * scale + PAD
    for r in range(keep_rows):
        for c in range(cols):
            native = arrays[r * GRID_SIDE + c][::k, ::k]
            big = native.repeat(scale, axis=0).repeat(scale, axis=1)
            canvas.paste(Image.fromarray(np.ascontiguousarray(big)), (PAD + c * step, PAD + r * step))
    return Tiling(canvas, cols * keep_rows, total, scale)
