"""Issue 16 item 10, the TUI half: focus and small inconsistencies a new user met, each driven by keys in the real
app (App.run_test) on a prepared database.

- a stray Tab on the dashboard must not put the cursor in the chart filter (later keys were typed into it and every
  chart vanished); `/` does, and the filter says what it holds; esc clears it;
- `e` off and on again restores the smoothing chosen with - / +, not the default;
- every screen's help has a title in words, never a class name ("keys: CompareScreen").
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest
from textual import events
from textual.screen import Screen
from tui_helpers import pilot_wait

from difftui.tui.app import DifftuiApp
from difftui.tui.screens.dashboard import DashboardScreen
from difftui.tui.screens.help import HelpScreen, help_title
from difftui.tui.screens.history import HistoryScreen
from difftui.tui.widgets.chart_filter import ChartFilter
from difftui.tui.widgets.metric_chart import MetricGrid

SIZE = (140, 40)


async def _dashboard(pilot, run_id: int = 1) -> DashboardScreen:
    app = pilot.app
    await pilot_wait(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.loaded, 30, "history")
    app.open_dashboard(run_id)
    screen = await pilot_wait(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.polls
                            and app.screen.query_one(MetricGrid).charts and app.screen, 30, "the dashboard")
    await pilot.pause()
    return screen


async def test_tab_never_puts_the_cursor_in_the_chart_filter_and_slash_does(prepared_db):
    app = DifftuiApp(db_path=prepared_db)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _dashboard(pilot)
        grid = screen.query_one(MetricGrid)
        chart_filter = screen.query_one(ChartFilter)
        shown = len(grid.visible())
        assert shown >= 2
        # Tab through the whole focus chain twice, then type what a user types on the dashboard.
        for _ in range(2 * 12):
            await pilot.press("tab")
            assert app.focused is not chart_filter
        await pilot.press("l", "e", "x")
        await pilot.pause()
        assert chart_filter.value == ""
        assert len(grid.visible()) == shown                  # no chart vanished
        # `/` is the way in; what it holds is said beside the charts, and esc clears it.
        await pilot.press("slash")
        assert app.focused is chart_filter
        await pilot.press("i", "m", "g")
        await pilot.pause()
        assert chart_filter.value == "img"
        matching = len(grid.visible())
        assert 0 < matching < shown
        assert grid.border_subtitle == f"filter 'img': {matching} of {len(grid.charts)} charts (esc clears)"
        await pilot.press("enter")                           # to the first matching chart; the filter keeps its text
        assert app.focused is not chart_filter and chart_filter.value == "img"
        await pilot.press("tab", "tab", "tab")
        assert app.focused is not chart_filter
        await pilot.press("escape")                          # clears the filter (it does not leave the dashboard)
        await pilot.pause()
        assert isinstance(app.screen, DashboardScreen)
        assert chart_filter.value == "" and len(grid.visible()) == shown and not grid.border_subtitle


async def test_a_filter_that_matches_nothing_says_so_and_how_to_undo_it(prepared_db):
    app = DifftuiApp(db_path=prepared_db)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _dashboard(pilot)
        await pilot.press("slash", "z", "z", "z")
        await pilot.pause()
        grid = screen.query_one(MetricGrid)
        empty = grid.query_one("#metric-grid-empty")
        assert grid.visible() == [] and empty.display
        assert "no chart matches the filter 'zzz'" in str(empty.render()) and "esc clears it" in str(empty.render())


async def test_smoothing_off_and_on_again_comes_back_at_the_chosen_weight(prepared_db):
    app = DifftuiApp(db_path=prepared_db)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _dashboard(pilot)
        grid = screen.query_one(MetricGrid)
        assert grid.smoothing == 0.6
        await pilot.press("plus", "plus")                    # 0.6 -> 0.8 -> 0.9
        assert grid.smoothing == 0.9
        await pilot.press("e")
        assert grid.smoothing == 0.0
        assert all(chart.smoothing == 0.0 for chart in grid.charts.values())
        await pilot.press("e")
        assert grid.smoothing == 0.9                         # not the default 0.6
        assert all(chart.smoothing == 0.9 for chart in grid.charts.values())
        assert grid.border_title == "metrics - line: EMA 0.9 (debiased), faint: raw"


def _screen_classes() -> list[type]:
    import difftui.tui.screens as screens
    found = []
    for info in pkgutil.iter_modules(screens.__path__):
        module = importlib.import_module(f"difftui.tui.screens.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Screen) and cls.__module__ == module.__name__ and "BINDINGS" in cls.__dict__:
                found.append(cls)
    return found


def test_every_screen_with_keys_has_a_help_title_in_words():
    classes = _screen_classes()
    names = {c.__name__ for c in classes}
    assert {"CompareScreen", "SweepScreen", "SweepListScreen", "DashboardScreen", "GridViewScreen"} <= names
    missing = [c.__name__ for c in classes if c is not HelpScreen and not c.__dict__.get("HELP_TITLE")]
    assert missing == []


async def test_the_help_of_the_compare_screen_is_titled_in_words(tmp_path):
    from tui_helpers import make_prepared_db

    from difftui.tui.screens.compare import CompareScreen
    db = make_prepared_db(tmp_path)
    app = DifftuiApp(db_path=db)
    async with app.run_test(size=SIZE) as pilot:
        await pilot_wait(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.loaded, 30, "history")
        app.open_compare([1, 2])
        await pilot_wait(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.polls, 30, "compare")
        await pilot.press("question_mark")
        help_screen = await pilot_wait(pilot, lambda: isinstance(app.screen, HelpScreen) and app.screen, 10, "help")
        await pilot.pause()
        title = help_screen.query_one("#help-box").border_title
        assert title == "keys: compare runs"
        assert help_title(app.screen_stack[-2]) == "compare runs"


@pytest.mark.parametrize("size", [SIZE, (80, 24)])
async def test_keys_typed_right_after_slash_all_land_in_the_filter(prepared_db, size):
    """`/grad` typed at once: focus moves to the filter a moment after `/`; the keys behind it wait for it (a `g`
    was lost, and in the compact layout, where the bar appears first, more)."""
    app = DifftuiApp(db_path=prepared_db)
    async with app.run_test(size=size) as pilot:
        screen = await _dashboard(pilot)
        for key, char in (("slash", "/"), ("i", "i"), ("m", "m"), ("g", "g")):       # in one burst, as a
            app.post_message(events.Key(key, char))                                  # terminal sends them
        await pilot_wait(pilot, lambda: screen.query_one(ChartFilter).value == "img", 5,
                       lambda: f"the filter to hold 'img', not {screen.query_one(ChartFilter).value!r}")
        assert app.focused is screen.query_one(ChartFilter)
