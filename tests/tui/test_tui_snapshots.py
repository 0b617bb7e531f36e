"""SVG snapshots of every screen at a fixed terminal size (pytest-textual-snapshot; `--snapshot-update` to accept).

Deterministic by construction: the runs come from a prepared database with fixed times (UTC), the grid is drawn
from a formula and shown with half-blocks, input cursors do not blink, and each snapshot waits until its workers
have delivered (presets read, config resolved and measured, dashboard polled).
"""

from __future__ import annotations

from tui_helpers import make_dydit_db, no_blink, wait_for

from difftui.tui.app import DifftuiApp
from difftui.tui.screens.confirm import ConfirmScreen
from difftui.tui.screens.dashboard import DashboardScreen
from difftui.tui.screens.help import HelpScreen
from difftui.tui.screens.history import HistoryScreen
from difftui.tui.screens.new_run import PresetPickerScreen
from difftui.tui.screens.review import ReviewScreen

SIZE = (140, 40)
NARROW = (100, 30)
WIDE = (160, 45)


async def _history(pilot) -> None:
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.loaded, 30, "history")
    no_blink(app)
    await pilot.pause()


async def _picker(pilot, kind: str) -> None:
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, PresetPickerScreen) and app.screen.kind == kind
                   and app.screen.entries, 30, f"the {kind} picker")
    no_blink(app)
    await pilot.pause()


def test_snapshot_history(snap_compare, prepared_db):
    assert snap_compare(DifftuiApp(db_path=prepared_db), terminal_size=SIZE, run_before=_history)


def test_snapshot_delete_confirm(snap_compare, prepared_db):
    async def before(pilot):
        await _history(pilot)
        await pilot.press("down", "d")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen), 10, "the confirm dialog")
        await pilot.pause()

    assert snap_compare(DifftuiApp(db_path=prepared_db), terminal_size=SIZE, run_before=before)


def test_snapshot_dataset_picker(snap_compare, tmp_path):
    async def before(pilot):
        await _picker(pilot, "datasets")          # an empty database opens the new-run flow

    assert snap_compare(DifftuiApp(db_path=tmp_path / "runs.db"), terminal_size=SIZE, run_before=before)


def test_snapshot_backbone_picker(snap_compare, tmp_path):
    async def before(pilot):
        await _picker(pilot, "datasets")
        await pilot.press("enter")
        await _picker(pilot, "backbones")

    assert snap_compare(DifftuiApp(db_path=tmp_path / "runs.db"), terminal_size=SIZE, run_before=before)


def test_snapshot_review(snap_compare, tmp_path):
    async def before(pilot):
        app = pilot.app
        for kind in ("datasets", "backbones", "samplers", "recipes"):
            await _picker(pilot, kind)
            await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewScreen) and app.screen.facts, 60,
                       "the measured config")
        no_blink(app)
        await pilot.pause()

    assert snap_compare(DifftuiApp(db_path=tmp_path / "runs.db"), terminal_size=SIZE, run_before=before)


def test_snapshot_dashboard(snap_compare, prepared_db):
    async def before(pilot):
        app = pilot.app
        await _history(pilot)
        await pilot.press("down", "down", "down", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.polls
                       and app.screen.query_one("#grid").shown_id is not None, 30, "the dashboard")
        await pilot.pause()

    assert snap_compare(DifftuiApp(db_path=prepared_db), terminal_size=SIZE, run_before=before)


async def _dashboard(pilot, run_id: int) -> None:
    app = pilot.app
    await _history(pilot)
    app.open_dashboard(run_id)
    await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.polls
                   and app.screen.query_one("#grid").shown_id is not None, 30, "the dashboard")
    no_blink(app)
    await pilot.pause()


def test_snapshot_dashboard_dydit_flops_panel_and_metric_grid(snap_compare, tmp_path):
    """A DyDiT run on a GPU: the metric grid (L_simple, F_dyn/F_static with its target and band, ...), the FLOPs
    panel with its verdict, the GPU panel with a failed reading, the grid with its sampler and renderer."""
    db = make_dydit_db(tmp_path)

    async def before(pilot):
        await _dashboard(pilot, 1)

    assert snap_compare(DifftuiApp(db_path=db), terminal_size=WIDE, run_before=before)


def test_snapshot_dashboard_at_100x30(snap_compare, tmp_path):
    db = make_dydit_db(tmp_path)

    async def before(pilot):
        await _dashboard(pilot, 1)

    assert snap_compare(DifftuiApp(db_path=db), terminal_size=NARROW, run_before=before)


def test_snapshot_help_on_the_dashboard(snap_compare, prepared_db):
    async def before(pilot):
        await _dashboard(pilot, 1)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, HelpScreen), 10, "the help screen")
        await pilot.pause()

    assert snap_compare(DifftuiApp(db_path=prepared_db), terminal_size=SIZE, run_before=before)


def test_snapshot_history_at_100x30(snap_compare, prepared_db):
    assert snap_compare(DifftuiApp(db_path=prepared_db), terminal_size=NARROW, run_before=_history)


COMPACT = (80, 24)


def test_snapshot_dashboard_compact_at_80x24(snap_compare, tmp_path):
    """Issue 16 item 9: below 120x30 the dashboard is the metric grid and one side panel (here the grid, its samples
    at one pixel per half-block pixel, as many as fit, said in the panel's subtitle); `p` in the footer."""
    db = make_dydit_db(tmp_path)

    async def before(pilot):
        await _dashboard(pilot, 1)

    assert snap_compare(DifftuiApp(db_path=db), terminal_size=COMPACT, run_before=before)


def test_snapshot_dashboard_compact_side_panel_switched_to_flops(snap_compare, tmp_path):
    db = make_dydit_db(tmp_path)

    async def before(pilot):
        await _dashboard(pilot, 1)
        await pilot.press("p", "p", "p")                  # grid -> GPU -> events -> FLOPs budget
        await pilot.pause()

    assert snap_compare(DifftuiApp(db_path=db), terminal_size=COMPACT, run_before=before)


def test_snapshot_compare_ten_runs_in_rows(snap_compare, tmp_path):
    """Issue 16 item 9: ten runs compared at 160x45 are the rows of the tables (each with its colour in the chart,
    which draws no legend over the curves), every value and header whole."""
    from test_tui_layout import make_compare_db

    from difftui.tui.screens.compare import CompareScreen
    db = make_compare_db(tmp_path, 10)

    async def before(pilot):
        app = pilot.app
        await _history(pilot)
        app.open_compare(list(range(1, 11)))
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.polls
                       and app.screen.summaries, 30, "compare")
        await pilot.pause()

    assert snap_compare(DifftuiApp(db_path=db), terminal_size=WIDE, run_before=before)
