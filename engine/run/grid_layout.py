"""The fixed-x_T grid's layout (playbook 5.0): `GRID_SIDE` x `GRID_SIDE` tiles, each enlarged by nearest neighbour
to at least `MIN_TILE_PX` pixels, `PAD_PX` pixels of black around and between them.

Torch-free on purpose: sample_grid.py draws grids with these numbers, and the TUI reads them to find the tiles in a
grid PNG (a panel too small for all 64 samples at one pixel per pixel shows fewer of them, at an integer scale).
"""

from __future__ import annotations

import math

__all__ = ["GRID_SIDE", "MIN_TILE_PX", "PAD_PX", "tile_scale", "tile_boxes"]

GRID_SIDE = 8                                       # playbook 5.0: an 8x8 grid from 64 fixed latents
MIN_TILE_PX = 32
PAD_PX = 2


def tile_scale(height: int, width: int, min_tile: int = MIN_TILE_PX) -> int:
    """The nearest-neighbour factor by which a height x width sample is enlarged in the grid."""
    return max(1, math.ceil(min_tile / max(height, width)))


def tile_boxes(width: int, height: int, *, side: int = GRID_SIDE, pad: int = PAD_PX
               ) -> list[tuple[int, int, int, int]] | None:
    """The (left, top, right, bottom) box of every tile of a `width` x `height` grid image, row by row, or None when
    the image is not a grid of this layout (a square tile, `side` per row, `pad` around each)."""
    step, rest = divmod(width - pad, side)          # a tile and the pad after it
    if rest or step <= pad:
        return None
    rows, rest = divmod(height - pad, step)
    if rest or not 1 <= rows <= side:
        return None
    tile = step - pad
    return [(pad + c * step, pad + r * step, pad + c * step + tile, pad + r * step + tile)
            for r in range(rows) for c in range(side)]
