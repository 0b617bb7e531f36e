"""The run history screen against a prepared runs.db: listing, crash detection, filter, delete, and resume."""

from __future__ import annotations

import math
import socket
import time

import pytest
from tui_helpers import dead_pid, engine_log, kill_engines, pilot_wait, run_status

from difftui.engine.config.catalog import Catalog
from difftui.engine.eval.counts import DEFAULT_NLL_IMAGES
from difftui.engine.launch.runs import create_run
from difftui.engine.store import Store
from difftui.tui.app import DifftuiApp
from difftui.tui.screens.confirm import ConfirmScreen
from difftui.tui.screens.dashboard import DashboardScreen
from difftui.tui.screens.evaluate import EvaluateScreen
from difftui.tui.screens.history import HistoryScreen
from difftui.tui.widgets.metric_chart import MetricGrid
from difftui.tui.widgets.run_table import RunTable

SIZE = (140, 36)


async def open_history(app, pilot) -> HistoryScreen:
    return await pilot_wait(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.loaded
                          and app.screen, 30, "the history screen")


async def test_history_lists_runs_and_shows_dead_engine_as_crashed(prepared_db):
    app = DifftuiApp(db_path=prepared_db)
    async with app.run_test(size=SIZE) as pilot:
        history = await open_history(app, pilot)
        table = history.query_one(RunTable)
        assert table.row_count == 4
        by_id = {r["id"]: r for r in table.runs}
        assert [by_id[i]["status"] for i in (1, 2, 3, 4)] == ["completed", "stopped", "failed", "crashed"]
        assert by_id[4]["error"] == "engine process ended without a final status"
        assert by_id[1]["last_loss"] == pytest.approx(1 / 21 + 0.02 * math.sin(1000))
        row = table.get_row("4")
        # Key columns first (id, name, status, step, last loss), so a narrow terminal still shows them.
        assert str(row[2]) == "crashed" and str(row[3]) == "120/4000" and str(row[4]) == "0.38"
        assert row[6] == "digits" and row[7] == "unet-demo"          # row[5]: the findings column (issue 18)

        await pilot.press("slash", *"cifar")
        assert table.row_count == 1 and table.selected_run()["name"] == "cifar-p1"
        await pilot.press("enter")                   # leaves the filter for the table
        assert app.focused is table
        await pilot.press("escape")
        assert table.row_count == 4

        # Enter opens the dashboard of the selected run; its series comes from runs.db.
        await pilot.press("down", "down", "down", "enter")
        dash = await pilot_wait(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.polls
                              and app.screen, 30, "the dashboard")
        assert dash.run_id == 1
        assert dash.query_one(MetricGrid).point_count() == 100
        assert dash.query_one("#grid").index.current["step"] == 1000
        await pilot.press("left_square_bracket")
        assert dash.query_one("#grid").index.current["step"] == 750
        await pilot.press("escape")
        await open_history(app, pilot)


async def test_delete_asks_first(prepared_db):
    app = DifftuiApp(db_path=prepared_db)
    async with app.run_test(size=SIZE) as pilot:
        history = await open_history(app, pilot)
        table = history.query_one(RunTable)
        await pilot.press("down")
        assert table.selected_run()["name"] == "digits-hybrid"
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert isinstance(app.screen, HistoryScreen) and table.row_count == 4
        await pilot.press("d", "y")
        await pilot_wait(pilot, lambda: table.row_count == 3, 30, "the run to disappear")
        assert 3 not in {r["id"] for r in table.runs}
    with Store(prepared_db) as store:
        assert store.get_run(3) is None


@pytest.mark.slow
async def test_resume_a_crashed_run_starts_a_real_engine(tmp_path):
    db = tmp_path / "runs.db"
    config = Catalog().resolve(overrides=["recipe.batch_size=8", "backbone.arch.model_channels=16",
                                          "recipe.log_every=2", "recipe.grid_every=1000"], max_steps=2000,
                               device="cpu")
    run_id = create_run(db, config)
    with Store(db) as store:              # an engine that "died" mid-run: status running, its pid gone
        store.update_run(run_id, status="running", pid=dead_pid(), host=socket.gethostname(),
                         heartbeat=time.time(), started=time.time())
    try:
        app = DifftuiApp(db_path=db)
        async with app.run_test(size=SIZE) as pilot:
            history = await open_history(app, pilot)
            table = history.query_one(RunTable)
            assert table.selected_run()["status"] == "crashed"
            await pilot.press("r")
            await pilot_wait(pilot, lambda: run_id in app.processes, 30, "the engine process")
            await pilot_wait(pilot, lambda: (table.selected_run() or {}).get("status") == "running", 90,
                           lambda: f"the resumed run to be running; engine.log:\n{engine_log(db, run_id)}")
            assert app.processes[run_id].poll() is None
            await pilot.press("s")
            await pilot_wait(pilot, lambda: (table.selected_run() or {}).get("status") in ("stopped", "completed"),
                           90, lambda: f"the run to stop; engine.log:\n{engine_log(db, run_id)}")
        run = run_status(db, run_id)
        assert run["status"] in ("stopped", "completed") and run["error"] is None
    finally:
        kill_engines(db)


async def test_a_file_that_is_not_a_run_database_is_reported_not_crashed(tmp_path):
    db = tmp_path / "runs.db"
    db.write_bytes(b"this is not sqlite" * 100)
    app = DifftuiApp(db_path=db)
    async with app.run_test(size=SIZE) as pilot:
        splash = app.screen.query_one("#splash")
        await pilot_wait(pilot, lambda: "cannot open" in str(splash.render()), 30, "the error on the splash")
        assert "not a run database (the file is not an SQLite database)" in str(splash.render())
        assert app.is_running


async def test_dashboard_reads_the_run_afresh_after_a_resume_rewinds_it(prepared_db):
    app = DifftuiApp(db_path=prepared_db)
    async with app.run_test(size=SIZE) as pilot:
        await open_history(app, pilot)
        app.open_dashboard(1)
        dash = await pilot_wait(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.polls
                              and app.screen, 30, "the dashboard")
        chart = dash.query_one(MetricGrid)
        assert chart.point_count() == 100 and len(dash.query_one("#grid").index.rows) == 4
        # What a resume from the step-500 checkpoint does to runs.db: drop later rows, log from step 510 again.
        with Store(prepared_db) as store:
            store.truncate_after(1, 500)
            store.write_batch(1, metrics=[(510, 65.3, "L_simple", 0.2, time.time())],
                              run_fields=dict(status="running", step=510, heartbeat=time.time(), pid=None))
        dash.refresh_now()
        await pilot_wait(pilot, lambda: chart.point_count() == 51 and chart.series_of("L_simple").last_step == 510, 30,
                       "the rewound series")
        assert [r["step"] for r in dash.query_one("#grid").index.rows] == [250, 500]


async def test_v_on_the_dashboard_evaluates_a_finished_runs_panel(tmp_path, monkeypatch):
    from difftui.engine.launch.runs import new_run
    monkeypatch.setenv("DIFFTUI_CACHE", str(tmp_path / "cache"))          # no Inception weights: no FID
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("DIFFTUI_INCEPTION", raising=False)
    db = tmp_path / "runs.db"
    config = Catalog().resolve(overrides=["recipe.batch_size=8", "backbone.arch.model_channels=16",
                                          "sampler.grid.steps=5", "sampler.sweep=[]", "recipe.log_every=5",
                                          "recipe.diffusion_steps=50"],
                               max_steps=5, device="cpu")
    run_id = new_run(db, config).run_id
    try:
        app = DifftuiApp(db_path=db)
        async with app.run_test(size=SIZE) as pilot:
            await open_history(app, pilot)
            await pilot_wait(pilot, lambda: (run_status(db, run_id) or {}).get("status") == "completed", 90,
                           lambda: f"the run to complete; engine.log:\n{engine_log(db, run_id)}")
            app.open_dashboard(run_id)
            await pilot_wait(pilot, lambda: isinstance(app.screen, DashboardScreen), 10, "the dashboard")
            await pilot.press("v")                  # the counts and the estimate first (issue 16 item 5)
            await pilot_wait(pilot, lambda: isinstance(app.screen, EvaluateScreen) and app.screen.pricing, 30,
                           "the evaluate dialog")
            await pilot.press("enter")                  # its defaults, the CLI's

            def panel_rows():
                with Store(db) as store:
                    return store.samples_index(run_id, kind="panel")

            def job():
                with Store(db) as store:
                    jobs = store.jobs_for(run_id)
                return jobs[-1] if jobs and jobs[-1]["status"] not in ("queued", "running") else None
            # The evaluator runs in its own process; its progress and results are in runs.db.
            await pilot_wait(pilot, job, 120, "the evaluator to finish")
            # The panel's evaluations join the metric grid: one chart per eval metric, a line per sampler.
            metrics = app.screen.query_one(MetricGrid)
            # The panel's sampler and the held-out NLL's full chain each took their seconds (the two may reach the
            # dashboard in two polls).
            timed = {"DDIM eta=0 N=5 linear", "full chain T=50 fixed_small"}
            def timed_lines():
                chart = metrics.charts.get("eval:seconds")
                return set(chart.series) if chart is not None else None
            await pilot_wait(pilot, lambda: timed_lines() == timed, 30, lambda: f"{timed}, not {timed_lines()}")
        assert job()["status"] == "done" and "FID skipped" not in job()["message"]
        assert [r["sampler"] for r in panel_rows()] == ["DDIM eta=0 N=5 linear"]
        with Store(db) as store:
            (nll,) = [r for r in store.eval_results(run_id, kind="nll") if r["metric"] == "nll_bpd"]
        assert nll["samples"] == DEFAULT_NLL_IMAGES == 8        # the default count, said beside the number
    finally:
        kill_engines(db)
