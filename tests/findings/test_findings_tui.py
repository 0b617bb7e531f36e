"""Findings in the TUI (issue 18 items 2-4) on recorded runs.db files: the dashboard's findings panel and badge, the
fix key that opens the fork review with the edit applied (and launches through launch/fork.py's fork_run), a grid
fix that opens the sweep setup, the history's lineage and findings columns, and the compare view's re-check."""

from __future__ import annotations

import json

from findings_kit import FORK, calm_fork, jittery_run
from textual.widgets import Input, Select
from tui_helpers import no_blink, pilot_wait

from difftui.engine.doctor.finding import Evidence, Finding, Grid
from difftui.engine.launch.outcome import Outcome
from difftui.engine.store import Store
from difftui.tui.app import DifftuiApp
from difftui.tui.screens.compare import CompareScreen
from difftui.tui.screens.dashboard import DashboardScreen
from difftui.tui.screens.finding_view import FindingScreen
from difftui.tui.screens.fork_review import ForkReviewScreen
from difftui.tui.screens.history import HistoryScreen
from difftui.tui.widgets.findings_panel import FindingsList, FindingsPanel
from difftui.tui.widgets.status_line import StatusLine

WIDE, COMPACT = (160, 45), (80, 24)


async def open_dashboard(pilot, run_id: int) -> DashboardScreen:
    app = pilot.app
    await pilot_wait(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.loaded, 30, "history")
    app.open_dashboard(run_id)
    await pilot_wait(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.polls
                   and app.screen.query_one(FindingsPanel).diagnosis is not None, 30, "the judged dashboard")
    no_blink(app)
    return app.screen


async def test_the_dashboard_shows_the_runs_finding_with_its_section_and_fix(tmp_path):
    db = tmp_path / "runs.db"
    run_id = jittery_run(db)
    app = DifftuiApp(db_path=db)
    async with app.run_test(size=WIDE) as pilot:
        screen = await open_dashboard(pilot, run_id)
        findings = screen.query_one(FindingsList)
        assert [f.rule for f in findings.findings] == ["vlb-jitter"]
        entry = str(findings.get_option_at_index(0).prompt)
        assert entry.startswith("WARNING ")
        assert "playbook 3.3: " in entry and "fix: recipe.importance_sampling=true" in entry
        assert "seen: L_vlb's per-image coefficient of variation is " in entry
        status = screen.query_one(StatusLine)
        assert status.findings == (1, 1, 0)         # one warning, none new: the run had it when the dashboard opened
        assert "⚑ 1 finding (ctrl+f)" in status.compose_line().plain
        assert screen.query_one(FindingsPanel).display     # the wide layout shows it beside the grid and events


async def test_a_finding_that_appears_while_watching_raises_the_badge_and_the_bell_when_asked(tmp_path, monkeypatch):
    import difftui.tui.prefs as prefs
    db = tmp_path / "runs.db"
    with Store(db) as store:                        # a healthy run first (too short to judge the VLB)
        from doctor_testkit import decaying, record
        from findings_kit import hybrid
        run_id = record(store, hybrid(), series={"L_simple": decaying(50)}, status="running")
    settings = prefs.settings_path()
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(json.dumps({"findings_notify": "bell"}))
    app = DifftuiApp(db_path=db)
    bells = []
    monkeypatch.setattr(app, "bell", lambda: bells.append(1))
    async with app.run_test(size=WIDE) as pilot:
        screen = await open_dashboard(pilot, run_id)
        assert screen.query_one(FindingsPanel).count == 0 and not bells
        from doctor_testkit import with_cv
        from findings_kit import BATCH, EVERY
        steps = [10 * (k + 51) for k in range(200)]
        with Store(db) as store:                    # the engine logs a jittery VLB
            store.write_batch(run_id, metrics=[(s, 0.0, "L_vlb", float(v), 0.0) for s, v in
                                               zip(steps, with_cv(200, 6.0, 40.0, BATCH * EVERY), strict=True)],
                              run_fields={"step": steps[-1]})
        screen.doctor._next_at = 0.0                # the pacing's wait is the doctor's test's business
        await pilot_wait(pilot, lambda: screen.query_one(FindingsPanel).count == 1, 30, "the new finding")
        assert screen.query_one(StatusLine).findings == (1, 1, 1)
        assert "1 finding, 1 NEW" in screen.query_one(StatusLine).compose_line().plain
        assert bells == [1]
        await pilot.press("ctrl+f")                 # looking at the findings clears the badge's "new"
        assert screen.query_one(StatusLine).findings == (1, 1, 0)
        assert isinstance(screen.focused, FindingsList)


async def test_p_cycles_to_the_findings_in_the_compact_layout_and_enter_shows_the_full_text(tmp_path):
    db = tmp_path / "runs.db"
    run_id = jittery_run(db)
    app = DifftuiApp(db_path=db)
    async with app.run_test(size=COMPACT) as pilot:
        screen = await open_dashboard(pilot, run_id)
        panel = screen.query_one(FindingsPanel)
        assert not panel.has_class("shown")
        for _ in range(4):                          # grid -> GPU -> events -> FLOPs -> findings
            await pilot.press("p")
        assert panel.has_class("shown") and panel.border_title == "findings  (p: fixed-x_T grid)"
        panel.query_one(FindingsList).focus()
        await pilot.press("enter")
        await pilot_wait(pilot, lambda: isinstance(app.screen, FindingScreen), 10, "the finding in full")
        text = str(app.screen.query_one("#finding-text").render())
        assert "(rule vlb-jitter, playbook 3.3)" in text and "--set recipe.importance_sampling=true" in text
        await pilot.press("escape")
        assert isinstance(app.screen, DashboardScreen)


async def test_f_on_a_finding_opens_the_fork_review_with_the_edit_and_launch_calls_fork_run(tmp_path, monkeypatch):
    from difftui.engine.launch import fork as fork_module
    db = tmp_path / "runs.db"
    run_id = jittery_run(db)
    calls = []

    def fake_fork_run(db_path, parent, step, sets, **kw):
        calls.append((parent, step, list(sets), kw.get("max_steps"), kw.get("fresh")))
        return Outcome(run_id, f"run {run_id} forked", proc=None)

    monkeypatch.setattr(fork_module, "fork_run", fake_fork_run)
    app = DifftuiApp(db_path=db)
    async with app.run_test(size=WIDE) as pilot:
        screen = await open_dashboard(pilot, run_id)
        screen.query_one(FindingsList).focus()
        await pilot.press("f")
        await pilot_wait(pilot, lambda: isinstance(app.screen, ForkReviewScreen) and app.screen.plan is not None,
                       30, "the planned fork")
        review = app.screen
        assert review.query_one("#fork-sets", Input).value == "recipe.importance_sampling=true"
        assert review.plan.step == FORK and review.plan.checkpoint.name == "ckpt-0002000.pt"    # the newest
        assert review.plan.describe_changes() == "recipe.importance_sampling False -> True"
        assert review.query_one("#fork-step", Select).value == "newest"
        review.query_one("#fork-step", Select).value = "1000"                   # the user picks another step
        await pilot_wait(pilot, lambda: review.plan is not None and review.plan.step == 1000, 30, "the re-plan")
        await pilot.press("ctrl+l")
        await pilot_wait(pilot, lambda: calls, 30, "fork_run")
    assert calls == [(run_id, 1000, ["recipe.importance_sampling=true"], None, False)]


async def test_the_fork_review_refuses_a_shape_change_in_one_line_and_starts_it_fresh_when_ticked(tmp_path):
    from difftui.tui.widgets.tickbox import TickBox
    db = tmp_path / "runs.db"
    run_id = jittery_run(db)
    app = DifftuiApp(db_path=db)
    async with app.run_test(size=WIDE) as pilot:
        await open_dashboard(pilot, run_id)
        app.push_screen(ForkReviewScreen(run_id, ["backbone.arch.model_channels=32"]))
        await pilot_wait(pilot, lambda: isinstance(app.screen, ForkReviewScreen) and app.screen.error, 30,
                       "the refusal")
        review = app.screen
        assert review.plan is None
        assert review.error.startswith(f"run {run_id} cannot be forked from a checkpoint with this change: "
                                       f"backbone.arch.model_channels ")
        assert review.error.endswith("'start fresh' starts the changed settings from step 0")
        review.query_one("#fork-fresh", TickBox).value = True
        await pilot_wait(pilot, lambda: review.plan is not None, 30, "the fresh plan")
        assert review.plan.fresh and review.plan.where() == "from step 0 (a fresh start with its settings)"


async def test_a_grid_fix_opens_the_sweep_setup_with_that_grid(tmp_path):
    from difftui.tui.screens.sweep_setup import SweepSetupScreen
    db = tmp_path / "runs.db"
    run_id = jittery_run(db)
    finding = Finding("overfitting", "warning", "overfitting", "1.4, 4.5, 2.9", "why",
                      Evidence("the held-out NLL rises"), grid=Grid("p1-dropout", {"recipe.dropout": (0.1, 0.2, 0.3)},
                                                                    "4.5"))
    app = DifftuiApp(db_path=db)
    async with app.run_test(size=WIDE) as pilot:
        await open_dashboard(pilot, run_id)
        app.fix_finding(run_id, finding)
        await pilot_wait(pilot, lambda: isinstance(app.screen, SweepSetupScreen), 30, "the sweep setup")
        assert app.screen.grid.name == "p1-dropout"
        assert app.screen.grid.axes == {"recipe.dropout": [0.1, 0.2, 0.3]}
        assert app.screen.spec.recipe == "p1-hybrid-cosine"


async def test_the_compare_view_of_a_fork_shows_the_recheck_verdict(tmp_path, monkeypatch):
    from difftui.engine.eval import start
    asked = []
    monkeypatch.setattr(start, "start_recheck", lambda db_path, parent, child, **kw: asked.append((parent, child))
                        or ["fixed protocol (playbook 5.6): ddim N = 50", f"run {parent}: evaluating"])
    db = tmp_path / "runs.db"
    parent = jittery_run(db)
    child = calm_fork(db, parent)
    app = DifftuiApp(db_path=db)
    async with app.run_test(size=WIDE) as pilot:
        await open_dashboard(pilot, child)
        await pilot.press("R")
        await pilot_wait(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.recheck is not None,
                       30, "the re-check")
        screen = app.screen
        assert [(v.rule, v.state) for v in screen.recheck.verdicts] == [("vlb-jitter", "symptom gone")]
        text = str(screen.query_one("#compare-recheck").render())
        assert text.startswith(f"re-check of run {child} (fork at step 2,000) against run {parent}: 1 symptom gone")
        assert "vlb-jitter (playbook 3.3): symptom gone" in text
        assert "fork at step 2,000" in str(screen.query_one("#compare-title").render())
        assert screen.query_one("#compare-curves").fork_step == FORK             # the chart's line at the fork
        await pilot.press("v")                      # the fixed-protocol evaluation of both (start_recheck)
        await pilot_wait(pilot, lambda: asked, 30, "start_recheck")
        assert asked == [(parent, child)]
        key = screen.recheck_key
        polls = screen.polls
        await pilot_wait(pilot, lambda: screen.polls > polls, 30, "another poll")
        assert screen.recheck_key == key            # nothing moved: not judged again


async def test_the_history_shows_the_lineage_and_the_findings_column(tmp_path, monkeypatch):
    import difftui.engine.doctor as doctor
    from difftui.tui.widgets.run_table import RunTable
    judged_runs = []
    real = doctor.diagnose
    monkeypatch.setattr(doctor, "diagnose", lambda store, run_id, **kw: judged_runs.append(run_id) or
                        real(store, run_id, **kw))
    db = tmp_path / "runs.db"
    parent = jittery_run(db)
    child = calm_fork(db, parent)
    app = DifftuiApp(db_path=db)
    async with app.run_test(size=WIDE) as pilot:
        await pilot_wait(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.settled
                       and len(app.screen.query_one(RunTable).judged) == 2, 30, "the judged history")
        table = app.screen.query_one(RunTable)
        rows = {int(k[0]): k for k in table._shown}
        columns = ["id", *list(table.columns)[1:]]
        name, findings = columns.index("name") + 1, columns.index("findings") + 1
        assert rows[child][name] == f"fork [fork of {parent} @ {FORK}]"
        assert rows[parent][findings] == "1 warn" and rows[child][findings] == "-"
        assert sorted(judged_runs) == [parent, child]
        with Store(db) as store:                    # the fork moves: only it is judged again
            store.write_batch(child, metrics=[(9000, 0.0, "L_simple", 0.1, 0.0)], run_fields={"step": 9000})
        await pilot_wait(pilot, lambda: len(judged_runs) == 3, 30, "the moved run judged again")
        await pilot.pause(2.5)                      # another poll: nothing moved, the cursors keep the judgements
        assert sorted(judged_runs) == sorted([parent, child, child])
        table.move_cursor(row=table.get_row_index(str(child)))
        await pilot.press("R")
        await pilot_wait(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.recheck is not None,
                       30, "the re-check from the history")
        assert app.screen.run_ids == [parent, child]


async def test_a_dashboard_poll_with_no_new_rows_does_not_judge_again(tmp_path):
    db = tmp_path / "runs.db"
    run_id = jittery_run(db)
    app = DifftuiApp(db_path=db)
    async with app.run_test(size=WIDE) as pilot:
        screen = await open_dashboard(pilot, run_id)
        judged, polls = screen.doctor.judged, screen.polls
        assert judged == 1
        await pilot_wait(pilot, lambda: screen.polls >= polls + 2, 30, "two more polls")
        assert screen.doctor.judged == 1            # the cursors did not move: the last judgement, one query


def test_the_findings_notification_setting_is_off_by_default_and_a_bad_value_is_one_line(tmp_path, capsys):
    from difftui.tui.prefs import load_settings
    path = tmp_path / "settings.json"
    assert load_settings(path) == {"findings_notify": "off"}          # no file
    path.write_text('{"findings_notify": "osc9"}')
    assert load_settings(path) == {"findings_notify": "osc9"}
    path.write_text('{"findings_notify": "loud"}')
    assert load_settings(path) == {"findings_notify": "off"}
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"difftui: warning: {path}: findings_notify: 'loud' is not one of off, bell, osc9; 'off' is used"]


def test_osc9_writes_one_notification_through_the_terminal_driver():
    from difftui.tui.screens.dashboard import osc9

    class Driver:
        def __init__(self):
            self.out = []

        def write(self, data):
            self.out.append(data)

        def flush(self):
            pass

    class App:
        is_headless = False
        _driver = Driver()

    osc9(App, "difftui: run 3: The VLB curve jitters\x1b[31m (playbook 3.3)")
    assert App._driver.out == ["\x1b]9;difftui: run 3: The VLB curve jitters[31m (playbook 3.3)\x07"]
