"""The run dashboard against prepared runs.db files (and one real DyDiT engine run): the grid panel follows the newest
grid after a reopen, the smoothed value in a chart's header is the chart's last point, the FLOPs panel gives a DyDiT
run's ratio and verdict, NaN/inf are shown as such, the GPU panel's history and failed readings, the chart keys,
the full-size grid, the renderer switch, help, and the history at 100x30."""

from __future__ import annotations

import asyncio
import math
import time

import pytest
from tui_helpers import FIXED_T, engine_log, grid_png, make_dydit_db, pilot_wait

from difftui.engine.config.catalog import Catalog
from difftui.engine.numbers import format_number
from difftui.engine.store import ACTIVE_STATUSES, Store
from difftui.tui import bindings, graphics
from difftui.tui.app import DifftuiApp
from difftui.tui.screens.dashboard import DashboardScreen
from difftui.tui.screens.grid_view import GridViewScreen
from difftui.tui.screens.help import HelpScreen
from difftui.tui.screens.history import HistoryScreen
from difftui.tui.widgets.flops_panel import FlopsPanel, budget_verdict
from difftui.tui.widgets.gpu_panel import GpuPanel
from difftui.tui.widgets.grid_image import GridImage
from difftui.tui.widgets.metric_chart import ChartPlot, MetricChart, MetricGrid
from difftui.tui.widgets.run_table import RunTable
from difftui.tui.widgets.status_line import StatusLine

SIZE = (160, 45)


async def open_dashboard(app, pilot, run_id: int) -> DashboardScreen:
    await pilot_wait(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.loaded, 30, "the history")
    app.open_dashboard(run_id)
    dash = await pilot_wait(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.polls
                          and app.screen, 30, "the dashboard")
    await pilot.pause()
    return dash


def text_of(widget) -> str:
    return str(widget.render()) if not hasattr(widget, "render_panel") else str(widget.render_panel())


async def test_a_reopened_dashboard_follows_the_newest_grid_until_the_user_scrubs(prepared_db):
    app = DifftuiApp(db_path=prepared_db)
    async with app.run_test(size=SIZE) as pilot:
        dash = await open_dashboard(app, pilot, 1)
        grid = dash.query_one(GridImage)
        assert (grid.index.current["step"], grid.index.live, grid.shown_id) == (1000, True, 4)
        await pilot.press("escape")
        dash = await open_dashboard(app, pilot, 1)                 # reopened: a new screen, read afresh
        grid = dash.query_one(GridImage)
        assert grid.index.current["step"] == 1000 and grid.index.live
        with Store(prepared_db) as store:
            new = store.add_sample(1, step=1100, kind="grid", sampler="DDIM eta=0 N=50 linear", nfe=50,
                                   png=grid_png(1100))
        dash.refresh_now()
        await pilot_wait(pilot, lambda: grid.shown_id == new, 30, "the new grid shown")
        caption = str(grid.query_one("#grid-caption").render())
        assert "step 1,100" in caption and "5/5" in caption and "live" in caption
        source = str(grid.query_one("#grid-source").render())
        assert "DDIM eta=0 N=50 linear" in source and "NFE 50" in source and "half-blocks" in source
        # Scrubbing back holds the view; a newer grid does not yank it; end returns to live.
        await pilot.press("left_square_bracket")
        await pilot_wait(pilot, lambda: grid.shown_id == 4, 30, "the step-1000 grid")
        with Store(prepared_db) as store:
            newer = store.add_sample(1, step=1200, kind="grid", sampler="DDIM eta=0 N=50 linear", nfe=50,
                                     png=grid_png(1200))
        polls = dash.polls
        dash.refresh_now()
        await pilot_wait(pilot, lambda: dash.polls > polls, 30, "a poll")
        assert grid.index.current["step"] == 1000 and grid.shown_id == 4
        assert "scrubbing · end: live (step 1,200)" in str(grid.query_one("#grid-caption").render())
        await pilot.press("end")
        await pilot_wait(pilot, lambda: grid.shown_id == newer and grid.index.live, 30, "live again")


def loss_chart(dash: DashboardScreen) -> tuple[MetricGrid, MetricChart, ChartPlot]:
    metrics = dash.query_one(MetricGrid)
    chart = metrics.charts["L_simple"]
    return metrics, chart, chart.query_one(ChartPlot)


async def test_the_smoothed_value_in_a_charts_header_is_its_last_point(prepared_db):
    app = DifftuiApp(db_path=prepared_db)
    async with app.run_test(size=SIZE) as pilot:
        dash = await open_dashboard(app, pilot, 1)
        metrics, chart, plot = loss_chart(dash)
        for keys, weight in (((), 0.6), (("plus",), 0.8), (("minus", "minus"), 0.3)):
            await pilot.press(*keys)
            await pilot_wait(pilot, lambda: plot._cache_key is not None and plot._cache_key[2] == chart.version, 10,
                           "the chart redrawn")
            assert metrics.smoothing == weight and chart.border_subtitle == f"EMA {weight:g}"
            drawn_last = chart._drawn["L_simple"][2][-1]            # what plotext was handed, last smoothed point
            assert chart.shown_value() == drawn_last
            legend = str(chart.query_one(".chart-legend").render())
            assert legend.startswith(f"EMA {format_number(drawn_last)} ")
            assert f"last {format_number(chart.series['L_simple'].last)}" in legend
            # Debiased: the header follows the curve (the old un-debiased EMA lagged by ~0.4 at step 70).
            assert abs(drawn_last - chart._drawn["L_simple"][1][-1]) < 0.05
        await pilot.press("e")                                      # smoothing off: the header is the raw last
        await pilot_wait(pilot, lambda: metrics.smoothing == 0, 10, "raw")
        legend = str(chart.query_one(".chart-legend").render())
        assert legend.startswith(f"last {format_number(chart.series['L_simple'].last)} ")
        assert "L_simple last" in str(dash.query_one(StatusLine).render())   # the status line says "last" too


async def test_flops_panel_gives_the_figures_a_run_logged_and_says_what_it_cannot(tmp_path, prepared_db):
    db = make_dydit_db(tmp_path / "dydit")
    app = DifftuiApp(db_path=db)
    async with app.run_test(size=SIZE) as pilot:
        dash = await open_dashboard(app, pilot, 1)
        panel = dash.query_one(FlopsPanel)
        rows = {label: str(value) for label, value in panel.rows()}
        assert rows["GFLOPs"].startswith("12.12 per forward (static)")
        assert "606 per grid sample (x NFE 50, DDIM eta=0 N=50 linear)" in rows["GFLOPs"]
        assert rows["training"].startswith("47.66 TFLOP/s") and "MFU 4.9% of the NVIDIA H100 80GB HBM3 peak" in rows[
            "training"]
        assert panel.verdict.state == "in" and panel.verdict.delta == pytest.approx(0.0221, abs=1e-3)
        assert rows["F_dyn/F_static"].startswith("IN budget: 0.522 vs lambda 0.5 (+0.022, within +-0.05)")
        assert "6.06 GMACs" in rows["anchor"] and "32.9 M params" in rows["anchor"]
        assert rows["P5 Table 8"].startswith("DyDiT-S at lambda 0.5: 3.16 GFLOPs, FID 28.75")
        assert "warm-up: none for this tier" in rows["over training"]
        ratio_chart = dash.query_one(MetricGrid).charts["flops_ratio"]
        assert [r.y for r in ratio_chart.references] == [0.5, pytest.approx(0.45), pytest.approx(0.55)]
        assert "in budget" in str(dash.query_one(StatusLine).render())
    # A CPU run from an engine that logs none of these: each says why, none shows a 0.
    app = DifftuiApp(db_path=prepared_db)
    async with app.run_test(size=SIZE) as pilot:
        dash = await open_dashboard(app, pilot, 1)
        rows = {label: str(value) for label, value in dash.query_one(FlopsPanel).rows()}
        assert rows["GFLOPs"].startswith("unavailable: not logged by this run's engine")
        assert "unavailable: TFLOP/s not logged" in rows["training"]
        assert "MFU only on a GPU (this run trains on cpu)" in rows["training"]
        assert "F_dyn/F_static" not in rows and rows["anchor"] == "not a paper anchor"
        assert not any(" 0 " in f" {v} " or v.startswith("0 ") for v in rows.values())


def test_budget_verdict_says_by_how_much_and_waits_for_the_warmup():
    out = budget_verdict(1.005, 0.5)
    assert out.state == "out" and out.delta == pytest.approx(0.505)
    assert out.text == "OUT of budget: 1.005 is 0.505 above lambda 0.5 (0.455 beyond the +-0.05 band)"
    below = budget_verdict(0.31, 0.4)
    assert below.state == "out" and "0.090 below lambda 0.4" in below.text
    assert budget_verdict(0.53, 0.5).state == "in"
    warm = budget_verdict(0.9, 0.7, step=1_000, warmup_steps=30_000)
    assert warm.state == "warmup" and "warm-up to step 30,000" in warm.text
    assert budget_verdict(float("nan"), 0.5).state == "unknown"
    assert budget_verdict(None, 0.5).text == "target lambda 0.5: no F_dyn/F_static logged yet"


@pytest.mark.slow
@pytest.mark.usefixtures("engine_hygiene")
async def test_flops_panel_shows_a_real_dydit_runs_ratio_and_verdict(tmp_path):
    from difftui.engine.launch import runs as launch
    db = tmp_path / "runs.db"
    # DyDiT-S/2 cut to 2 blocks of width 48 on the 8x8 digits (an explicit off-tier run), lambda 0.3: the routers
    # start fully on, so ten steps are far above the budget.
    config = Catalog().resolve(backbone="dydit-s-2", overrides=[
        "recipe.batch_size=8", "sampler.grid.steps=2", "backbone.arch.depth=2", "backbone.arch.hidden_size=48",
        "recipe.log_every=5", "recipe.grid_every=10", "recipe.snapshot_every=100000", "recipe.flops_lambda=0.3",
        "sampler.sweep=[]"], off_tier=True, max_steps=10, device="cpu")
    run_id = launch.new_run(db, config).run_id
    deadline = time.monotonic() + 180
    while True:
        with Store(db) as store:
            run = store.get_run(run_id)
        if run["status"] not in ACTIVE_STATUSES or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert run["status"] == "completed", engine_log(db, run_id)
    app = DifftuiApp(db_path=db)
    async with app.run_test(size=SIZE) as pilot:
        dash = await open_dashboard(app, pilot, run_id)
        panel = dash.query_one(FlopsPanel)
        with Store(db) as store:
            logged = store.series(run_id, "flops_ratio")
        assert [s for s, _ in logged] == [5, 10]
        assert panel.latest["flops_ratio"] == logged[-1][1] and panel.latest["flops_target"] == 0.3
        assert panel.verdict.state == "out" and panel.verdict.delta == pytest.approx(logged[-1][1] - 0.3)
        rows = {label: str(value) for label, value in panel.rows()}
        assert rows["F_dyn/F_static"].startswith(f"OUT of budget: {logged[-1][1]:.3f} is ")
        assert "above lambda 0.3" in rows["F_dyn/F_static"]
        assert "gflops_fwd" in panel.latest or rows["GFLOPs"].startswith("unavailable: not logged")
        assert dash.query_one(MetricGrid).series_of("flops_ratio").last == logged[-1][1]
        assert "OUT of budget" in str(dash.query_one(StatusLine).render())
        assert dash.query_one(GridImage).index.current["nfe"] == 2


async def test_nan_and_inf_are_shown_as_such_and_never_stop_the_charts(tmp_path):
    from tui_helpers import add_run
    db = tmp_path / "runs.db"
    with Store(db) as store:
        run = add_run(store, name="diverges", status="running", step=40, total=100, created=FIXED_T,
                      losses=[(10, 0.5), (20, 0.4)])
    app = DifftuiApp(db_path=db)
    async with app.run_test(size=SIZE) as pilot:
        dash = await open_dashboard(app, pilot, run)
        chart = dash.query_one(MetricGrid).charts["L_simple"]
        with Store(db) as store:                                  # the run diverges while it is watched
            store.write_batch(run, metrics=[(30, 0, "L_simple", float("inf"), FIXED_T + 30),
                                            (40, 0, "L_simple", float("nan"), FIXED_T + 40)])
        dash.refresh_now()
        await pilot_wait(pilot, lambda: chart.series["L_simple"].last_step == 40, 30, "the non-finite rows")
        plot = chart.query_one(ChartPlot)
        await pilot_wait(pilot, lambda: plot._cache_key is not None and plot._cache_key[2] == chart.version, 10,
                       "the chart redrawn")
        legend = str(chart.query_one(".chart-legend").render())
        assert legend.startswith("EMA NaN") and "last NaN" in legend and "2 non-finite" in legend
        assert "min 0.4 max 0.5" in legend
        _, raw, _ = chart._drawn["L_simple"]
        assert raw[:2] == [0.5, 0.4] and math.isinf(raw[2]) is False and math.isnan(raw[2]) and math.isnan(raw[3])
        assert "L_simple last NaN" in str(dash.query_one(StatusLine).render())


async def test_a_streaming_run_redraws_charts_within_their_budget_and_a_key_redraws_at_once(prepared_db):
    app = DifftuiApp(db_path=prepared_db)
    async with app.run_test(size=SIZE) as pilot:
        dash = await open_dashboard(app, pilot, 1)
        metrics, chart, plot = loss_chart(dash)
        await pilot_wait(pilot, lambda: plot.builds and plot.allowed == chart.version, 10, "the first canvas")
        shown = sum(1 for p in dash.query(ChartPlot) if p.chart.display)
        plot.cost = 0.004                                   # as measured on a 2-core laptop
        assert plot.min_gap() == pytest.approx(max(1.0, min(shown * 0.004 / 0.02, 5.0)))
        plot.cost = 1.0                                     # a very slow canvas: the gap is capped
        assert plot.min_gap() == 5.0
        plot._drawn_at = time.monotonic()                   # it has just drawn
        builds, step = plot.builds, chart.series["L_simple"].last_step
        assert metrics.add_rows([{"name": "L_simple", "step": step + 10, "value": 0.123}])
        await pilot.pause(0.3)
        assert plot.allowed < chart.version and plot.builds == builds      # new data waits for the budget
        assert "last 0.123" in str(chart.query_one(".chart-legend").render())  # the legend does not
        await pilot.press("plus")                           # a key: at once, with the newest data
        await pilot_wait(pilot, lambda: plot.allowed == chart.version and plot.builds > builds, 5, "the redraw")


async def test_quitting_while_the_dashboard_opens_ends_the_app_cleanly(prepared_db):
    # q right after Enter: Textual takes the widgets down while the dashboard's mount and first poll are still being
    # handled; those handlers must not query the missing widgets (a traceback at exit, seen in 1 of 4 test suites).
    for ticks in range(10):
        app = DifftuiApp(db_path=prepared_db)
        async with app.run_test(size=SIZE) as pilot:
            await pilot_wait(pilot, lambda app=app: isinstance(app.screen, HistoryScreen) and app.screen.loaded, 30, "history")
            app.open_dashboard(1)
            for _ in range(ticks):
                await asyncio.sleep(0)
        assert app.return_code in (0, None)


async def test_gpu_panel_draws_each_readings_history_and_why_one_is_missing(tmp_path):
    db = make_dydit_db(tmp_path)
    app = DifftuiApp(db_path=db)
    async with app.run_test(size=SIZE) as pilot:
        dash = await open_dashboard(app, pilot, 1)
        gpu = dash.query_one(GpuPanel)
        text = str(gpu.render_panel())
        assert "GPU0 NVIDIA H100 80GB HBM3" in text
        lines = {line.split()[0]: line for line in text.splitlines()[1:]}
        assert "unavailable: NVMLError_GpuIsLost: GPU is lost" in lines["util"]
        assert "unavailable: NVMLError_GpuIsLost: GPU is lost" in lines["temp"]
        assert lines["mem"].endswith("22.9/79.6 GiB") and lines["power"].endswith("318 W")
        assert len(gpu.history[0]["util"]) == 61 and math.isnan(gpu.history[0]["util"][40])
        spark = lines["util"].split()[1]
        assert len(spark) > 10 and " " not in spark.strip()[:5]
        assert gpu.border_subtitle == "last 2.0 min"                # the whole window, squeezed to the width


async def test_chart_filter_log_scale_full_size_grid_and_help(tmp_path):
    db = make_dydit_db(tmp_path)
    app = DifftuiApp(db_path=db)
    async with app.run_test(size=SIZE) as pilot:
        dash = await open_dashboard(app, pilot, 1)
        metrics = dash.query_one(MetricGrid)
        assert list(metrics.charts)[:2] == ["L_simple", "flops_ratio"]
        await pilot.press("slash", *"grad")
        assert [c.key for c in metrics.visible()] == ["grad_norm"]
        assert metrics.border_subtitle == f"filter 'grad': 1 of {len(metrics.charts)} charts (esc clears)"
        await pilot.press("enter")                                   # from the filter to the first match
        assert app.focused is metrics.charts["grad_norm"]
        await pilot.press("l")
        assert metrics.charts["grad_norm"].log_scale and metrics.charts["grad_norm"].border_title.endswith("log")
        await pilot.press("slash", "escape")                         # esc in the filter clears it
        assert len(metrics.visible()) == len(metrics.charts)
        await pilot.press("enter")
        view = await pilot_wait(pilot, lambda: isinstance(app.screen, GridViewScreen) and app.screen, 10, "full grid")
        assert view.image is dash.query_one(GridImage).image and "step 2,000" in str(
            view.query_one("#grid-view-caption").render())
        await pilot.press("escape")
        await pilot.press("question_mark")
        help_screen = await pilot_wait(pilot, lambda: isinstance(app.screen, HelpScreen) and app.screen, 10, "help")
        listed = {k.description for k in help_screen.keys if k.where == "screen"}
        assert {b.description for b in bindings.DASHBOARD} <= listed
        await pilot.press("escape")
        assert app.screen is dash


async def test_the_image_key_switches_between_the_terminals_graphics_and_half_blocks(prepared_db, monkeypatch):
    monkeypatch.setattr(graphics, "_detected", "sixel")         # as if the terminal had answered for sixel
    app = DifftuiApp(db_path=prepared_db)
    async with app.run_test(size=SIZE) as pilot:
        dash = await open_dashboard(app, pilot, 1)
        grid = dash.query_one(GridImage)
        assert grid.renderer == "halfcell" and grid.best == "sixel"        # DIFFTUI_GRAPHICS pins the start
        await pilot.press("i")
        await pilot_wait(pilot, lambda: type(grid.query_one("#grid-picture")) is graphics.widget_class("sixel"), 10,
                       "the sixel widget")
        assert grid.renderer == "sixel" and "sixel" in str(grid.query_one("#grid-source").render())
        assert grid.query_one("#grid-picture").image is grid.image
        await pilot.press("i")
        await pilot_wait(pilot, lambda: grid.renderer == "halfcell", 10, "half-blocks again")
    monkeypatch.setattr(graphics, "_detected", "halfcell")      # a terminal with neither: the key says so
    app = DifftuiApp(db_path=prepared_db)
    async with app.run_test(size=SIZE) as pilot:
        dash = await open_dashboard(app, pilot, 1)
        await pilot.press("i")
        await pilot.pause()
        assert dash.query_one(GridImage).renderer == "halfcell"
        assert any("half-blocks only" in str(n.message) for n in app._notifications)


async def test_history_at_100x30_keeps_its_key_columns_and_footer_keys(prepared_db):
    from textual.widgets._footer import FooterKey
    app = DifftuiApp(db_path=prepared_db)
    async with app.run_test(size=(100, 30)) as pilot:
        history = await pilot_wait(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.loaded
                                 and app.screen, 30, "the history")
        await pilot.pause()
        table = history.query_one(RunTable)
        right = 0
        for key in ("id", "name", "status", "step", "last loss"):
            right += table.columns[key].get_render_width(table)
            assert right <= table.scrollable_content_region.width, key
        footer = [k for k in history.query(FooterKey) if k.key != "ctrl+p"]
        assert {"q", "question_mark"} <= {k.key for k in footer}
        assert all(k.region.right <= 100 for k in footer)
        # An empty filter result says so.
        await pilot.press("slash", *"zzz")
        empty = history.query_one("#history-empty")
        assert empty.display and "no run matches 'zzz' (4 runs in all)" in str(empty.render())
