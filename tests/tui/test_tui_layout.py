"""Issue 16 item 9: the layouts at the README's 160x45 and at 80x24, checked on what the widgets really draw.

- below 120x30 the dashboard is the metric grid and one side panel (grid, GPU, events, FLOPs) that `p` switches;
  from 120x30 up every panel shows and `p` is not offered;
- at 160x45 nothing important is cut: the FLOPs lines, the scrubbing caption, the evaluation table's sampler cell;
- comparing ten runs puts the runs in rows (every value and header whole) and the chart draws no legend over its
  curves (each row carries the run's colour instead); two runs stay columns, with the chart's legend.
"""

from __future__ import annotations

import math

from textual.geometry import Region
from tui_helpers import FIXED_T, config_dict, make_dydit_db, pilot_wait

from difftui.engine.store import Store
from difftui.tui.app import DifftuiApp
from difftui.tui.screens.compare import CompareScreen
from difftui.tui.screens.dashboard import DashboardScreen
from difftui.tui.screens.history import HistoryScreen
from difftui.tui.widgets.eval_table import EvalTable
from difftui.tui.widgets.flops_panel import FlopsPanel
from difftui.tui.widgets.grid_image import GridImage
from difftui.tui.widgets.overlay_chart import OverlayChart

WIDE = (160, 45)
COMPACT = (80, 24)
SIDE = ("grid", "gpu", "events", "flops-side-box", "findings")


def drawn(widget) -> str:
    """The text a widget draws (its lines as the compositor gets them, borders included), whitespace collapsed."""
    width, height = widget.region.size
    lines = widget.render_lines(Region(0, 0, width, height))
    return " ".join(" ".join(strip.text for strip in lines).split())


def words(text: str) -> str:
    return " ".join(str(text).split())


def whole(value: str, text: str) -> bool:
    """Every word of `value` appears in `text`, whole and in order (a value wrapped onto the next line, even with a
    neighbouring column's words between, is whole; a cut one, `linea…`, is not)."""
    tokens = iter(text.split())
    return "…" not in text and all(any(t == w for t in tokens) for w in str(value).split())


def footer_keys(screen) -> dict[str, str]:
    return {key: active.binding.description for key, active in screen.active_bindings.items()
            if active.binding.show and active.enabled}


async def _dashboard(pilot, run_id: int = 1) -> DashboardScreen:
    app = pilot.app
    await pilot_wait(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.loaded, 30, "history")
    app.open_dashboard(run_id)
    screen = await pilot_wait(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.polls
                            and app.screen.query_one(GridImage).shown_id is not None and app.screen, 30, "dashboard")
    await pilot.pause()
    return screen


def shown(screen) -> list[str]:
    return [i for i in SIDE if screen.query_one(f"#{i}").display and screen.query_one(f"#{i}").region.area]


async def test_below_120x30_the_dashboard_has_one_side_panel_that_p_switches_and_above_all_of_them(tmp_path):
    db = make_dydit_db(tmp_path)
    app = DifftuiApp(db_path=db)
    async with app.run_test(size=COMPACT) as pilot:
        dash = await _dashboard(pilot)
        assert dash.compact and not dash.query_one("#flops").display
        assert shown(dash) == ["grid"] and footer_keys(dash).get("p") == "Panel"
        assert dash.query_one("#grid").border_title == "fixed-x_T grid  (p: GPU)"
        seen = []
        for _ in SIDE:
            await pilot.press("p")
            seen.append(shown(dash))
        assert seen == [["gpu"], ["events"], ["flops-side-box"], ["findings"], ["grid"]]
        await pilot.press("p", "p", "p")
        await pilot.pause()
        side_flops = dash.query_one("#flops-side", FlopsPanel)       # the FLOPs panel of this layout, fed too
        assert side_flops.rows() and all(whole(value, drawn(side_flops)) for _, value in side_flops.rows())
        await pilot.resize_terminal(*WIDE)
        await pilot_wait(pilot, lambda: not dash.compact, 10, "the wide layout")
        await pilot.pause()
        assert shown(dash) == ["grid", "gpu", "events", "findings"] and dash.query_one("#flops").display
        assert "p" not in footer_keys(dash)
        assert dash.query_one("#grid").border_title == "fixed-x_T grid"


async def test_at_160x45_the_flops_lines_and_the_scrubbing_caption_are_whole(tmp_path):
    db = make_dydit_db(tmp_path)
    app = DifftuiApp(db_path=db)
    async with app.run_test(size=WIDE) as pilot:
        dash = await _dashboard(pilot)
        assert not dash.compact
        panel = dash.query_one("#flops", FlopsPanel)
        text = drawn(panel)
        for label, value in panel.rows():
            assert whole(value, text), f"{label}: {value} not whole in {text}"
        assert whole("606 per grid sample (x NFE 50, DDIM eta=0 N=50 linear)", text)
        await pilot.press("left_square_bracket")
        grid = dash.query_one(GridImage)
        await pilot_wait(pilot, lambda: not grid.index.live, 10, "scrubbing")
        await pilot.pause()
        assert "step 1,000 1/2 scrubbing · end: live (step 2,000)" in drawn(grid.query_one("#grid-caption"))
        assert "DDIM eta=0 N=50 linear · NFE 50 · half-blocks" in drawn(grid.query_one("#grid-source"))


async def test_a_long_sampler_name_is_whole_in_the_evaluation_table_at_160x45(tmp_path):
    db = make_dydit_db(tmp_path)
    sampler = "EDM stochastic ImageNet-64 S_churn=40 (P3 T5, ours) N=40"
    with Store(db) as store:
        store.add_eval_results(1, [dict(step=2000, snapshot=None, sampler=sampler, nfe=79, kind="fid", job_id=1,
                                        samples=10_000, repeats=1, protocol={"quick": True}, metric=m, value=v)
                                   for m, v in (("fid", 12.5), ("seconds", 61.0))])
    app = DifftuiApp(db_path=db)
    async with app.run_test(size=WIDE) as pilot:
        dash = await _dashboard(pilot)
        await pilot.press("t")
        table = dash.query_one(EvalTable)
        await pilot_wait(pilot, lambda: table.row_count == 1, 30, "the evaluation row")
        await pilot.pause()
        assert whole(sampler, drawn(table))


def make_compare_db(tmp_path, runs: int):
    """`runs` finished runs that differ in dropout, each with its own L_simple curve."""
    db = tmp_path / "runs.db"
    with Store(db) as store:
        for i in range(runs):
            dropout = round(0.05 * (i + 1), 2)
            run_id = store.create_run(config_dict(dropout=dropout), name=f"drop-{dropout:g}", total_steps=1000,
                                      device="cpu")
            curve = [(s, s * 128 / 1000, "L_simple", 0.08123 + dropout / (1 + s / 100) + 0.001 * math.sin(s + i),
                      FIXED_T + s) for s in range(10, 1010, 10)]
            store.write_batch(run_id, metrics=curve, run_fields=dict(
                status="completed", step=1000, created=FIXED_T + i, started=FIXED_T + i, ended=FIXED_T + 999))
    return db


async def _compare(pilot, run_ids: list[int]) -> CompareScreen:
    app = pilot.app
    await pilot_wait(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.loaded, 30, "history")
    app.open_compare(run_ids)
    screen = await pilot_wait(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.polls
                            and app.screen.summaries and app.screen, 30, "compare")
    await pilot.pause()
    return screen


async def test_comparing_ten_runs_puts_them_in_rows_whole_with_their_colours_and_no_legend_on_the_chart(tmp_path):
    db = make_compare_db(tmp_path, 10)
    app = DifftuiApp(db_path=db)
    async with app.run_test(size=WIDE) as pilot:
        screen = await _compare(pilot, list(range(1, 11)))
        assert screen.runs_in_rows and not screen.query_one(OverlayChart).legend
        metrics = drawn(screen.query_one("#compare-metrics"))
        for s in screen.summaries:
            value = f"{s.last['L_simple']:.4g}"
            assert f"● {s.run['id']} {s.run['name']} 1000/1000 {value}" in metrics, metrics
        assert "…" not in metrics
        diff = drawn(screen.query_one("#compare-diff"))
        assert "recipe.dropout" in diff and "…" not in diff
        assert all(f"● {i} {0.05 * i:.2g}" in diff for i in range(1, 11)), diff


async def test_comparing_two_runs_keeps_them_as_columns_and_the_charts_legend(tmp_path):
    db = make_compare_db(tmp_path, 2)
    app = DifftuiApp(db_path=db)
    async with app.run_test(size=WIDE) as pilot:
        screen = await _compare(pilot, [1, 2])
        assert not screen.runs_in_rows and screen.query_one(OverlayChart).legend
        metrics = drawn(screen.query_one("#compare-metrics"))
        assert "run 1 run 2" in metrics and "…" not in metrics
