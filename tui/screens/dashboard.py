"""The run dashboard: status line, the metric grid, the FLOPs-budget and GPU panels, the newest fixed-x_T grid (with
a scrubber and a full-size view) and the events.

Two layouts, chosen by the terminal's size (the screen's `compact` class; issue 16 item 9). From 120x30 up: the
metric grid and the FLOPs panel on the left, the grid, GPU and events panels on the right. Below that (80x24,
100x30): the metric grid on the left and ONE side panel on the right, wide enough for the grid's samples to be read,
which `p` switches between the grid, the GPU, the events, the FLOPs and the findings panel; the chart filter's bar
shows only while it is used.

Findings (issue 18 item 2): the poll worker also asks the run's Doctor (engine/doctor/judge.py) in the same
connection, every DOCTOR_EVERY_S; it judges again only when the run's tables moved (one indexed query otherwise)
and is paced to DOCTOR_BUDGET of a core. A finding that appears while the dashboard is open raises a badge on the status line, a toast,
and, when the user asked for it (tui/prefs.py: findings_notify), a terminal bell or an OSC 9 notification.

Polling follows dolphie: a worker reads what is new since the last poll and posts one `RunPolled`; the timer is
re-armed only once that batch has been drawn, so polls never overlap and a slow terminal just polls less often. The
first poll (and one after a rewind or a long pause) reads every series already reduced by SQL to buckets
(`Store.series_buckets`), so a run with a million metric rows opens in well under a second; later polls read only
the rows added since (`WHERE id > last_seen`).
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Footer, Input

from difftui.engine.doctor import Doctor
from difftui.engine.launch import liveness
from difftui.engine.store import ACTIVE_STATUSES, Store, open_for_reading
from difftui.engine.store.ingest import ingest_runs
from difftui.engine.text import one_line
from difftui.tui import bindings
from difftui.tui.messages import GridLoaded, RunBatch, RunPolled
from difftui.tui.metric_series import CAPACITY, DEFAULT_SMOOTHING, HIDDEN_METRICS, BucketSeries, as_value
from difftui.tui.screens.base import PollingScreen, unless_closing
from difftui.tui.widgets.chart_filter import ChartFilter
from difftui.tui.widgets.eval_view import EvalView
from difftui.tui.widgets.event_log import EventLog
from difftui.tui.widgets.findings_panel import FindingsList, FindingsPanel
from difftui.tui.widgets.flops_panel import FLOPS_TOLERANCE, FlopsPanel
from difftui.tui.widgets.gpu_panel import HISTORY, GpuPanel
from difftui.tui.widgets.grid_image import GridImage
from difftui.tui.widgets.metric_chart import SMOOTHING_STEPS, MetricChart, MetricGrid, Reference
from difftui.tui.widgets.status_line import StatusLine

__all__ = ["DashboardScreen", "read_batch", "read_series", "decode_png", "osc9"]

COMPACT_BELOW = (120, 30)   # columns, rows: a smaller terminal gets the compact layout
SIDE_PANELS = (("grid", "fixed-x_T grid"), ("gpu", "GPU"), ("events", "events"), ("flops-side-box", "FLOPs budget"),
               ("findings", "findings"))
POLL_ACTIVE_S = 1.0
POLL_IDLE_S = 3.0
REREAD_ROWS = 20_000        # more new metric rows than this since the last poll: read the buckets again instead
GPU_ROWS = HISTORY * 8      # the GPU panel's window, for up to 8 GPUs
FIRST_JUDGEMENT_S = 0.2    # the poll after the first one, which asks the doctor (the first draws the charts alone)
DOCTOR_BUDGET = 0.002       # the doctor's share of a core while a run moves on every poll (Doctor's pacing)
DOCTOR_EVERY_S = 5.0        # how often a poll asks the doctor (its cursor query), once the first judgement is in


def decode_png(png: bytes | None) -> Any:
    """PNG bytes -> a loaded RGB PIL image (the decode happens in the worker, not on the UI thread)."""
    if not png:
        return None
    from PIL import Image
    image = Image.open(io.BytesIO(png))
    image.load()
    return image.convert("RGB")


def osc9(app: Any, text: str) -> None:
    """An OSC 9 desktop notification (iTerm2, WezTerm, kitty, Windows Terminal; others ignore it), written through
    the app's driver, which owns the terminal. Headless (tests) there is no terminal: nothing is written."""
    driver = getattr(app, "_driver", None)
    if driver is not None and not app.is_headless:
        clean = "".join(c for c in text if c.isprintable())[:200]
        driver.write(f"\x1b]9;{clean}\x07")
        driver.flush()


def read_series(store: Store, run_id: int, max_id: int) -> tuple[dict[str, BucketSeries], dict[str, float]]:
    """Every metric series of a run up to row `max_id`, bucketed in SQL, and each metric's newest value."""
    series: dict[str, BucketSeries] = {}
    latest: dict[str, float] = {}
    for name in store.series_names(run_id):
        tail = store.series_tail(run_id, name, 1, max_id)
        if not tail:
            continue
        latest[name] = as_value(tail[0]["value"])
        if name in HIDDEN_METRICS:
            continue
        width, rows = store.series_buckets(run_id, name, CAPACITY, max_id)
        series[name] = BucketSeries.from_buckets(width, rows, (tail[0]["step"], tail[0]["value"]))
    return series, latest


def read_batch(db_path: Path, run_id: int, *, last_metric: int = 0, last_gpu: int = 0, last_event: int = 0,
               last_sample: int = 0, last_eval: int = 0, newest_grid: bool = True, full: bool = False,
               doctor: Any = None) -> RunBatch:
    """Everything new about one run since the given row ids (one Store, opened and closed in the calling thread);
    with `doctor` (an engine Doctor for this run), its current judgement too."""
    start = time.perf_counter()
    with open_for_reading(db_path) as store:
        run = store.get_run(run_id)
        if run is not None and run["sink"] == "spool":
            ingest_runs(store, [run])               # what its engine (on a cluster node, say) wrote since
            run = store.get_run(run_id)
        if run is not None and run["status"] in ACTIVE_STATUSES:
            liveness.reap_dead_runs(store)          # the engine died: show crashed, not running forever
            run = store.get_run(run_id)
        batch = RunBatch(run=run, last_metric=last_metric, last_gpu=last_gpu, last_event=last_event,
                         last_sample=last_sample, last_eval=last_eval)
        if run is None:
            return batch
        newest = store.metric_cursor(run_id)
        if full or last_metric == 0 or newest - last_metric > REREAD_ROWS:
            batch.series, batch.latest = read_series(store, run_id, newest)
            batch.last_metric = newest
            batch.gpu = store.gpu_recent(run_id, GPU_ROWS)
            batch.evals = store.evals_since(run_id, 0)
        else:
            batch.metrics = store.metrics_since(run_id, last_metric)
            batch.gpu = store.gpu_since(run_id, last_gpu)
            batch.evals = store.evals_since(run_id, last_eval)
            if batch.metrics:
                batch.last_metric = batch.metrics[-1]["id"]
        batch.events = store.events_since(run_id, last_event)
        batch.samples = store.samples_since(run_id, last_sample, "grid")
        if batch.gpu:
            batch.last_gpu = batch.gpu[-1]["id"]
        if batch.events:
            batch.last_event = batch.events[-1]["id"]
        if batch.evals:
            batch.last_eval = batch.evals[-1]["id"]
        if batch.samples:
            batch.last_sample = batch.samples[-1]["id"]
            if newest_grid:
                newest_row = max(batch.samples, key=lambda r: (r["step"], r["id"]))
                batch.grid = (newest_row["id"], decode_png(store.sample_png(newest_row["id"])))
        if doctor is not None:
            try:
                batch.diagnosis = doctor.check(store)
                batch.doctor_stale = doctor.stale
            except Exception as e:                  # the doctor's fault never stops the dashboard
                batch.doctor_error = one_line(e)
    batch.seconds = time.perf_counter() - start
    return batch


class DashboardScreen(PollingScreen):
    HELP_TITLE = "run dashboard"
    # What the short lines of this screen leave out (the help screen's "details").
    HELP_NOTES = (
        ("few-step curve", "v measures the sampler panel and the held-out NLL (and FID when the Inception weights "
                           "are there). The few-step curve (FID and NLL at 5/10/15/20 steps per covariance, "
                           "playbook 5.7, 5.8) is drawn by the evaluator from a shell: "
                           "difftui eval RUN_ID --curve --quick; t then shows it here."),
    )
    BINDINGS = bindings.DASHBOARD
    AUTO_FOCUS = "#metrics"                 # not the filter: a focused input would swallow every key

    def __init__(self, run_id: int) -> None:
        super().__init__()
        self.run_id = run_id
        self.run: dict[str, Any] | None = None
        self.config: dict[str, Any] = {}
        self.latest: dict[str, float] = {}
        self.evals: list[dict[str, Any]] = []
        self.cursors = self._fresh_cursors()
        self.full_read = True
        self.polls = 0
        self.opened_in: float | None = None        # seconds from mount to the first batch drawn
        self.smoothing_on = DEFAULT_SMOOTHING        # the weight `e` turns smoothing back on with
        self._mounted_at = time.perf_counter()
        self.doctor: Doctor | None = None           # made on mount (it needs the app's preset folders)
        self._doctor_asked = 0.0                    # when a poll last asked it (time.monotonic)
        self.seen_rules: set[str] | None = None     # the rules with a finding so far (None: not judged yet)
        self.new_rules: set[str] = set()            # found while the dashboard was open, not yet looked at

    @staticmethod
    def _fresh_cursors() -> dict[str, int]:
        return dict(last_metric=0, last_gpu=0, last_event=0, last_sample=0, last_eval=0)

    def compose(self) -> ComposeResult:
        yield StatusLine(id="status")
        with Horizontal(id="dash-main"):
            with Vertical(id="dash-left"):
                with Horizontal(id="metrics-bar", classes="idle"):
                    yield ChartFilter(id="metric-filter")
                yield MetricGrid(id="metrics")
                yield FlopsPanel(id="flops")
            with Vertical(id="dash-right"):
                yield GridImage(id="grid", classes="side shown")
                yield GpuPanel(id="gpu").add_class("side")
                yield EventLog(id="events").add_class("side")
                with VerticalScroll(id="flops-side-box", classes="side"):     # the compact layout's FLOPs panel
                    yield FlopsPanel(id="flops-side")
                yield FindingsPanel(id="findings", classes="side")
        yield EvalView(self.run_id, id="eval-view")               # hidden until `t` (issue 9)
        yield Footer()

    @unless_closing
    def on_mount(self) -> None:
        self._mounted_at = time.perf_counter()
        self.doctor = Doctor(None, self.run_id, tuple(self.app.preset_dirs), budget=DOCTOR_BUDGET)
        self.query_one("#metrics").border_title = self._metrics_title()
        self._layout(self.size.width, self.size.height)
        self.refresh_now()

    # -- the layout: wide, or compact with one side panel (p) -------------------------------------------------------

    side = 0                                    # which of SIDE_PANELS the compact layout shows

    @property
    def compact(self) -> bool:
        return self.has_class("compact")

    @unless_closing
    def on_resize(self, event) -> None:
        if self.is_mounted:
            self._layout(event.size.width, event.size.height)

    def _layout(self, width: int, height: int) -> None:
        compact = width < COMPACT_BELOW[0] or height < COMPACT_BELOW[1]
        if compact != self.compact or not self.query_one("#grid").border_title:
            self.set_class(compact, "compact")
            self._side_titles()
            self.refresh_bindings()

    def _side_titles(self) -> None:
        """The side panels' titles; in the compact layout the one shown names the panel `p` shows next."""
        for i, (panel_id, title) in enumerate(SIDE_PANELS):
            panel = self.query_one(f"#{panel_id}")
            panel.set_class(i == self.side, "shown")
            following = SIDE_PANELS[(i + 1) % len(SIDE_PANELS)][1]
            panel.border_title = f"{title}  (p: {following})" if self.compact else title

    def action_next_panel(self) -> None:
        """p (compact layout): the next side panel (grid, GPU, events, FLOPs)."""
        self.side = (self.side + 1) % len(SIDE_PANELS)
        self._side_titles()
        if SIDE_PANELS[self.side][0] == "findings":
            self._findings_seen()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "next_panel":
            return self.compact                 # the wide layout shows every panel: no key in the footer
        return True

    def _metrics_title(self) -> str:
        weight = self.query_one(MetricGrid).smoothing
        smooth = f"EMA {weight:g} (debiased)" if weight > 0 else "raw"
        return f"metrics - line: {smooth}, faint: raw"

    # -- polling --------------------------------------------------------------------------------------------------

    poll_group = "dashboard-poll"
    retry_after_s = POLL_IDLE_S

    def start_poll(self) -> None:
        self.poll_run(dict(self.cursors), self.query_one(GridImage).index.live, self.full_read)

    @work(thread=True, exclusive=True, group="dashboard-poll", exit_on_error=False)
    def poll_run(self, cursors: dict[str, int], follow: bool, full: bool) -> None:
        # The doctor from the second poll on (opening a run of a million rows draws its charts without waiting for
        # a judgement, which follows one poll later), then every DOCTOR_EVERY_S: a run's findings change over
        # minutes, and the dashboard's CPU while watching stays near what it was without them (bench/RESULTS.md).
        now = time.monotonic()
        ask = self.polls and (self.doctor.diagnosis is None or now - self._doctor_asked >= DOCTOR_EVERY_S)
        if ask:
            self._doctor_asked = now
        doctor = self.doctor if ask else None
        self.post_message(RunPolled(read_batch(self.app.db_path, self.run_id, newest_grid=follow, full=full,
                                               doctor=doctor, **cursors)))

    @unless_closing
    def on_run_polled(self, message: RunPolled) -> None:
        self.polls += 1
        batch = message.batch
        run = batch.run
        metrics = self.query_one(MetricGrid)
        if batch.full:
            metrics.set_series(batch.series)
            self.latest = dict(batch.latest)
            self.query_one(GpuPanel).reset()
            self.evals = []
        elif not metrics.add_rows(batch.metrics):
            # Resumed from a checkpoint: the engine dropped the rows logged after it, so read the run afresh.
            self._reset_series()
            self._polling = False
            self.refresh_now()
            return
        else:
            for row in batch.metrics:
                self.latest[row["name"]] = as_value(row["value"])
        self.full_read = False
        self.run = run
        self.cursors = dict(last_metric=batch.last_metric, last_gpu=batch.last_gpu, last_event=batch.last_event,
                            last_sample=batch.last_sample, last_eval=batch.last_eval)
        if run is not None and run.get("config"):
            self._set_config(run["config"])
        self._flops_references()
        if batch.evals:
            self.evals.extend(batch.evals)
            metrics.set_evals(self.evals)
        self.query_one(StatusLine).update_run(run, self.latest)
        active = run is not None and run["status"] in ACTIVE_STATUSES
        gpu = self.query_one(GpuPanel)
        gpu.set_device(run["device"] if run else "", live=active)
        gpu.add_rows(batch.gpu)
        self.query_one(EventLog).add_events(batch.events)
        grid = self.query_one(GridImage)
        grid.add_rows(batch.samples)
        if batch.grid is not None and grid.index.live:
            grid.show(*batch.grid)
        ratio_chart = metrics.charts.get("flops_ratio")
        gpu_name = next((str(r.get("name")) for r in gpu.latest.values() if r.get("name")), "")
        for panel in self.query(FlopsPanel):
            panel.update_from(run, self.latest, ratio_chart.series.get("flops_ratio") if ratio_chart else None,
                              grid.index.newest, gpu_name)
        self._show_findings(batch)
        if self.opened_in is None:
            self.opened_in = time.perf_counter() - self._mounted_at
        self.poll_done(FIRST_JUDGEMENT_S if self.polls == 1 else POLL_ACTIVE_S if active else POLL_IDLE_S)

    def _set_config(self, text: str) -> None:
        if self.config.get("_text") == text:
            return
        try:
            self.config = {**json.loads(text), "_text": text}
        except (TypeError, ValueError):
            self.config = {"_text": text}

    def _flops_references(self) -> None:
        """The FLOPs-ratio chart's target lambda, its tolerance band and the end of the warm-up (playbook 3.5, A.2)."""
        chart = self.query_one(MetricGrid).charts.get("flops_ratio")
        target = (self.config.get("recipe") or {}).get("flops_lambda")
        if chart is None or target is None:
            return
        refs = [Reference(y=target, label="target lambda"), Reference(y=target - FLOPS_TOLERANCE, label="band"),
                Reference(y=target + FLOPS_TOLERANCE, label="band")]
        warmup = int(((self.config.get("backbone") or {}).get("arch") or {}).get("warmup_steps") or 0)
        if warmup:
            refs.append(Reference(x=warmup, label="warm-up end"))
        chart.set_references(refs)

    def _reset_series(self) -> None:
        self.cursors.update(last_metric=0, last_sample=0, last_eval=0)
        self.full_read = True
        self.latest.clear()
        self.evals = []
        self.query_one(MetricGrid).clear()
        self.query_one(GridImage).clear()

    # -- findings (issue 18 item 2) ----------------------------------------------------------------------------------

    def _show_findings(self, batch: RunBatch) -> None:
        panel = self.query_one(FindingsPanel)
        diagnosis = batch.diagnosis
        if diagnosis is None:
            if batch.doctor_error:
                panel.show(None)
                panel.query_one("#findings-head").update(f"the doctor could not judge: {batch.doctor_error}")
            return
        panel.show(diagnosis, stale=batch.doctor_stale)
        rules = {f.rule for f in diagnosis.findings}
        if self.seen_rules is None:                 # the first judgement: what the run already had is not news
            self.seen_rules = rules
        elif rules - self.seen_rules:
            fresh = [f for f in diagnosis.findings if f.rule not in self.seen_rules]
            self.seen_rules |= rules
            self.new_rules |= {f.rule for f in fresh}
            self._announce(fresh)
        self._badge()

    def _badge(self) -> None:
        panel = self.query_one(FindingsPanel)
        diagnosis = panel.diagnosis
        warnings = len(diagnosis.warnings) if diagnosis is not None else 0
        self.query_one(StatusLine).set_findings(panel.count, warnings, len(self.new_rules))

    def _announce(self, fresh: list) -> None:
        """A toast always; the terminal's bell or an OSC 9 notification when the user turned it on (prefs)."""
        from difftui.tui.prefs import load_settings
        first = fresh[0]
        more = f" (+{len(fresh) - 1} more)" if len(fresh) > 1 else ""
        line = f"run {self.run_id}: {first.title} (playbook {first.section}){more}"
        self.notify(f"{line}; ctrl+f: findings", title="new finding",
                    severity="warning" if first.severity == "warning" else "information", timeout=10)
        how = load_settings().get("findings_notify", "off")
        if how == "bell":
            self.app.bell()
        elif how == "osc9":
            osc9(self.app, f"difftui: {line}")

    def _findings_seen(self) -> None:
        if self.new_rules:
            self.new_rules.clear()
            self._badge()

    def action_focus_findings(self) -> None:
        """ctrl+f: the findings list (in the compact layout, its side panel first)."""
        if self.compact and SIDE_PANELS[self.side][0] != "findings":
            self.side = [p for p, _ in SIDE_PANELS].index("findings")
            self._side_titles()
        self.query_one(FindingsList).focus()
        self._findings_seen()

    @on(FindingsList.Chosen)
    def _finding_chosen(self, event: FindingsList.Chosen) -> None:
        self._findings_seen()
        if event.what in ("fix", "grid"):
            self.app.fix_finding(self.run_id, event.finding, grid=event.what == "grid")
            return
        from difftui.tui.screens.finding_view import FindingScreen

        def closed(what: str | None) -> None:
            if what:
                self.app.fix_finding(self.run_id, event.finding, grid=what == "grid")
        self.app.push_screen(FindingScreen(event.finding, self.run_id), closed)

    def on_descendant_focus(self, event) -> None:
        if isinstance(event.widget, FindingsList):  # looking at the findings: the badge's "new" is seen
            self._findings_seen()

    def action_recheck(self) -> None:
        """R: this fork against its parent in the compare view, with the re-check's verdicts."""
        run = self.run or {}
        if not run.get("parent_id"):
            self.notify(f"run {self.run_id} is no fork (it has no parent to re-check against)", severity="warning")
            return
        self.app.open_compare([run["parent_id"], self.run_id])

    # -- the grid scrubber and the full-size view -------------------------------------------------------------------

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
        with open_for_reading(self.app.db_path) as store:
            image = decode_png(store.sample_png(sample_id))
        self.post_message(GridLoaded(sample_id, image))

    @unless_closing
    def on_grid_loaded(self, message: GridLoaded) -> None:
        if message.image is not None:
            self.query_one(GridImage).show(message.sample_id, message.image)

    def action_grid_full(self) -> None:
        from difftui.tui.screens.grid_view import GridViewScreen
        grid = self.query_one(GridImage)
        if grid.image is None:
            self.notify("no grid yet: the engine draws one every grid_every steps")
            return
        self.app.push_screen(GridViewScreen(grid.image, grid.index.current, grid.renderer, grid.best,
                                            (self.run or {}).get("name", "")))

    async def action_toggle_renderer(self) -> None:
        renderer = await self.query_one(GridImage).toggle_renderer()
        if renderer is None:
            self.notify("this terminal did not answer for sixel or kitty graphics (asked before the app started): "
                        "half-blocks only")

    # -- the metric grid ------------------------------------------------------------------------------------------

    def _focused_chart(self) -> MetricChart | None:
        focused = self.focused
        if isinstance(focused, MetricChart):
            return focused
        visible = self.query_one(MetricGrid).visible()
        return visible[0] if visible else None

    def action_toggle_log(self) -> None:
        chart = self._focused_chart()
        if chart is not None:
            chart.log_scale = not chart.log_scale

    def _set_smoothing(self, weight: float) -> None:
        grid = self.query_one(MetricGrid)
        grid.smoothing = weight
        grid.border_title = self._metrics_title()
        if weight > 0:
            self.smoothing_on = weight               # what `e` turns back on

    def action_smoothing_more(self) -> None:
        current = self.query_one(MetricGrid).smoothing
        self._set_smoothing(next((w for w in SMOOTHING_STEPS if w > current), SMOOTHING_STEPS[-1]))

    def action_smoothing_less(self) -> None:
        current = self.query_one(MetricGrid).smoothing
        self._set_smoothing(next((w for w in reversed(SMOOTHING_STEPS) if w < current), 0.0))

    def action_toggle_smoothing(self) -> None:
        """`e`: smoothing off, and on again at the weight chosen with - / + before (not the default)."""
        current = self.query_one(MetricGrid).smoothing
        self._set_smoothing(0.0 if current > 0 else self.smoothing_on)

    FILTER_FOCUS_S = 1.0                        # the longest keys wait for the filter to take focus

    _filter_asked: float | None = None

    def action_filter_metrics(self) -> None:
        """`/`: into the chart filter. Textual moves focus a moment later; keys typed meanwhile (`/grad` typed fast)
        are held by the app until it has (ready_for_keys), so none is lost or sent to the dashboard's bindings."""
        self.query_one("#metrics-bar").remove_class("idle")
        self._filter_asked = time.monotonic()
        self.query_one(ChartFilter).edit()

    @property
    def ready_for_keys(self) -> bool:
        asked = self._filter_asked
        if asked is not None and time.monotonic() - asked < self.FILTER_FOCUS_S:
            if not isinstance(self.focused, ChartFilter):
                return False
        self._filter_asked = None
        return super().ready_for_keys

    @on(Input.Blurred, "#metric-filter")
    def _filter_left(self, event: Input.Blurred) -> None:
        self.query_one("#metrics-bar").set_class(not event.value, "idle")    # the compact layout hides an idle bar

    @on(Input.Changed, "#metric-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        grid = self.query_one(MetricGrid)
        grid.filter_text = event.value
        visible = len(grid.visible())
        grid.border_subtitle = (f"filter '{event.value}': {visible} of {len(grid.charts)} charts (esc clears)"
                                if event.value else "")

    @on(Input.Submitted, "#metric-filter")
    def _filter_done(self) -> None:
        visible = self.query_one(MetricGrid).visible()
        if visible:
            visible[0].focus()

    # -- run actions ----------------------------------------------------------------------------------------------

    def action_stop_run(self) -> None:
        self.app.stop_run(self.run_id)

    def action_resume_run(self) -> None:
        self.app.resume_run(self.run_id)            # the engine refuses a live run (one line)

    def action_evaluate_run(self) -> None:
        self.app.ask_evaluation(self.run_id)

    def action_toggle_evaluations(self) -> None:
        """Swap the loss/GPU/grid panels for the evaluation view (its table, chart, curve and grids) and back."""
        self.query_one("#dash-main").display = not self.query_one(EvalView).toggle()

    def action_back(self) -> None:
        """esc: clear the chart filter when it holds something (focused or not), else back to the history."""
        chart_filter = self.query_one(ChartFilter)
        if chart_filter.value or chart_filter.has_focus:
            chart_filter.value = ""
            self.query_one(MetricGrid).focus()
            return
        self.app.pop_screen()
