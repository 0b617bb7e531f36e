"""The sweep view: a sweep's members as a sortable table, their loss curves overlaid (one colour per axis value, with a
legend) and a metric against the axis value (e.g. the final L_vlb against dropout; for DyDiT the measured FLOPs ratio
and the loss against lambda, the P5 trade-off, playbook A.1a). Enter opens a member's dashboard; `s` stops and `r`
retries the highlighted member; `S` / `R` stop and resume the whole sweep; `a` adds a value.

Polling as the dashboard's: a worker reads the sweep, the members' last and best metrics and every metric row added
since the last poll (`WHERE id > last_seen`), reaps members and supervisors that died, and posts one `SweepPolled`;
the timer re-arms only once that has been drawn.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Static

from difftui.engine.launch import liveness
from difftui.engine.store import ACTIVE_STATUSES, open_for_reading
from difftui.engine.store.ingest import ingest_listed
from difftui.engine.text import one_line
from difftui.tui import bindings
from difftui.tui.advice import in_tui_words
from difftui.tui.messages import SweepActionDone, SweepBatch, SweepPolled
from difftui.tui.screens.base import PollingScreen, unless_closing
from difftui.tui.widgets.axis_chart import AxisChart, AxisPoints
from difftui.tui.widgets.member_table import LOSSES, MemberTable, one_metric_note, sortable
from difftui.tui.widgets.overlay_chart import OverlayChart
from difftui.tui.widgets.run_table import judge_runs
from difftui.tui.widgets.status_line import STATUS_STYLES

__all__ = ["SweepScreen", "read_sweep"]

POLL_ACTIVE_S = 1.0
POLL_IDLE_S = 3.0
CURVE_NAMES = (*LOSSES, "flops_ratio")


def read_sweep(db_path: Path, sweep_id: int, last_id: int = 0, judged: dict[int, tuple] | None = None,
               preset_dirs: tuple = ()) -> SweepBatch:
    """Everything the view needs about one sweep, and the metric rows of its members since row `last_id`; the
    doctor's findings of each member (issue 18), judged again only for members whose cursors moved since `judged`."""
    from difftui.engine.sweeps.compare import summarise_runs
    with open_for_reading(db_path) as store:
        liveness.reap_dead_runs(store)
        liveness.reap_dead_sweeps(store)
        sweep = store.get_sweep(sweep_id)
        if sweep is None:
            return SweepBatch(sweep=None, last_id=last_id)
        ingest_listed(store, store.sweep_members(sweep_id))   # spool members, recently ended ones included
        members = store.sweep_members(sweep_id)
        batch = SweepBatch(sweep=sweep, alive=liveness.sweep_alive(sweep), summaries=summarise_runs(store, members),
                           last_id=last_id)
        batch.rows = store.metrics_since_many([m["id"] for m in members], CURVE_NAMES, last_id)
        if batch.rows:
            batch.last_id = batch.rows[-1]["id"]
        batch.judged = judge_runs(store, [m["id"] for m in members], judged or {}, preset_dirs)
    return batch


def _counts(summaries: list[Any]) -> str:
    counts: dict[str, int] = {}
    for s in summaries:
        status = "waiting" if s.run["status"] == "queued" and not s.run["pid"] else s.run["status"]
        counts[status] = counts.get(status, 0) + 1
    return ", ".join(f"{n} {st}" for st, n in counts.items()) or "no members"


class SweepScreen(PollingScreen):
    HELP_TITLE = "sweep"
    BINDINGS = bindings.SWEEP_VIEW
    AUTO_FOCUS = "#members"

    def __init__(self, sweep_id: int) -> None:
        super().__init__()
        self.sweep_id = sweep_id
        self.sweep: dict[str, Any] | None = None
        self.alive = False
        self.summaries: list[Any] = []
        self.last_id = 0
        self.judged: dict[int, tuple] = {}          # run id -> (cursors, findings, worst): the findings column
        self.polls = 0
        self.metric = ""                            # chosen with m; "" until the first losses arrive
        self.axis_index = 0
        self.grid: dict[str, Any] = {}

    def compose(self) -> ComposeResult:
        yield Static("", id="sweep-status")
        with Horizontal(id="sweep-main"):
            with Vertical(id="sweep-left"):
                yield MemberTable(id="members")
                yield OverlayChart(title="members", id="sweep-curves")
            with Vertical(id="sweep-right"):
                yield AxisChart(id="sweep-axis")
                yield Static("", id="sweep-detail")
        yield Footer()

    @unless_closing
    def on_mount(self) -> None:
        self.query_one("#members").border_title = "members"
        self.query_one("#sweep-detail").border_title = "member"
        self.refresh_now()

    # -- polling --------------------------------------------------------------------------------------------------

    poll_group = "sweep-poll"
    retry_after_s = POLL_IDLE_S

    def start_poll(self) -> None:
        self.poll_sweep(self.last_id)

    @work(thread=True, exclusive=True, group="sweep-poll", exit_on_error=False)
    def poll_sweep(self, last_id: int) -> None:
        self.app.reap_children()
        self.post_message(SweepPolled(read_sweep(self.app.db_path, self.sweep_id, last_id, dict(self.judged),
                                                 tuple(self.app.preset_dirs))))

    @unless_closing
    def on_sweep_polled(self, message: SweepPolled) -> None:
        self.polls += 1
        batch = message.batch
        self.sweep, self.alive, self.summaries = batch.sweep, batch.alive, batch.summaries
        self.last_id = batch.last_id
        self.judged = batch.judged
        self.query_one(MemberTable).judged = {k: (v[1], v[2]) for k, v in batch.judged.items()}
        if self.sweep is None:
            self.query_one("#sweep-status", Static).update(Text(f"sweep {self.sweep_id} not found (deleted?)",
                                                                style="bold red"))
            self.poll_done(POLL_IDLE_S)
            return
        grid = json.loads(self.sweep["grid"])
        self.grid = grid
        table = self.query_one(MemberTable)
        table.show(self.summaries, grid.get("off_grid") or {})
        chart = self.query_one(OverlayChart)
        chart.set_runs(self._legend())
        chart.add_rows(batch.rows)
        if not self.metric:
            available = self.metrics()
            if available:
                self.metric = available[0]
                chart.metric = self.metric
        self._draw_axis_chart()
        self._draw_status()
        self._draw_detail()
        active = self.sweep["status"] in ("running", "stopping") or any(
            s.run["status"] in ACTIVE_STATUSES for s in self.summaries)
        self.poll_done(POLL_ACTIVE_S if active else POLL_IDLE_S)

    # -- drawing --------------------------------------------------------------------------------------------------

    def axes(self) -> list[str]:
        return list(self.grid["axes"]) if self.sweep is not None else []

    def metrics(self) -> list[str]:
        return [n for n in LOSSES if any(n in s.last for s in self.summaries)]

    def _legend(self) -> list[tuple[int, str]]:
        """Members in axis-value order (so colours follow the values), labelled by their values."""
        from difftui.engine.sweeps import member_label
        axes = self.axes()
        ordered = sorted(self.summaries, key=lambda s: [sortable(s.axis_values.get(a)) for a in axes])
        return [(s.run["id"], member_label(s.axis_values) + ("*" if s.run.get("off_grid") else ""))
                for s in ordered]

    def _draw_axis_chart(self) -> None:
        axes = self.axes()
        if not axes:
            return
        axis = axes[self.axis_index % len(axes)]
        metric = self.metric or "L_simple"
        nan = float("nan")
        on_axis = [s for s in self.summaries if axis in s.axis_values]
        with_values = [s for s in on_axis if not s.partial]          # a partial value is not a result
        points = AxisPoints(axis=axis, metric=metric, values=[s.axis_values[axis] for s in with_values],
                            last=[s.last.get(metric, nan) for s in with_values],
                            best=[s.best.get(metric, nan) for s in with_values],
                            left_out=[str(s.run["id"]) for s in on_axis if s.partial])
        if any("flops_ratio" in s.last for s in with_values):
            points.flops = [s.last.get("flops_ratio", nan) for s in with_values]
        self.query_one(AxisChart).show_points(points)

    def _draw_status(self) -> None:
        sw = self.sweep
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f"sweep {sw['id']} ", style="bold")
        text.append(f"{sw['name']}  ")
        text.append(f"● {sw['status']}", style=STATUS_STYLES.get(sw["status"], ""))
        text.append(f"  grid {self.grid['preset']} (playbook {self.grid['playbook']})")
        text.append(f"  {_counts(self.summaries)}")
        from difftui.engine.sweeps import sweep_slots
        text.append(f"  slots {sweep_slots(sw).short()}", style="dim")
        if self.alive:
            text.append(f"  supervisor pid {sw['pid']}", style="dim")
        elif any(s.run["status"] == "queued" and not s.run["pid"] for s in self.summaries):
            text.append("  no supervisor: R resumes", style="bold yellow")
        if any(s.run.get("off_grid") for s in self.summaries):
            text.append("  * off-grid", style="yellow")
        self.query_one("#sweep-status", Static).update(text)

    def _draw_detail(self) -> None:
        s = self.query_one(MemberTable).selected()
        widget = self.query_one("#sweep-detail", Static)
        if s is None:
            widget.update("")
            return
        r = s.run
        text = Text()
        text.append(f"run {r['id']} ", style="bold")
        text.append(f"{r['name']}  ")
        text.append(r["status"], style=STATUS_STYLES.get(r["status"], ""))
        text.append(f"  step {r['step']}/{r['total_steps']}")
        if r.get("off_grid"):
            text.append("  OFF-GRID", style="bold yellow")
        if s.partial:
            from difftui.engine.sweeps.compare import PARTIAL_MARK
            text.append(f"\n{PARTIAL_MARK} {s.partial}: partial values, not results, left out of the chart "
                        f"(r runs it on)", style="yellow")
        if r.get("error") and r["status"] in ("failed", "crashed"):
            text.append(f"\n{in_tui_words(r['error'])}", style="red")
        if r.get("device"):
            text.append(f"\n{r['device']}", style="dim")
        widget.update(text)

    def on_data_table_row_highlighted(self) -> None:
        if self.sweep is not None:
            self._draw_detail()

    def on_data_table_row_selected(self) -> None:
        self.action_open_member()

    # -- keys -----------------------------------------------------------------------------------------------------

    def _member(self) -> dict[str, Any] | None:
        s = self.query_one(MemberTable).selected()
        if s is None:
            self.notify("no member selected", severity="warning")
        return s.run if s is not None else None

    def action_open_member(self) -> None:
        run = self._member()
        if run is not None:
            self.app.open_dashboard(run["id"])

    def action_stop_member(self) -> None:
        run = self._member()
        if run is not None:
            self.app.stop_run(run["id"])

    def action_retry_member(self) -> None:
        run = self._member()
        if run is None:
            return
        if run["status"] in ACTIVE_STATUSES:
            self.notify(f"run {run['id']} is {'waiting' if not run['pid'] else run['status']}", severity="warning")
            return
        self.sweep_action("retry", run_id=run["id"])

    def action_stop_sweep(self) -> None:
        self.sweep_action("stop")

    def action_resume_sweep(self) -> None:
        self.sweep_action("resume")

    def action_add_value(self) -> None:
        from difftui.tui.screens.sweep_add import SweepAddScreen
        if self.sweep is None:
            return

        def done(result: tuple[str, bool] | None) -> None:
            if result is not None:
                self.sweep_action("add", value=result[0], off_grid=result[1])

        self.app.push_screen(SweepAddScreen(self.sweep_id, self.axes(), self.grid["paper"]), done)

    def action_next_metric(self) -> None:
        names = self.metrics()
        if len(names) < 2:
            self.notify(one_metric_note(names, "the members"), title="m: metric", timeout=5)
            return
        i = names.index(self.metric) if self.metric in names else -1
        self.metric = names[(i + 1) % len(names)]
        self.query_one(OverlayChart).metric = self.metric
        self._draw_axis_chart()

    def action_next_axis(self) -> None:
        self.axis_index += 1
        self._draw_axis_chart()

    def action_sort(self) -> None:
        self.query_one(MemberTable).cycle_sort()

    def action_reverse_sort(self) -> None:
        self.query_one(MemberTable).reverse_sort()

    def action_toggle_smoothing(self) -> None:
        chart = self.query_one(OverlayChart)
        chart.smoothing = not chart.smoothing

    def action_toggle_log(self) -> None:
        chart = self.query_one(OverlayChart)
        chart.log_scale = not chart.log_scale

    def action_back(self) -> None:
        self.app.pop_screen()

    # -- sweep actions, in a worker (they read runs.db and may spawn a supervisor) --------------------------------

    @work(thread=True, group="sweep-action", exit_on_error=False)
    def sweep_action(self, action: str, *, run_id: int | None = None, value: str = "", off_grid: bool = False
                     ) -> None:
        from difftui.engine.config.catalog import Catalog
        from difftui.engine.config.model import PresetError
        from difftui.engine.launch.lock import Owned
        from difftui.engine.sweeps import SweepError, add_value, resume_sweep, retry_members, stop_sweep
        db = self.app.db_path
        try:
            if action == "stop":
                text = stop_sweep(db, self.sweep_id)
            elif action == "resume":
                text = resume_sweep(db, self.sweep_id)
            elif action == "retry":
                text = retry_members(db, self.sweep_id, [run_id])
            else:
                text = add_value(db, Catalog(self.app.preset_dirs), self.sweep_id, value, off_grid=off_grid)
        except (SweepError, PresetError, Owned) as e:
            self.post_message(SweepActionDone(f"error: {one_line(e)}"))
            return
        self.post_message(SweepActionDone(text))

    @unless_closing
    def on_sweep_action_done(self, message: SweepActionDone) -> None:
        error = message.text.startswith("error: ")
        self.notify(in_tui_words(message.text.removeprefix("error: ")), title="sweep",
                    severity="error" if error else "information", timeout=8)
        self.refresh_now()
