"""Issue 16 item 12: grids as a user sees them.

- sixel: every colour register is defined before the first pixel (XTerm 379 painted the opening bands light grey
  when registers were defined after them), and the image is unchanged pixel for pixel (decoded both ways here);
- sixel: after the image the cursor goes back to the end of the widget's own last row, so Textual redraws what lies
  right of the image on that row (the full view kept a few `│` of the dashboard there);
- half-blocks: the engine's grid is re-tiled at an integer scale, with fewer tiles when the panel is too small for
  all 64 at one pixel per half-block pixel; the full-size view keeps all of them, centred.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from PIL import Image
from textual.app import App
from textual_image._sixel import image_to_sixels
from tui_helpers import make_dydit_db, pilot_wait

from difftui.engine.run.grid_layout import GRID_SIDE, tile_boxes
from difftui.engine.run.sample_grid import grid_image
from difftui.tui.app import DifftuiApp
from difftui.tui.grid_tiles import PAD, fit_grid
from difftui.tui.screens.dashboard import DashboardScreen
from difftui.tui.screens.grid_view import GridViewScreen
from difftui.tui.screens.history import HistoryScreen
from difftui.tui.widgets.grid_image import GridImage
from difftui.tui.widgets.sixel_image import SixelImage, _Impl, hoist_registers

# ---- a sixel decoder (enough of DEC's format to compare two encodings) -------------------------------------------


def decode_sixel(data: str) -> dict[tuple[int, int], tuple[int, ...]]:
    """(x, y) -> the colour painted there last (registers resolved when painted)."""
    body = re.match(r'\x1bP[0-9;]*q(?:"[0-9;]*)?(.*)\x1b\\', data, re.S).group(1)
    registers: dict[int, tuple[int, ...]] = {}
    pixels: dict[tuple[int, int], tuple[int, ...]] = {}
    x = band = 0
    colour = None
    i = 0
    while i < len(body):
        c = body[i]
        if c == "#":
            m = re.match(r"#(\d+)((?:;\d+){4})?", body[i:])
            reg = int(m.group(1))
            if m.group(2):
                registers[reg] = tuple(int(v) for v in m.group(2)[1:].split(";"))
            colour = reg
            i += m.end()
            continue
        if c == "!":
            m = re.match(r"!(\d+)(.)", body[i:], re.S)
            count, ch = int(m.group(1)), m.group(2)
            i += m.end()
        elif c in "$-":
            x = 0
            band += c == "-"
            i += 1
            continue
        else:
            count, ch = 1, c
            i += 1
        bits = ord(ch) - 0x3F
        for _ in range(count):
            for row in range(6):
                if bits >> row & 1:
                    pixels[x, band * 6 + row] = registers[colour]
            x += 1
    return pixels


def _pixel_before_definition(data: str) -> bool:
    """Whether a colour register is defined after the first pixel was painted."""
    body = re.match(r'\x1bP[0-9;]*q(?:"[0-9;]*)?(.*)\x1b\\', data, re.S).group(1)
    painted = False
    for m in re.finditer(r"#\d+(;\d+;\d+;\d+;\d+)?|!\d+[?-~]|[?-~]", body):
        if m.group(0).startswith("#"):
            if m.group(1) and painted:
                return True
        else:
            painted = True
    return False


def engine_grid(seed: int = 0) -> Image.Image:
    """A grid as the engine draws it (8x8 tiles of 8x8 samples, enlarged x4 by nearest neighbour, 2 px pad)."""
    g = torch.Generator().manual_seed(seed)
    return grid_image(torch.rand((64, 3, 8, 8), generator=g) * 2 - 1).convert("RGB")


def test_the_sixel_widget_defines_every_register_before_the_first_pixel_and_draws_the_same_image():
    image = engine_grid().resize((180, 180), Image.NEAREST)
    raw = image_to_sixels(image)
    assert _pixel_before_definition(raw)                     # textual-image's own stream: the XTerm 379 bar
    ours = _Impl(image)._image_to_sixels(image)
    assert not _pixel_before_definition(ours)
    assert ours == hoist_registers(raw)
    assert decode_sixel(ours) == decode_sixel(raw) and len(decode_sixel(ours)) == 180 * 180


def test_hoisting_leaves_a_stream_alone_when_a_register_is_redefined():
    stream = '\x1bP0;0;0q"1;1;2;6#0;2;0;0;0~#0;2;100;0;0~\x1b\\'
    assert hoist_registers(stream) == stream


async def test_the_sixel_widget_ends_on_its_own_last_row():
    class One(App):
        def compose(self):
            yield SixelImage(engine_grid(), id="pic")

    app = One()
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        impl = app.query_one(_Impl)
        region = app.screen.find_widget(impl).visible_region
        segments = list(impl._get_sixel_segments("SIXEL"))
        assert segments[1].text == "SIXEL"
        # CSI row;col H, 1-based: the widget's last row (region.bottom - 1, 0-based), just right of it.
        assert segments[-1].text == f"\x1b[{region.bottom};{region.right + 1}H"


# ---- half-blocks ------------------------------------------------------------------------------------------------


def test_a_grid_too_big_for_its_box_shows_fewer_tiles_at_one_pixel_per_pixel():
    image = engine_grid()
    boxes = tile_boxes(*image.size)
    assert len(boxes) == 64 and boxes[0] == (2, 2, 34, 34)
    tiling = fit_grid(image, 46, 46)                          # the 160x45 panel: 46 cells, 23 rows
    assert tiling.scale == 1 and (tiling.shown, tiling.total) == (25, 64)
    side = 5 * (8 + PAD) + PAD
    assert tiling.image.size == (side, side + side % 2)       # an even height: two pixels a row
    out = np.asarray(tiling.image)
    grid = np.asarray(image)
    for r, c in ((0, 0), (2, 3), (4, 4)):                     # tile (r, c) is the engine's tile (r, c), native size
        left, top = boxes[r * GRID_SIDE + c][:2]
        native = grid[top:top + 32:4, left:left + 32:4]
        x, y = PAD + c * (8 + PAD), PAD + r * (8 + PAD)
        assert np.array_equal(out[y:y + 8, x:x + 8], native)


def test_a_box_that_holds_every_tile_gets_them_all_at_the_largest_integer_scale():
    tiling = fit_grid(engine_grid(), 160, 160)
    assert (tiling.shown, tiling.scale) == (64, 2)            # 8 x (16 + 1) + 1 = 137 <= 160 < 8 x 25 + 1
    assert not tiling.partial
    small = fit_grid(engine_grid(), 40, 40, keep_all=True)     # the full view keeps every tile, scaled down
    assert small.shown == 64 and small.scale == 0 and small.image.size == (274, 274)


def test_an_image_that_is_not_a_grid_is_shown_as_it_is():
    image = Image.new("RGB", (100, 60))
    assert fit_grid(image, 20, 20).image is image


@pytest.mark.parametrize("size", [(160, 45), (80, 24)])
async def test_half_block_panels_draw_whole_tiles_and_the_full_view_all_of_them_centred(tmp_path, size):
    from difftui.engine.store import Store
    db = make_dydit_db(tmp_path)
    buffer = __import__("io").BytesIO()
    engine_grid().save(buffer, format="PNG")
    with Store(db) as store:
        store.add_sample(1, step=2100, kind="grid", sampler="DDIM eta=0 N=50 linear", nfe=50, png=buffer.getvalue())
    app = DifftuiApp(db_path=db)
    async with app.run_test(size=size) as pilot:
        await pilot_wait(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.loaded, 30, "history")
        app.open_dashboard(1)
        dash = await pilot_wait(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.polls
                              and app.screen, 30, "dash")
        grid = dash.query_one(GridImage)
        await pilot_wait(pilot, lambda: grid.tiling is not None and grid.index.current["step"] == 2100, 30, "tiling")
        await pilot.pause()
        tiling = grid.tiling
        picture = grid.query_one("#grid-picture")
        assert tiling.scale >= 1 and tiling.partial
        assert (picture.size.width, 2 * picture.size.height) == tiling.image.size    # one pixel per half cell
        width, height = grid.picture_box()
        assert tiling.image.width <= width and tiling.image.height <= 2 * height
        assert f"{tiling.shown} of 64 samples, Enter: all" in grid.border_subtitle
        await pilot.press("enter")
        view = await pilot_wait(pilot, lambda: isinstance(app.screen, GridViewScreen) and app.screen, 10, "full")
        await pilot_wait(pilot, lambda: view.tiling is not None, 10, "the full view's tiling")
        await pilot.pause()
        assert view.tiling.shown == 64
        box = view.query_one("#grid-view-box").region
        pic = view.query_one("#grid-view-picture").region
        assert abs((pic.x + pic.right) - (box.x + box.right)) <= 1                    # centred
