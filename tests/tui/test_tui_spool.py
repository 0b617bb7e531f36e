"""The TUI watches a run whose engine writes a spool (issue 17 item 2: a run on a cluster node): the history's and
the dashboard's polls ingest it in their workers, so it is listed and charted as a local run is, live, to its end."""

from __future__ import annotations

import time
from pathlib import Path

from tui_helpers import config_dict, grid_png, wait_for

from difftui.engine.store import Store
from difftui.engine.store.spool import SpoolSink, write_run_json
from difftui.tui.app import DifftuiApp
from difftui.tui.screens.dashboard import DashboardScreen
from difftui.tui.screens.history import HistoryScreen
from difftui.tui.widgets.grid_image import GridImage

SIZE = (160, 45)


def node_run(tmp_path: Path) -> tuple[Path, int, Path]:
    """A spool run whose engine runs on another machine ('node7'), and nothing of it in runs.db yet."""
    db = tmp_path / "runs.db"
    with Store(db) as store:
        run_id = store.create_run(config_dict(), name="on-the-cluster", total_steps=200, sink="spool")
        run = store.get_run(run_id)
    write_run_json(run)
    return db, run_id, Path(run["run_dir"])


def log_steps(sink: SpoolSink, steps, final=None) -> None:
    now = time.time()
    sink.write_batch(sink.run_id, metrics=[(s, s * 0.128, "L_simple", 1.0 / s, now) for s in steps],
                     events=[(now, "info", f"logged up to step {steps[-1]}")],
                     run_fields={"step": steps[-1], "kimg": steps[-1] * 0.128, "heartbeat": now}, final=final)
    sink.heartbeat.beat()


async def test_the_history_and_the_dashboard_ingest_a_spool_run_and_follow_it_to_its_end(tmp_path):
    db, run_id, run_dir = node_run(tmp_path)
    sink = SpoolSink(run_dir, run_id)
    sink.mark_running(run_id, pid=4242, pid_start=None, host="node7", started=time.time())
    log_steps(sink, [10, 20, 30])
    png = grid_png(30)
    (run_dir / "grids").mkdir()
    (run_dir / "grids" / "step-0000030.png").write_bytes(png)
    sink.add_sample(run_id, step=30, kind="grid", sampler="DDIM eta=0 N=50 linear", nfe=50, png=png,
                    path=str(run_dir / "grids" / "step-0000030.png"))
    app = DifftuiApp(db_path=db)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.loaded, 30, "the history")
        with Store(db) as store:
            run = store.get_run(run_id)
        assert (run["status"], run["step"], run["host"]) == ("running", 30, "node7")    # ingested by its poll
        app.open_dashboard(run_id)
        dash = await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.polls
                              and app.screen, 30, "the dashboard")
        await wait_for(pilot, lambda: dash.latest.get("L_simple") == 1.0 / 30, 30, "the loss")
        grid = dash.query_one(GridImage)
        await wait_for(pilot, lambda: grid.index.current is not None and grid.index.current["step"] == 30, 30,
                       "the grid")
        log_steps(sink, [100, 200], final=("completed", None))       # the engine goes on, then ends
        dash.refresh_now()
        await wait_for(pilot, lambda: dash.run["status"] == "completed", 30, "the final status")
        assert dash.run["step"] == 200 and dash.latest["L_simple"] == 1.0 / 200
        # An evaluator the engine started writes after the run ended: the reaper no longer ingests the run (it is
        # not active), the dashboard's poll still does.
        with SpoolSink.for_evaluator(run_dir, run_id) as ev:
            ev.add_event(run_id, "info", "eval: a late result")
        polls = dash.polls
        dash.refresh_now()
        await wait_for(pilot, lambda: dash.polls > polls + 1, 30, "two polls")
        with Store(db) as store:
            assert [e["message"] for e in store.events_since(run_id)][-1] == "eval: a late result"
    sink.close()
    with Store(db) as store:
        assert [s for s, _ in store.series(run_id, "L_simple")] == [10, 20, 30, 100, 200]     # each once
        assert [e["message"] for e in store.events_since(run_id)] == ["logged up to step 30",
                                                                       "logged up to step 200",
                                                                       "eval: a late result"]
