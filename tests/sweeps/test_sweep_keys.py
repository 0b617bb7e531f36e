"""Issue 16 item 10 on the sweep side: the footers of the grid list and of the sweep list show Enter (the list widget's
own hidden Enter used to shadow it), Enter there does what the footer says, and `m` with a single loss says why it
does nothing (compare and the sweep view). A prepared database (no process), keys in the real app."""

from __future__ import annotations

import pytest
from sweep_testkit import make_sweep_db, pilot_wait
from textual.widgets import OptionList

from difftui.tui.app import DifftuiApp
from difftui.tui.screens.compare import CompareScreen
from difftui.tui.screens.history import HistoryScreen
from difftui.tui.screens.sweep_grid import SweepGridScreen
from difftui.tui.screens.sweep_list import SweepListScreen
from difftui.tui.screens.sweep_setup import SweepSetupScreen
from difftui.tui.screens.sweep_view import SweepScreen

pytestmark = pytest.mark.usefixtures("tui_env")

SIZE = (140, 40)


def footer_keys(screen) -> dict[str, str]:
    """key -> description of what the footer shows (the bindings Textual resolved for the focused widget)."""
    return {key: active.binding.description for key, active in screen.active_bindings.items()
            if active.binding.show and active.enabled}


async def _history(pilot) -> HistoryScreen:
    app = pilot.app
    return await pilot_wait(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.loaded
                            and app.screen, 30, "the history")


async def test_the_sweep_list_footer_shows_enter_and_enter_opens_the_sweep(tmp_path):
    app = DifftuiApp(db_path=make_sweep_db(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await _history(pilot)
        await pilot.press("W")
        screen = await pilot_wait(pilot, lambda: isinstance(app.screen, SweepListScreen) and app.screen.loaded
                                  and app.screen, 30, "the sweep list")
        assert footer_keys(screen).get("enter") == "Open"
        await pilot.press("enter")
        view = await pilot_wait(pilot, lambda: isinstance(app.screen, SweepScreen) and app.screen, 10, "the view")
        assert view.sweep_id == 1


async def test_the_grid_list_footer_shows_enter_and_enter_picks_the_grid(tmp_path):
    app = DifftuiApp(db_path=make_sweep_db(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await _history(pilot)
        await pilot.press("w")
        screen = await pilot_wait(pilot, lambda: isinstance(app.screen, SweepGridScreen) and app.screen.entries
                                  and app.screen, 60, "the grid presets")
        assert footer_keys(screen).get("enter") == "Pick"
        options = screen.query_one("#grids", OptionList)
        while options.get_option_at_index(options.highlighted).id != "p1-dropout":
            await pilot.press("down")
        await pilot.press("enter")
        setup = await pilot_wait(pilot, lambda: isinstance(app.screen, SweepSetupScreen) and app.screen, 30,
                                 "the setup screen")
        assert setup.grid.name == "p1-dropout"


async def test_m_with_a_single_loss_says_so_in_compare_and_in_the_sweep_view(tmp_path):
    app = DifftuiApp(db_path=make_sweep_db(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await _history(pilot)
        app.open_compare([2, 3])
        screen = await pilot_wait(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.polls
                                  and app.screen, 30, "compare")
        assert screen.metrics() == ["L_simple"]
        await pilot.press("m")
        await pilot.pause()
        said = [str(n.message) for n in app._notifications]
        assert "these runs log only L_simple: m switches between losses" in " ".join(said)
        assert screen.metric == "L_simple"
        await pilot.press("escape")
        app.open_sweep(1)
        view = await pilot_wait(pilot, lambda: isinstance(app.screen, SweepScreen) and app.screen.polls
                                and app.screen, 30, "the sweep view")
        await pilot.press("m")
        await pilot.pause()
        said = [str(n.message) for n in app._notifications]
        assert any(s.startswith("the members log only L_simple") for s in said)
        assert view.metric == "L_simple"
