"""The run dashboard: status line, loss chart, GPU panel, the latest fixed-x_T grid (with a scrubber) and the events.

Polling follows dolphie: a worker reads everything new since the last poll (`WHERE id > last_seen` for metrics, gpu
rows, events and grids, plus the run row and the newest grid's PNG, decoded there), posts one `RunPolled`, and the
timer is re-armed only once that batch has been drawn. Polls never overlap and a slow terminal just polls less often.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer

from difftui.engine.store import ACTIVE_STATUSES, Store
from difftui.tui import bindings
from difftui.tui.messages import GridLoaded, RunBatch, RunPolled
from difftui.tui.screens.base import PollingScreen
from difftui.tui.widgets.eval_view import EvalView
from difftui.tui.widgets.event_log import EventLog
from difftui.tui.widgets.gpu_panel import GpuPanel
from difftui.tui.widgets.grid_image import GridImage
from difftui.tui.widgets.loss_chart import LossChart
from difftui.tui.widgets.status_line import StatusLine

__all__ = ["DashboardScreen", "read_batch", "decode_png"]

POLL_ACTIVE_S = 1.0
POLL_IDLE_S = 3.0


def decode_png(png: bytes | None) -> Any:
    """PNG bytes -> a loaded RGB PIL image (the decode happens in the worker, not on the UI thread)."""
    if not png:
        return None
    from PIL import Image
    image = Image.open(io.BytesIO(png))
    image.load()
    return image.convert("RGB")


def read_batch(db_path: Path, run_id: int, *, last_metric: int = 0, last_gpu: int = 0, last_event: int = 0,
               last_sample: int = 0, newest_grid: bool = True) -> RunBatch:
    """Everything new about one run since the given row ids (one Store, opened and closed in the calling thread)."""
    with Store(db_path) as store:
        run = store.get_run(run_id)
        if run is not None and run["status"] in ACTIVE_STATUSES:
            store.reap_dead_runs()                  # the engine died: show crashed, not running forever
            run = store.get_run(run_id)
        batch = RunBatch(run=run, last_metric=last_metric, last_gpu=last_gpu, last_event=last_event,
                         last_sample=last_sample)
        if run is None:
            return batch
        batch.metrics = store.metrics_since(run_id, last_metric)
        batch.gpu = store.gpu_since(run_id, last_gpu)
        batch.events = store.events_since(run_id, last_event)
        batch.samples = [r for r in store.samples_index(run_id, "grid") if r["id"] > last_sample]
        if batch.metrics:
            batch.last_metric = batch.metrics[-1]["id"]
        if batch.gpu:
            batch.last_gpu = batch.gpu[-1]["id"]
        if batch.events:
            batch.last_event = batch.events[-1]["id"]
        if batch.samples:
            batch.last_sample = max(r["id"] for r in batch.samples)
            if newest_grid:
                newest = max(batch.samples, key=lambda r: (r["step"], r["id"]))
                batch.grid = (newest["id"], decode_png(store.sample_png(newest["id"])))
    return batch


class DashboardScreen(PollingScreen):
    BINDINGS = bindings.DASHBOARD

    def __init__(self, run_id: int) -> None:
        super().__init__()
        self.run_id = run_id
        self.run: dict[str, Any] | None = None
        self.latest: dict[str, float] = {}
        self.cursors = dict(last_metric=0, last_gpu=0, last_event=0, last_sample=0)
        self.polls = 0

    def compose(self) -> ComposeResult:
        yield StatusLine(id="status")
        with Horizontal(id="dash-main"):
            with Vertical(id="dash-left"):
                yield LossChart(id="loss")
                yield GpuPanel(id="gpu")
            with Vertical(id="dash-right"):
                yield GridImage(id="grid")
                yield EventLog(id="events")
        yield EvalView(self.run_id, id="eval-view")               # hidden until `t` (issue 9)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#grid").border_title = "fixed-x_T grid"
        self.query_one("#events").border_title = "events"
        self.refresh_now()

    # -- polling --------------------------------------------------------------------------------------------------

    poll_group = "dashboard-poll"
    retry_after_s = POLL_IDLE_S

    def start_poll(self) -> None:
        self.poll_run(dict(self.cursors), self.query_one(GridImage).index.live)

    @work(thread=True, exclusive=True, group="dashboard-poll", exit_on_error=False)
    def poll_run(self, cursors: dict[str, int], follow: bool) -> None:
        self.post_message(RunPolled(read_batch(self.app.db_path, self.run_id, newest_grid=follow, **cursors)))

    def on_run_polled(self, message: RunPolled) -> None:
        self.polls += 1
        batch = message.batch
        run = batch.run
        if self._rewound(batch.metrics):
            # Resumed from a checkpoint: the engine dropped the rows logged after it, so read the run afresh.
            self._reset_series()
            self._polling = False
            self.refresh_now()
            return
        self.run = run
        self.cursors = dict(last_metric=batch.last_metric, last_gpu=batch.last_gpu, last_event=batch.last_event,
                            last_sample=batch.last_sample)
        for row in batch.metrics:
            self.latest[row["name"]] = row["value"]
        self.query_one(StatusLine).update_run(run, self.latest)
        self.query_one(LossChart).add_points(batch.metrics)
        gpu = self.query_one(GpuPanel)
        gpu.set_device(run["device"] if run else "")
        gpu.add_rows(batch.gpu)
        self.query_one(EventLog).add_events(batch.events)
        grid = self.query_one(GridImage)
        grid.add_rows(batch.samples)
        if batch.grid is not None and grid.index.live:
            grid.show(*batch.grid)
        active = run is not None and run["status"] in ACTIVE_STATUSES
        self.poll_done(POLL_ACTIVE_S if active else POLL_IDLE_S)

    def _rewound(self, metrics: list[dict[str, Any]]) -> bool:
        """A loss logged again at or before a step already shown means the run went back to a checkpoint."""
        steps = self.query_one(LossChart).steps
        return any(steps.get(r["name"]) and r["step"] <= steps[r["name"]][-1] for r in metrics)

    def _reset_series(self) -> None:
        self.cursors.update(last_metric=0, last_sample=0)
        self.latest.clear()
        self.query_one(LossChart).clear_points()
        grid = self.query_one(GridImage)
        grid.index.reset()
        grid.refresh_caption()

    # -- the grid scrubber ----------------------------------------------------------------------------------------

    def _show_row(self, row: dict[str, Any] | None) -> None:
        grid = self.query_one(GridImage)
        grid.refresh_caption()
        if row is not None:
            self.load_grid(row["id"])

    def action_grid_prev(self) -> None:
        self._show_row(self.query_one(GridImage).index.move(-1))

    def action_grid_next(self) -> None:
        self._show_row(self.query_one(GridImage).index.move(+1))

    def action_grid_latest(self) -> None:
        self._show_row(self.query_one(GridImage).index.latest())

    @work(thread=True, exclusive=True, group="grid-load", exit_on_error=False)
    def load_grid(self, sample_id: int) -> None:
        with Store(self.app.db_path) as store:
            image = decode_png(store.sample_png(sample_id))
        self.post_message(GridLoaded(sample_id, image))

    def on_grid_loaded(self, message: GridLoaded) -> None:
        if message.image is not None:
            self.query_one(GridImage).show(message.sample_id, message.image)

    # -- chart toggles and run actions ----------------------------------------------------------------------------

    def action_toggle_smoothing(self) -> None:
        chart = self.query_one(LossChart)
        chart.smoothing = not chart.smoothing

    def action_toggle_log(self) -> None:
        chart = self.query_one(LossChart)
        chart.log_scale = not chart.log_scale

    def action_stop_run(self) -> None:
        self.app.stop_run(self.run_id)

    def action_resume_run(self) -> None:
        if self.run is not None and self.run["status"] in ACTIVE_STATUSES:
            self.notify(f"run {self.run_id} is {self.run['status']}", severity="warning")
            return
        self.app.resume_run(self.run_id)

    def action_evaluate_run(self) -> None:
        self.app.evaluate_run(self.run_id)

    def action_toggle_evaluations(self) -> None:
        """Swap the loss/GPU/grid panels for the evaluation view (its table, chart, curve and grids) and back."""
        self.query_one("#dash-main").display = not self.query_one(EvalView).toggle()

    def action_back(self) -> None:
        self.app.pop_screen()
