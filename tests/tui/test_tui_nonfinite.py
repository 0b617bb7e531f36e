"""A diverged run in the TUI: NaN and inf metrics (stored as such since issue 7) open in the history and on the
dashboard without an error, and are shown as nan/inf, never as blanks or zeros."""

import math

from tui_helpers import FIXED_T, add_run, pilot_wait

from difftui.engine.store import Store
from difftui.tui.app import DifftuiApp
from difftui.tui.screens.dashboard import DashboardScreen
from difftui.tui.screens.history import HistoryScreen

SIZE = (140, 36)


def diverged_db(tmp_path):
    db = tmp_path / "runs.db"
    with Store(db) as store:
        run_id = add_run(store, name="diverged", status="failed", step=40, total=100, created=FIXED_T,
                         losses=[(10, 0.9), (20, 0.5)])
        store.write_batch(run_id, metrics=[(30, 3.84, "L_simple", math.inf, FIXED_T + 30),
                                           (40, 5.12, "L_simple", math.nan, FIXED_T + 40),
                                           (40, 5.12, "grad_norm", math.nan, FIXED_T + 40),
                                           (40, 5.12, "skipped_steps", 10.0, FIXED_T + 40)])
        store.update_run(run_id, error="RunFailed: L_simple, grad_norm not finite for 20 steps in a row")
    return db, run_id


async def test_a_diverged_run_opens_in_the_history_and_the_dashboard_showing_nan(tmp_path):
    db, run_id = diverged_db(tmp_path)
    app = DifftuiApp(db_path=db)
    async with app.run_test(size=SIZE) as pilot:
        await pilot_wait(pilot, lambda: isinstance(app.screen, HistoryScreen), 30, "the history")
        history_text = lambda: app.export_screenshot()            # the SVG holds the visible text
        await pilot_wait(pilot, lambda: "diverged" in history_text(), 30, "the diverged run listed")
        assert "NaN" in history_text()
        app.open_dashboard(run_id)
        dash = await pilot_wait(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.polls
                              and app.screen, 30, "the dashboard")
        await pilot.pause(0.5)
        screen = app.export_screenshot()
        assert app.is_running
        assert "NaN" in screen
        assert math.isnan(dash.latest["L_simple"])
