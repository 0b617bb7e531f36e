"""SVG snapshots of the sweep screens, the sweep view, the sweep list and the compare screen at a fixed terminal size
(pytest-textual-snapshot; `--snapshot-update` to accept). Deterministic by construction: a prepared database with
fixed times and curves (no process), UTC, half-block grids, one thread per member, cursors that do not blink, and each
snapshot waits until its workers have delivered."""

from __future__ import annotations

import pytest
from sweep_testkit import make_sweep_db, no_blink, pilot_wait
from textual.widgets import OptionList

from difftui.tui.app import DifftuiApp
from difftui.tui.screens.compare import CompareScreen
from difftui.tui.screens.history import HistoryScreen
from difftui.tui.screens.sweep_add import SweepAddScreen
from difftui.tui.screens.sweep_grid import SweepGridScreen
from difftui.tui.screens.sweep_list import SweepListScreen
from difftui.tui.screens.sweep_setup import SweepSetupScreen
from difftui.tui.screens.sweep_view import SweepScreen
from difftui.tui.widgets.run_table import RunTable

pytestmark = pytest.mark.usefixtures("tui_env")

SIZE = (140, 40)


async def _history(pilot) -> None:
    app = pilot.app
    await pilot_wait(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.loaded, 30, "history")


async def _highlight(pilot, run_id: int) -> None:
    table = pilot.app.screen.query_one(RunTable)
    table.move_cursor(row=table.get_row_index(str(run_id)))
    await pilot.pause()


async def _grid_picker(pilot) -> None:
    app = pilot.app
    await _history(pilot)
    await _highlight(pilot, 1)
    await pilot.press("w")
    await pilot_wait(pilot, lambda: isinstance(app.screen, SweepGridScreen) and app.screen.entries, 60, "grids")
    options = app.screen.query_one("#grids", OptionList)
    while options.get_option_at_index(options.highlighted).id != "p1-dropout":
        await pilot.press("down")
    await pilot.pause()


def test_snapshot_sweep_grid_picker(snap_compare, tmp_path):
    assert snap_compare(DifftuiApp(db_path=make_sweep_db(tmp_path)), terminal_size=SIZE, run_before=_grid_picker)


def test_snapshot_sweep_setup(snap_compare, tmp_path):
    async def before(pilot):
        app = pilot.app
        await _grid_picker(pilot)
        await pilot.press("enter")
        await pilot_wait(pilot, lambda: isinstance(app.screen, SweepSetupScreen) and app.screen.plan, 60, "plan")
        await pilot.press("down", "space")                          # 0.2 off
        await pilot_wait(pilot, lambda: app.screen.plan is not None and len(app.screen.plan.members) == 2, 30,
                         "the re-plan")
        no_blink(app)
        await pilot.pause()

    assert snap_compare(DifftuiApp(db_path=make_sweep_db(tmp_path)), terminal_size=SIZE, run_before=before)


def test_snapshot_sweep_view(snap_compare, tmp_path):
    async def before(pilot):
        app = pilot.app
        await _history(pilot)
        await _highlight(pilot, 2)
        await pilot.press("g")
        await pilot_wait(pilot, lambda: isinstance(app.screen, SweepScreen) and app.screen.polls, 30, "the view")
        await pilot.pause()

    assert snap_compare(DifftuiApp(db_path=make_sweep_db(tmp_path)), terminal_size=SIZE, run_before=before)


def test_snapshot_sweep_view_with_a_failed_member_at_80x24(snap_compare, tmp_path):
    """Issue 16 item 7 at the small size: the sweep reads partial, the failed member's values carry the mark, and
    the metric-against-axis chart names the member it leaves out (on its border), run 4 highlighted."""
    async def before(pilot):
        app = pilot.app
        await _history(pilot)
        await _highlight(pilot, 2)
        await pilot.press("g")
        view = await pilot_wait(pilot, lambda: isinstance(app.screen, SweepScreen) and app.screen.polls
                                and app.screen, 30, "the view")
        table = view.query_one("#members")
        table.move_cursor(row=table.get_row_index("4"))
        await pilot.pause()

    assert snap_compare(DifftuiApp(db_path=make_sweep_db(tmp_path)), terminal_size=(80, 24), run_before=before)


def test_snapshot_sweep_list(snap_compare, tmp_path):
    async def before(pilot):
        app = pilot.app
        await _history(pilot)
        await pilot.press("W")
        await pilot_wait(pilot, lambda: isinstance(app.screen, SweepListScreen) and app.screen.loaded, 30, "list")
        await pilot.pause()

    assert snap_compare(DifftuiApp(db_path=make_sweep_db(tmp_path)), terminal_size=SIZE, run_before=before)


def test_snapshot_compare(snap_compare, tmp_path):
    async def before(pilot):
        app = pilot.app
        await _history(pilot)
        await _highlight(pilot, 3)
        await pilot.press("space")
        await _highlight(pilot, 2)
        await pilot.press("space", "c")
        await pilot_wait(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.polls
                         and len(app.screen.shown) == 2, 30, "the compare screen")
        await pilot.pause()

    assert snap_compare(DifftuiApp(db_path=make_sweep_db(tmp_path)), terminal_size=SIZE, run_before=before)


def test_snapshot_sweep_setup_at_80x24(snap_compare, tmp_path):
    """Issue 16 item 9: the sweep breadcrumb (base, grid, step) wraps in a narrow terminal rather than being cut."""
    async def before(pilot):
        app = pilot.app
        await _grid_picker(pilot)
        await pilot.press("enter")
        await pilot_wait(pilot, lambda: isinstance(app.screen, SweepSetupScreen) and app.screen.plan, 60, "plan")
        no_blink(app)
        await pilot.pause()

    assert snap_compare(DifftuiApp(db_path=make_sweep_db(tmp_path)), terminal_size=(80, 24), run_before=before)


def test_snapshot_sweep_add(snap_compare, tmp_path):
    """`a` on the sweep view: the add-a-value dialog over the view, with the paper's grid and the off-grid tick."""
    async def before(pilot):
        app = pilot.app
        await _history(pilot)
        await _highlight(pilot, 2)
        await pilot.press("g")
        await pilot_wait(pilot, lambda: isinstance(app.screen, SweepScreen) and app.screen.polls, 30, "the view")
        await pilot.press("a")
        await pilot_wait(pilot, lambda: isinstance(app.screen, SweepAddScreen), 10, "the add dialog")
        no_blink(app)
        await pilot.pause()

    assert snap_compare(DifftuiApp(db_path=make_sweep_db(tmp_path)), terminal_size=SIZE, run_before=before)
