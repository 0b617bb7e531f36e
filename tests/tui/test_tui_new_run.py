"""End to end through the real app: the new-run screens, a real engine subprocess, the live dashboard, stop.

The database does not exist at the start (the app creates it and, with no runs, opens the new-run flow itself). The
run is launched from the review screen with tiny overrides typed on the keyboard; the dashboard must show metric
points arriving from the engine. The app is then closed (the run keeps going), a second app reattaches to it, and
the stop key ends it.
"""

from __future__ import annotations

import os

import pytest
from tui_helpers import engine_log, kill_engines, no_blink, pilot_wait, run_status

from difftui.tui.app import DifftuiApp
from difftui.tui.prefs import load_choices
from difftui.tui.screens.dashboard import DashboardScreen
from difftui.tui.screens.history import HistoryScreen
from difftui.tui.screens.new_run import PresetPickerScreen
from difftui.tui.screens.review import ReviewScreen
from difftui.tui.widgets.metric_chart import MetricGrid
from difftui.tui.widgets.run_table import RunTable
from difftui.tui.widgets.status_line import StatusLine

SIZE = (140, 44)
TINY = "backbone.arch.model_channels=16 recipe.grid_every=5 recipe.log_every=2 sampler.grid.steps=10"


async def replace_input(pilot, text: str) -> None:
    """Clear the focused input (home, then delete to the end) and type `text`."""
    await pilot.press("home", "ctrl+k", *text)


@pytest.mark.slow
async def test_new_run_flow_launches_engine_shows_metrics_and_stops(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "runs.db"
    assert not db.exists()
    try:
        app = DifftuiApp(db_path=db)
        async with app.run_test(size=SIZE) as pilot:
            # No runs yet: the app opens on the new-run flow. The defaults are highlighted; Enter takes each.
            for kind, default in (("datasets", "digits"), ("backbones", "unet-demo"), ("samplers", "ddim"),
                                  ("recipes", "p1-default")):
                await pilot_wait(pilot, lambda kind=kind: isinstance(app.screen, PresetPickerScreen)
                               and app.screen.kind == kind and app.screen.entries, 30, f"the {kind} picker")
                options = app.screen.query_one("#presets")
                assert options.get_option_at_index(options.highlighted).id == default
                await pilot.press("enter")
            assert db.exists()

            review = await pilot_wait(pilot, lambda: isinstance(app.screen, ReviewScreen) and app.screen.config
                                    and app.screen, 60, "the resolved config")
            no_blink(app)
            assert review.choices == {"datasets": "digits", "backbones": "unet-demo", "samplers": "ddim",
                                      "recipes": "p1-default"}
            # Focus starts on batch size; tab walks to max steps and the overrides.
            await replace_input(pilot, "8")
            await pilot.press("tab")
            await replace_input(pilot, "2000")
            await pilot.press("tab")
            await replace_input(pilot, "recipe.no_such_key=1")
            await pilot_wait(pilot, lambda: review.error, 30, "the PresetError line")
            assert "no_such_key" in review.error and "\n" not in review.error
            await replace_input(pilot, TINY)
            await pilot_wait(pilot, lambda: review.config is not None and review.config.recipe.batch_size == 8
                           and review.config.backbone.arch["model_channels"] == 16 and review.facts, 60,
                           "the tiny config and its parameter count")
            assert review.config.recipe.total_steps == 2000 and not review.error
            assert 0 < review.facts["params"] < 1_000_000
            assert review.facts["device"] in ("cpu", "cpu (no CUDA)") or review.facts["device"].startswith("cuda")

            await pilot.press("ctrl+l")
            dash = await pilot_wait(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen, 60,
                                  "the dashboard")
            # The launch is remembered for the next new run (in the test's own config folder).
            remembered = load_choices()
            assert remembered["batch_size"] == "8" and remembered["max_steps"] == "2000"
            assert remembered["overrides"] == TINY and remembered["recipes"] == "p1-default"
            run_id = dash.run_id
            assert [type(s).__name__ for s in app.screen_stack[1:]] == ["HistoryScreen", "DashboardScreen"]
            chart = dash.query_one(MetricGrid)
            status = dash.query_one(StatusLine)
            await pilot_wait(pilot, lambda: chart.point_count("L_simple") >= 2 and status.step > 0, 150,
                           lambda: f"metrics on the dashboard; engine.log:\n{engine_log(db, run_id)}")
            assert status.status in ("running", "queued")
            assert status.img_per_s and status.img_per_s > 0
            assert chart.series_of("L_simple").lo > 0
            assert "img/s" in str(status.render()) and "ETA" in str(status.render())
            pid = run_status(db, run_id)["pid"]
            assert run_id in app.processes
            await app.action_quit()

        # Closing the TUI left the engine running.
        os.kill(pid, 0)
        assert run_status(db, run_id)["status"] in ("running", "queued")

        # Reopen: the history lists the live run, Enter reattaches, new points keep arriving, `s` stops it.
        app = DifftuiApp(db_path=db)
        async with app.run_test(size=SIZE) as pilot:
            history = await pilot_wait(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.loaded
                                     and app.screen, 30, "the history screen")
            table = history.query_one(RunTable)
            assert table.selected_run()["id"] == run_id
            assert table.selected_run()["status"] in ("running", "queued")
            await pilot.press("enter")
            dash = await pilot_wait(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen, 30,
                                  "the dashboard again")
            chart = dash.query_one(MetricGrid)
            await pilot_wait(pilot, lambda: chart.point_count() >= 2, 60, "the series read back")
            seen = chart.point_count()
            await pilot_wait(pilot, lambda: chart.point_count() > seen, 90,
                           lambda: f"new points after reattaching; engine.log:\n{engine_log(db, run_id)}")
            await pilot.press("s")
            await pilot_wait(pilot, lambda: dash.run and dash.run["status"] in ("stopped", "completed"), 90,
                           lambda: f"the run to stop; engine.log:\n{engine_log(db, run_id)}")
            assert dash.query_one(StatusLine).status in ("stopped", "completed")
    finally:
        kill_engines(db)
