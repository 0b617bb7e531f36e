"""The dashboard's evaluation view (`t`): every recorded evaluation as a table with the best values highlighted, the
metric over training steps, the few-step curve as a table and a chart with its grids, and the evaluator's progress."""

from __future__ import annotations

from tui_helpers import FIXED_T, grid_png, pilot_wait

from difftui.engine.eval.rows import best_values, group_evaluations, table_records
from difftui.engine.store import Store
from difftui.tui.app import DifftuiApp
from difftui.tui.screens.dashboard import DashboardScreen
from difftui.tui.widgets.curve_view import CurveChart, CurveTable
from difftui.tui.widgets.eval_chart import EvalChart, chart_series
from difftui.tui.widgets.eval_table import EvalTable
from difftui.tui.widgets.eval_view import EvalView, job_line

SIZE = (160, 44)


def add_evaluations(db) -> None:
    """Run 1 of the prepared db: FID at 10k (quick) on two snapshots and a 50k FID with NLL on the checkpoint, a
    few-step curve with grids, and an evaluator job at work."""
    with Store(db) as store:
        quick = {"quick": True, "sampler": "DDIM eta=0 N=50 linear"}
        for job, step, fid, p, r in ((1, 500, 30.5, 0.55, 0.41), (2, 750, 24.25, 0.61, 0.47)):
            store.add_eval_results(1, [dict(step=step, snapshot=step, sampler="DDIM eta=0 N=50 linear", nfe=50,
                                            kind="fid", job_id=job, samples=10_000, repeats=1, protocol=quick,
                                            metric=m, value=v) for m, v in (("fid", fid), ("precision", p),
                                                                            ("recall", r), ("seconds", 60.0))])
        common = dict(step=1000, snapshot=None, sampler="DDIM eta=0 N=50 linear", nfe=50, kind="fid", job_id=3,
                      samples=50_000, repeats=3, protocol={"quick": False})
        store.add_eval_results(1, [{**common, "metric": "fid", "value": 21.75, "spread": 0.31},
                                   {**common, "metric": "precision", "value": 0.58},
                                   {**common, "metric": "recall", "value": 0.52},
                                   {**common, "metric": "seconds", "value": 300.0}])
        store.add_eval_results(1, [dict(step=1000, sampler="full chain T=1000 fixed_small", nfe=1000, kind="nll",
                                        job_id=3, metric="nll_bpd", value=3.91, samples=10_000, protocol={})])
        store.update_run(1, best_snapshot=750)
        for variance, name, base in (("fixed_small", "heuristic beta_tilde", 60.0), ("ocm", "OCM (P6)", 40.0)):
            for steps in (5, 10, 15, 20):
                label = f"{name} N={steps}"
                store.add_sample(1, step=1000, kind="curve", sampler=label, nfe=steps, png=grid_png(steps))
                proto = {"variance": variance, "steps": steps}
                store.add_eval_results(1, [
                    dict(step=1000, sampler=label, nfe=steps, kind="curve", job_id=4, samples=10_000,
                         protocol=proto, metric="fid", value=base / steps * 5),
                    dict(step=1000, sampler=label, nfe=steps, kind="curve", job_id=4, samples=256, protocol=proto,
                         metric="nll_bpd", value=4.0 + base / 100 - steps / 100)])
        job = store.create_job(1, "eval", {})
        store.update_job_row(job, status="running", done=3, total=12, message="FID: repeat 1/1, 640/10,000 images")


def test_records_join_fid_and_nll_and_know_the_best(prepared_db):
    add_evaluations(prepared_db)
    with Store(prepared_db) as store:
        records = table_records(group_evaluations(store.eval_results(1)))
    assert [(r["step"], r["snapshot"], r["samples"], r["quick"]) for r in records] == [
        (500, 500, 10_000, True), (750, 750, 10_000, True), (1000, None, 50_000, False)]
    last = records[-1]
    assert (last["fid"], last["spread"], last["nll_bpd"], last["nll_images"]) == (21.75, 0.31, 3.91, 10_000)
    assert best_values(records) == {"fid": 21.75, "precision": 0.61, "recall": 0.52, "nll_bpd": 3.91}
    metric, series = chart_series(records)
    assert metric == "fid" and set(series) == {"FID 10,000 quick DDIM eta=0 N=50 linear",
                                               "FID 50,000 DDIM eta=0 N=50 linear"}


async def test_t_shows_the_evaluations_the_curve_and_the_evaluators_progress(prepared_db):
    add_evaluations(prepared_db)
    app = DifftuiApp(db_path=prepared_db)
    async with app.run_test(size=SIZE) as pilot:
        await pilot_wait(pilot, lambda: len(app.screen_stack) > 1, 30, "the history screen")
        app.open_dashboard(1)
        dash = await pilot_wait(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.polls
                              and app.screen, 30, "the dashboard")
        view = dash.query_one(EvalView)
        assert not view.display
        await pilot.press("t")
        await pilot_wait(pilot, lambda: view.polls, 30, "the evaluation view's first poll")
        assert view.display and not dash.query_one("#dash-main").display
        table = view.query_one(EvalTable)
        assert table.row_count == 3
        best_fid = table.get_row_at(2)[5]
        assert str(best_fid) == "21.750 ±0.310" and "bold green" in str(best_fid.style)
        assert str(table.get_row_at(1)[1]) == " snap 750 *"                       # the best snapshot
        assert str(table.get_row_at(0)[4]) == "10,000 q"                             # the quick count beside it
        curve = view.query_one(CurveTable)
        assert curve.row_count == 8
        assert view.query_one(CurveChart).records and view.query_one(EvalChart).records
        await pilot_wait(pilot, lambda: view.shown_grid is not None, 30, "the curve grid")
        caption = str(view.query_one("#curve-caption").render())
        assert "N=5" in caption and "same x_T" in caption
        jobs = str(view.query_one("#eval-jobs").render())
        assert "running" in jobs and "3/12" in jobs and "640/10,000 images" in jobs
        await pilot.press("t")
        assert not view.display and dash.query_one("#dash-main").display


def test_job_line_says_what_the_newest_job_did():
    assert "v evaluates" in str(job_line([]))
    failed = {"id": 7, "status": "failed", "error": "Inception weights for FID not found at X", "ended": FIXED_T,
              "done": 0, "total": 0, "message": None}
    assert str(job_line([failed])) == "eval job 7 failed: Inception weights for FID not found at X"


async def test_the_view_shows_an_evaluation_at_work_and_then_its_evaluator_gone(prepared_db):
    """Issue 16 item 3: a running job with a live evaluator is shown as running (the job reaper used to raise a
    NameError here, shown as the view's error), and once the evaluator is killed the view says it failed, in one line."""
    import socket
    import subprocess
    import sys

    from difftui.engine.launch.lock import process_start_time
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with Store(prepared_db) as store:
            job = store.create_job(1, "eval", {})
            store.claim_job(job, pid=live.pid, pid_start=process_start_time(live.pid), host=socket.gethostname(),
                            message="starting")
            store.report_progress(job, 3, 12, "FID: repeat 1/1, 640/10,000 images")
        app = DifftuiApp(db_path=prepared_db)
        async with app.run_test(size=SIZE) as pilot:
            await pilot_wait(pilot, lambda: len(app.screen_stack) > 1, 30, "the history screen")
            app.open_dashboard(1)
            dash = await pilot_wait(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.polls
                                  and app.screen, 30, "the dashboard")
            view = dash.query_one(EvalView)
            await pilot.press("t")
            await pilot_wait(pilot, lambda: view.polls >= 2, 30, "two polls of the evaluation view")
            jobs = str(view.query_one("#eval-jobs").render())
            assert jobs.startswith(f"eval job {job} running") and "3/12 (25%)" in jobs
            assert [n.message for n in app._notifications if n.severity == "error"] == []
            live.kill()                                 # kill -9: the next poll reaps it
            live.wait()
            await pilot_wait(pilot, lambda: "failed" in str(view.query_one("#eval-jobs").render()), 30,
                           "the killed evaluator's job to read failed")
            jobs = str(view.query_one("#eval-jobs").render())
            assert jobs.startswith(f"eval job {job} failed: evaluator process ended without a final status "
                                   f"(pid {live.pid}, killed or crashed)")
            assert [n.message for n in app._notifications if n.severity == "error"] == []
    finally:
        live.kill()
        live.wait()
