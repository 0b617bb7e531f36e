"""Snapshots of the dashboard with a finding (issue 18 item 2): at 160x45 the findings panel beside the grid and the
events, and at 80x24 the side panel that p has switched to the findings; the badge on the status line in both."""

from __future__ import annotations

from findings_kit import jittery_run
from test_findings_tui import COMPACT, WIDE, open_dashboard

from difftui.tui.app import DifftuiApp
from difftui.tui.widgets.findings_panel import FindingsPanel


def test_snapshot_dashboard_with_a_finding_at_160x45(snap_compare, tmp_path):
    db = tmp_path / "runs.db"
    run_id = jittery_run(db)

    async def before(pilot):
        await open_dashboard(pilot, run_id)
        await pilot.pause()

    assert snap_compare(DifftuiApp(db_path=db), terminal_size=WIDE, run_before=before)


def test_snapshot_dashboard_with_a_finding_at_80x24(snap_compare, tmp_path):
    db = tmp_path / "runs.db"
    run_id = jittery_run(db)

    async def before(pilot):
        screen = await open_dashboard(pilot, run_id)
        await pilot.press("ctrl+f")                 # the findings side panel, focused
        assert screen.query_one(FindingsPanel).has_class("shown")
        await pilot.pause()

    assert snap_compare(DifftuiApp(db_path=db), terminal_size=COMPACT, run_before=before)
