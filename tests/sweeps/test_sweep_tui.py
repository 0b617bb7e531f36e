"""The sweep screens, the sweep view, compare and clone, driven by keys in the real app (App.run_test): a sweep launched
from the history runs real engines and is followed in the view; the view sorts, switches metric, opens a member and
retries a failed one; compare overlays curves, lists only the differing keys and scrubs every grid together; a clone
fills the review screen and records its parent; the review screen sweeps its own config."""

from __future__ import annotations

import json

import pytest
from sweep_testkit import make_sweep_db, pilot_wait, tiny_config_dict, wait_until
from textual.widgets import Checkbox, Input, OptionList

from difftui.engine.store import ACTIVE_STATUSES, Store
from difftui.tui.app import DifftuiApp
from difftui.tui.screens.compare import CompareScreen
from difftui.tui.screens.dashboard import DashboardScreen
from difftui.tui.screens.history import HistoryScreen
from difftui.tui.screens.review import ReviewScreen
from difftui.tui.screens.sweep_grid import SweepGridScreen
from difftui.tui.screens.sweep_list import SweepListScreen
from difftui.tui.screens.sweep_setup import SweepSetupScreen
from difftui.tui.screens.sweep_view import SweepScreen
from difftui.tui.widgets.axis_chart import AxisChart
from difftui.tui.widgets.member_table import MemberTable
from difftui.tui.widgets.overlay_chart import OverlayChart
from difftui.tui.widgets.run_table import RunTable

pytestmark = pytest.mark.usefixtures("sweep_db", "tui_env")

SIZE = (140, 40)


async def _history(pilot) -> HistoryScreen:
    app = pilot.app
    return await pilot_wait(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.loaded
                            and app.screen, 30, "the history")


async def _highlight(pilot, run_id: int) -> None:
    table = pilot.app.screen.query_one(RunTable)
    table.move_cursor(row=table.get_row_index(str(run_id)))
    await pilot.pause()


async def _pick_grid(pilot, name: str) -> SweepGridScreen:
    app = pilot.app
    screen = await pilot_wait(pilot, lambda: isinstance(app.screen, SweepGridScreen) and app.screen.entries
                              and app.screen, 60, "the grid presets")
    options = screen.query_one("#grids", OptionList)
    while options.get_option_at_index(options.highlighted).id != name:
        await pilot.press("down")
    return screen


async def test_a_sweep_launched_from_the_history_runs_and_is_followed_in_the_view(sweep_db):
    db = sweep_db
    with Store(db) as store:
        base = store.create_run(tiny_config_dict(20), name="base", total_steps=20, device="cpu")
        store.update_run(base, status="completed")
    app = DifftuiApp(db_path=db)
    async with app.run_test(size=SIZE) as pilot:
        await _history(pilot)
        await pilot.press("w")
        grids = await _pick_grid(pilot, "p5-lambda-sb")
        # The lambda grid does not apply to this static U-Net: listed, and refused with its one line when picked.
        assert "applies to backbones dydit-s-2, dydit-b-2, not to backbone 'unet-demo'" in grids.entries[
            "p5-lambda-sb"][2]
        await pilot.press("enter")
        assert isinstance(app.screen, SweepGridScreen)
        await _pick_grid(pilot, "p1-dropout")
        await pilot.press("enter")
        setup = await pilot_wait(pilot, lambda: isinstance(app.screen, SweepSetupScreen) and app.screen.plan
                                 and app.screen, 60, "the first plan")
        assert [m.config.recipe.dropout for m in setup.plan.members] == [0.1, 0.2, 0.3]
        # Space toggles 0.2 off; a custom value off the grid is refused until off-grid is chosen.
        await pilot.press("down", "space")
        app.set_focus(setup.query_one("#sweep-value", Input))
        await pilot.press(*"0.15", "enter")
        await pilot_wait(pilot, lambda: setup.plan is None and "off the 'p1-dropout' grid" in setup.error, 30,
                         "the off-grid refusal")
        setup.query_one("#sweep-off-grid", Checkbox).value = True
        per_device = setup.query_one("#sweep-per-device", Input)
        per_device.value = "2"
        await pilot_wait(pilot, lambda: setup.plan is not None and setup.slots.count == 2, 30, "the re-plan")
        assert [(m.config.recipe.dropout, m.off_grid) for m in setup.plan.members] == [
            (0.1, False), (0.3, False), (0.15, True)]
        assert setup.estimate.total_steps == 60
        assert setup.estimate.wall_s is None                          # nothing measured for this network yet
        await pilot.press("ctrl+l")
        view = await pilot_wait(pilot, lambda: isinstance(app.screen, SweepScreen) and app.screen.polls
                                and app.screen, 60, "the sweep view")
        assert not any(isinstance(s, (SweepGridScreen, SweepSetupScreen)) for s in app.screen_stack)
        await pilot_wait(pilot, lambda: view.sweep["status"] == "completed"
                         and all(s.run["status"] == "completed" for s in view.summaries), 240, "the sweep to end")
        await pilot_wait(pilot, lambda: len(view.query_one(OverlayChart).plotted()) == 3, 20, "three curves")
        table = view.query_one(MemberTable)
        assert table.row_count == 3
        points = view.query_one(AxisChart).points
        assert points.axis == "recipe.dropout" and points.values == [0.1, 0.3, 0.15]
        assert all(v == v for v in points.last)                      # every member's final loss is plotted
    with Store(db) as store:
        sweep = store.list_sweeps()[0]
        assert sweep["preset"] == "p1-dropout" and sweep["counts"] == {"completed": 3}
        members = store.sweep_members(sweep["id"])
        assert [json.loads(m["config"])["recipe"]["dropout"] for m in members] == [0.1, 0.3, 0.15]
        assert [m["off_grid"] for m in members] == [0, 0, 1]


async def test_the_sweep_view_sorts_switches_metric_opens_a_member_and_retries_a_failed_one(tmp_path, sweep_db):
    db = make_sweep_db(tmp_path)
    app = DifftuiApp(db_path=db)
    async with app.run_test(size=SIZE) as pilot:
        await _history(pilot)
        await _highlight(pilot, 3)
        await pilot.press("g")
        view = await pilot_wait(pilot, lambda: isinstance(app.screen, SweepScreen) and app.screen.polls
                                and app.screen, 30, "the sweep view")
        table = view.query_one(MemberTable)
        assert table.order() == [2, 3, 4]
        assert [c.key for c in table.columns_now] == ["run", "axis:recipe.dropout", "status", "step",
                                                      "last:L_simple", "best:L_simple", "nll", "findings"]
        assert set(table.judged) == {2, 3, 4}                       # the doctor judged every member (issue 18)
        assert view.query_one(OverlayChart).plotted().keys() == {2, 3, 4}
        assert view.query_one(OverlayChart).labels == {2: "dropout=0.1", 4: "dropout=0.15*", 3: "dropout=0.3"}
        await pilot.press("o")                                       # sort by dropout
        assert table.sort_key == "axis:recipe.dropout" and table.order() == [2, 4, 3]
        await pilot.press("O")
        assert table.order() == [3, 4, 2]
        await pilot.press("o", "o", "o")                             # status, step, L_simple (last)
        assert table.sort_key == "last:L_simple"
        with Store(db) as store:
            last = {i: store.latest_values(i)["L_simple"] for i in (2, 3, 4)}
        assert table.order() == sorted(last, key=last.get)
        # Enter on a member opens its dashboard; escape comes back to the sweep.
        table.move_cursor(row=table.get_row_index("2"))
        await pilot.press("enter")
        await pilot_wait(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.run_id == 2, 20,
                         "member 2's dashboard")
        await pilot.press("escape")
        await pilot_wait(pilot, lambda: app.screen is view, 10, "the sweep view again")
        # Stopping a finished sweep is refused with its one line; r on the failed member runs it again for real.
        await pilot.press("S")
        await pilot_wait(pilot, lambda: any("sweep 1 is not running (partial)" in n.message
                                            for n in app._notifications), 20, "the refusal")
        table.move_cursor(row=table.get_row_index("4"))
        await pilot.press("r")
        await pilot_wait(pilot, lambda: any("run 4 queued again" in n.message for n in app._notifications), 30,
                         "the retry")
    run = wait_until(db, lambda s: s.get_run(4)["status"] not in ACTIVE_STATUSES and s.get_run(4), what="the retry")
    assert run["status"] == "completed" and run["step"] == 20 and run["error"] is None
    with Store(db) as store:
        assert store.get_sweep(1)["status"] in ("completed", "running")     # the retried member completed


async def test_the_sweep_view_marks_an_unfinished_member_and_leaves_it_out_of_the_axis_chart(tmp_path, sweep_db):
    """Issue 16 item 7: run 4 (dropout 0.15) failed at step 10 of 20; its loss is a partial value, not a result."""
    db = make_sweep_db(tmp_path)
    app = DifftuiApp(db_path=db)
    async with app.run_test(size=SIZE) as pilot:
        await _history(pilot)
        await _highlight(pilot, 3)
        await pilot.press("g")
        view = await pilot_wait(pilot, lambda: isinstance(app.screen, SweepScreen) and app.screen.polls
                                and app.screen, 30, "the sweep view")
        assert "● partial" in str(view.query_one("#sweep-status").render())
        table = view.query_one(MemberTable)
        row4 = [str(table.get_cell("4", k)) for k in ("last:L_simple", "best:L_simple")]
        row2 = [str(table.get_cell("2", k)) for k in ("last:L_simple", "best:L_simple")]
        assert all(c.endswith("†") for c in row4) and not any("†" in c for c in row2), (row2, row4)
        chart = view.query_one(AxisChart)
        assert chart.points.values == [0.1, 0.3] and chart.points.left_out == ["4"]
        assert [x for x, _ in zip(*chart.plotted()["L_simple last"], strict=True)] == [0.1, 0.3]
        assert chart.border_subtitle == "left out: run 4 (partial)"
        table.move_cursor(row=table.get_row_index("4"))
        await pilot_wait(pilot, lambda: "† failed at 10/20: partial values, not results, left out of the chart"
                         in str(view.query_one("#sweep-detail").render()), 10, "the member's detail")


async def test_compare_overlays_curves_diffs_configs_and_scrubs_grids_together(tmp_path, sweep_db):
    db = make_sweep_db(tmp_path)
    app = DifftuiApp(db_path=db)
    async with app.run_test(size=SIZE) as pilot:
        history = await _history(pilot)
        await pilot.press("c")
        assert not isinstance(app.screen, CompareScreen)             # nothing marked: a hint, no screen
        await _highlight(pilot, 2)
        await pilot.press("space")                                   # marks run 2 and moves down to run 1
        assert history.query_one(RunTable).marked == {2}
        await _highlight(pilot, 4)
        await pilot.press("space")
        await pilot.press("c")
        screen = await pilot_wait(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.polls
                                  and app.screen.shown and app.screen, 30, "the compare screen")
        assert screen.run_ids == [2, 4]
        assert screen.diff == [("recipe.dropout", [0.1, 0.15])]
        chart = screen.query_one(OverlayChart)
        assert chart.plotted().keys() == {2, 4}
        xs_step = chart.plotted()[2][0]
        await pilot.press("k")
        assert chart.x == "kimg" and chart.plotted()[2][0] == [x * 8 / 1000 for x in xs_step]
        # One scrubber: run 2 drew grids at 10 and 20, run 4 (failed) none.
        assert screen.steps == [10, 20] and screen.step == 20
        assert screen.shown[2] is not None and screen.shown[4] is None
        await pilot.press("left_square_bracket")
        await pilot_wait(pilot, lambda: screen.step == 10 and screen.shown.get(2) is not None and
                         screen.choices()[2]["step"] == 10, 10, "the grids at step 10")
        assert not screen.live
        await pilot.press("end")
        assert screen.step == 20 and screen.live


async def test_clone_fills_the_review_and_the_new_run_records_its_parent(tmp_path, sweep_db):
    db = make_sweep_db(tmp_path)
    app = DifftuiApp(db_path=db)
    async with app.run_test(size=SIZE) as pilot:
        await _history(pilot)
        await _highlight(pilot, 3)
        await pilot.press("N")
        review = await pilot_wait(pilot, lambda: isinstance(app.screen, ReviewScreen) and app.screen.config
                                  and app.screen, 60, "the review screen")
        assert review.clone_of == 3
        assert review.query_one("#batch-size", Input).value == "8"
        assert review.query_one("#max-steps", Input).value == "20"
        assert "recipe.dropout=0.3" in review.query_one("#overrides", Input).value
        assert review.config.recipe.dropout == 0.3 and review.config.backbone.arch["model_channels"] == 16
        await pilot.press("ctrl+l")
        await pilot_wait(pilot, lambda: isinstance(app.screen, DashboardScreen), 60, "the clone's dashboard")
        new_id = app.screen.run_id
    run = wait_until(db, lambda s: s.get_run(new_id)["status"] not in ACTIVE_STATUSES and s.get_run(new_id),
                     what="the clone to end")
    assert run["status"] == "completed" and run["parent_id"] == 3 and run["sweep_id"] is None
    with Store(db) as store:
        original = json.loads(store.get_run(3)["config"])
    clone = json.loads(run["config"])
    assert clone["recipe"] == original["recipe"] and clone["backbone"] == original["backbone"]


async def test_the_review_screen_sweeps_its_own_config_and_sweeps_are_listed(tmp_path, sweep_db):
    db = make_sweep_db(tmp_path)
    app = DifftuiApp(db_path=db)
    async with app.run_test(size=SIZE) as pilot:
        await _history(pilot)
        await pilot.press("W")
        listing = await pilot_wait(pilot, lambda: isinstance(app.screen, SweepListScreen) and app.screen.loaded
                                   and app.screen, 30, "the sweep list")
        assert [s["id"] for s in listing.sweeps] == [1]
        await pilot.press("enter")
        await pilot_wait(pilot, lambda: isinstance(app.screen, SweepScreen) and app.screen.sweep_id == 1, 20,
                         "the sweep view")
        await pilot.press("escape", "escape")
        await _history(pilot)
        await _highlight(pilot, 1)
        await pilot.press("N")
        review = await pilot_wait(pilot, lambda: isinstance(app.screen, ReviewScreen) and app.screen.config
                                  and app.screen, 60, "the review screen")
        review.query_one("#max-steps", Input).value = "35"
        await pilot.press("ctrl+g")
        grids = await pilot_wait(pilot, lambda: isinstance(app.screen, SweepGridScreen) and app.screen.entries
                                 and app.screen, 60, "the grid picker")
        assert grids.spec.max_steps == 35 and "recipe.batch_size=8" in grids.spec.overrides
        assert grids.entries["p1-dropout"][2] is None                 # applies to this U-Net
