"""The dashboard's evaluation view (playbook 5.5-5.8): the evaluator's progress, the table of every recorded
evaluation with the metric over training steps, and the few-step curve as a table and a chart with its grids.

It reads runs.db on its own while it is shown (a worker, re-armed only after the result is drawn, as the dashboard
polls) and stays quiet while hidden. The grid of the highlighted curve row is decoded in a worker too.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import DataTable, Static
from textual.worker import Worker, WorkerState

from difftui.engine.eval.rows import curve_records, group_evaluations, table_records
from difftui.engine.launch import liveness
from difftui.engine.store import Store
from difftui.tui.advice import in_tui_words
from difftui.tui.graphics import preferred, widget_class
from difftui.tui.widgets.curve_view import CurveChart, CurveTable
from difftui.tui.widgets.eval_chart import EvalChart
from difftui.tui.widgets.eval_table import EvalTable

__all__ = ["EvalView", "read_evaluations", "job_line"]

POLL_S = 1.0


def read_evaluations(db_path: Path, run_id: int) -> dict[str, Any]:
    """Everything the view shows, read in one Store (in the calling worker thread)."""
    with Store(db_path) as store:
        liveness.reap_dead_jobs(store)
        run = store.get_run(run_id)
        rows = store.eval_results(run_id)
        jobs = store.jobs_for(run_id)[-3:]
        curve_samples = store.samples_index(run_id, "curve")
    groups = group_evaluations(rows)
    return {"records": table_records(groups), "curve": curve_records(groups), "jobs": jobs,
            "best": run.get("best_snapshot") if run else None, "curve_samples": curve_samples}


def job_line(jobs: list[dict[str, Any]]) -> Text:
    """The newest evaluator job in one line: its progress while it works, its outcome once it ended."""
    if not jobs:
        return Text("no evaluation yet - v evaluates this run (its counts and cost are shown first)", style="dim")
    job = jobs[-1]
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"eval job {job['id']} ", style="bold")
    if job["status"] in ("queued", "running"):
        text.append(job["status"], style="yellow")
        if job["total"]:
            text.append(f"  {job['done']}/{job['total']} ({100 * job['done'] / job['total']:.0f}%)")
        text.append(f"  {(job['message'] or '').splitlines()[0] if job['message'] else ''}")
    elif job["status"] == "done":
        when = time.strftime("%H:%M:%S", time.localtime(job["ended"])) if job["ended"] else ""
        text.append("done", style="green")
        text.append(f" at {when}")
    else:
        text.append(job["status"], style="red")
        text.append(f": {in_tui_words(job['error'] or '')}")
    return text


class EvalView(Vertical):
    """Hidden until toggled; `toggle()` returns whether it is now shown."""

    class Polled(Message):
        def __init__(self, data: dict[str, Any]) -> None:
            super().__init__()
            self.data = data

    class CurveGridLoaded(Message):
        def __init__(self, sample_id: int, image: Any, caption: str) -> None:
            super().__init__()
            self.sample_id = sample_id
            self.image = image
            self.caption = caption

    def __init__(self, run_id: int, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.run_id = run_id
        self.curve_samples: list[dict[str, Any]] = []
        self.shown_grid: int | None = None
        self.polls = 0
        self._timer: Timer | None = None
        self._polling = False

    def compose(self) -> ComposeResult:
        yield Static(job_line([]), id="eval-jobs")
        with Horizontal(id="eval-body"):
            with Vertical(id="eval-left"):
                yield EvalTable(id="eval-table")
                yield EvalChart(id="eval-chart")
            with Vertical(id="eval-right"):
                yield CurveTable(id="curve-table")
                yield CurveChart(id="curve-chart")
                yield Static("", id="curve-caption", markup=False)
                yield widget_class(preferred())(None, id="curve-picture")

    def on_mount(self) -> None:
        self.border_title = "evaluations"

    # -- showing and polling --------------------------------------------------------------------------------------

    def toggle(self) -> bool:
        self.display = not self.display
        if self.display:
            self.refresh_now()
        return bool(self.display)

    def refresh_now(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if not self._polling:
            self._polling = True
            self.poll(self.app.db_path)

    def _rearm(self) -> None:
        self._polling = False
        if self.display and self.is_attached and self._timer is None:
            self._timer = self.set_timer(POLL_S, self._tick)

    def _tick(self) -> None:
        self._timer = None
        if self.display:
            self.refresh_now()

    @work(thread=True, exclusive=True, group="eval-poll", exit_on_error=False)
    def poll(self, db_path: Path) -> None:
        self.post_message(self.Polled(read_evaluations(db_path, self.run_id)))

    def on_eval_view_polled(self, message: Polled) -> None:
        self.polls += 1
        data = message.data
        self.query_one("#eval-jobs", Static).update(job_line(data["jobs"]))
        self.query_one(EvalTable).show_records(data["records"], data["best"])
        self.query_one(EvalChart).show_records(data["records"])
        self.curve_samples = data["curve_samples"]
        curve = self.query_one(CurveTable)
        curve.show_records(data["curve"])
        self.query_one(CurveChart).show_records(data["curve"])
        if self.shown_grid is None:
            self._load_highlighted()
        self._rearm()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.group in ("eval-poll", "curve-grid"):
            error = event.worker.error
            self.query_one("#eval-jobs", Static).update(Text(f"cannot read the evaluations: {error}", style="red"))
            if event.worker.group == "eval-poll":
                self._rearm()

    # -- the curve's grids ----------------------------------------------------------------------------------------

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "curve-table":
            self._load_highlighted()

    def _load_highlighted(self) -> None:
        record = self.query_one(CurveTable).highlighted()
        if record is None:
            return
        match = [s for s in self.curve_samples if s["step"] == record["step"] and s["sampler"] == record["sampler"]]
        if match and match[-1]["id"] != self.shown_grid:
            caption = f"{record['sampler']}  NFE {record['nfe']}  step {record['step']}  (same x_T for every row)"
            self.load_grid(self.app.db_path, match[-1]["id"], caption)

    @work(thread=True, exclusive=True, group="curve-grid", exit_on_error=False)
    def load_grid(self, db_path: Path, sample_id: int, caption: str) -> None:
        from PIL import Image
        with Store(db_path) as store:
            png = store.sample_png(sample_id)
        image = None
        if png:
            image = Image.open(io.BytesIO(png))
            image.load()
            image = image.convert("RGB")
        self.post_message(self.CurveGridLoaded(sample_id, image, caption))

    def on_eval_view_curve_grid_loaded(self, message: CurveGridLoaded) -> None:
        if message.image is None:
            return
        self.shown_grid = message.sample_id
        self.query_one("#curve-caption", Static).update(message.caption)
        self.query_one("#curve-picture").image = message.image
