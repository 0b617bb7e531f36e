"""Compare two or more runs: their loss curves overlaid (aligned by step or by kimg), their last and best metrics, the
config keys that differ, and their fixed-x_T grids side by side at the same step with one shared scrubber.

A fork and its parent (issue 18 item 4) also get the re-check: the parent's findings judged again on the fork
(engine/doctor/recheck.py: "symptom gone", "still there", "not enough data yet (needs ...)"), computed in the poll
worker and only again when either run's tables moved; `v` evaluates both under the playbook's fixed protocol (5.6;
engine/eval/start.py start_recheck), whose results the re-check then reads. The chart is by step, so the two line up
at the fork step, which the title names.

Two runs, or three, are columns of the last / best and config tables, beside a chart with its legend. More runs
than the side panel has room for as columns are its rows instead (issue 16 item 9: ten runs as columns cut every
value to `0.…` and every header to `r…`, and their legend covered a third of the chart): each row starts with the
run's colour in the chart, which then draws no legend of its own.

The grids share the step: `[` and `]` walk through every step at which any of the runs drew a grid, and each run
shows its grid of that step (or, when it has none there, its nearest earlier one, said so in its caption). The runs
are read by a polling worker as the dashboard does, so live runs keep drawing; PNGs are decoded in a worker.
"""

from __future__ import annotations

import bisect
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Footer, Static

from difftui.engine.launch import liveness
from difftui.engine.numbers import format_number, format_setting
from difftui.engine.store import ACTIVE_STATUSES, open_for_reading
from difftui.engine.text import one_line
from difftui.tui import bindings
from difftui.tui.graphics import preferred, widget_class
from difftui.tui.messages import CompareBatch, CompareGridsLoaded, ComparePolled
from difftui.tui.screens.base import PollingScreen, unless_closing
from difftui.tui.widgets.member_table import LOSSES, one_metric_note
from difftui.tui.widgets.overlay_chart import OverlayChart
from difftui.tui.widgets.status_line import STATUS_STYLES

__all__ = ["CompareScreen", "read_compare", "grid_at", "fork_pair", "recheck_text"]

POLL_ACTIVE_S = 1.0
POLL_IDLE_S = 5.0
COMPACT_BELOW = (120, 30)   # columns, rows (as the dashboard's)
LABEL_COLUMN = 16           # "L_simple last" and its padding
RUN_COLUMN = 11             # one run's value column: "0.08123" or "1000/1000" and padding
# plotext's colour names (overlay_chart.PALETTE) as Rich colours, for the runs' swatches in the tables.
RICH_COLORS = {"cyan+": "bright_cyan", "magenta+": "bright_magenta", "orange+": "#ffaf00", "green+": "bright_green",
               "red+": "bright_red", "blue+": "bright_blue", "cyan": "cyan", "magenta": "magenta",
               "orange": "dark_orange", "green": "green", "red": "red", "blue": "blue"}


def runs_fit_as_columns(count: int, width: int) -> bool:
    """Whether `count` runs fit as value columns beside the label column in `width` cells."""
    return LABEL_COLUMN + count * RUN_COLUMN <= width


def fork_pair(runs: list[dict[str, Any]]) -> tuple[int, int] | None:
    """(parent, child) when the runs are exactly a run and its fork (or clone), else None."""
    if len(runs) != 2:
        return None
    a, b = runs
    if b.get("parent_id") == a["id"]:
        return a["id"], b["id"]
    if a.get("parent_id") == b["id"]:
        return b["id"], a["id"]
    return None


def read_recheck(store: Any, pair: tuple[int, int], known_key: Any, preset_dirs: tuple = ()) -> tuple[Any, Any]:
    """(key, Recheck) for a fork pair; (known_key, None) when neither run's tables moved since `known_key`."""
    from difftui.engine.doctor.recheck import recheck
    from difftui.engine.store.findings_reads import run_cursors
    key = (run_cursors(store, pair[0]), run_cursors(store, pair[1]))
    if key == known_key:
        return known_key, None
    return key, recheck(store, *pair, preset_dirs=preset_dirs)


def read_compare(db_path: Path, run_ids: list[int], last_id: int = 0, recheck_key: Any = None,
                 preset_dirs: tuple = ()) -> CompareBatch:
    from difftui.engine.sweeps.compare import runs_config_diff, summarise_runs
    with open_for_reading(db_path) as store:
        liveness.reap_dead_runs(store)
        runs = [r for r in (store.get_run(i) for i in run_ids) if r is not None]
        batch = CompareBatch(summaries=summarise_runs(store, runs),
                             diff=runs_config_diff(runs), last_id=last_id)
        pair = fork_pair(runs)
        if pair is not None:
            try:
                batch.recheck_key, batch.recheck = read_recheck(store, pair, recheck_key, preset_dirs)
            except Exception as e:                  # the re-check's fault never stops the comparison
                batch.recheck_key, batch.recheck_error = recheck_key, one_line(e)
        batch.rows = store.metrics_since_many([r["id"] for r in runs], LOSSES, last_id)
        if batch.rows:
            batch.last_id = batch.rows[-1]["id"]
        batch.grids = {r["id"]: store.samples_index(r["id"], "grid") for r in runs}
    return batch


def grid_at(rows: list[dict[str, Any]], step: int) -> dict[str, Any] | None:
    """The grid drawn at `step`, else the newest one before it (rows in step order), else None."""
    steps = [r["step"] for r in rows]
    i = bisect.bisect_right(steps, step)
    return rows[i - 1] if i else None


VERDICT_STYLES = {"symptom gone": "bold green", "still there": "bold red", "not enough data yet": "yellow"}


def recheck_text(result: Any) -> Text:
    """The re-check as the compare view shows it: the headline, then each rule's verdict and what each run shows."""
    text = Text()
    text.append(result.headline() + "\n", style="bold")
    for v in result.verdicts:
        text.append(f"{v.rule} (playbook {v.section}): ")
        text.append(v.words() + "\n", style=VERDICT_STYLES.get(v.state, ""))
        text.append(f"  parent: {v.parent}\n", style="dim")
        if v.child and v.state != "not enough data yet":
            text.append(f"  fork:   {v.child}\n", style="dim")
    for row in result.side_by_side:
        text.append(f"{row['metric']} ({row['sampler']}, NFE {row['nfe']}): "
                    f"run {result.parent_id} {_point(row['parent'])}, run {result.child_id} {_point(row['child'])}\n")
    for note in result.notes:
        text.append(f"note: {note}\n", style="yellow")
    if not result.parent_clean:
        text.append("v: evaluate both under the fixed protocol (playbook 5.6)", style="dim")
    return text


def _point(point: Any) -> str:
    return "-" if not point else f"{format_number(point[0])} @ {point[1]:,}"


def _diff_title(diff: list) -> str:
    return f"config difference ({len(diff)} key{'' if len(diff) == 1 else 's'})"


class CompareScreen(PollingScreen):
    HELP_TITLE = "compare runs"
    BINDINGS = bindings.COMPARE

    def __init__(self, run_ids: list[int]) -> None:
        super().__init__()
        self.run_ids = list(run_ids)
        self.summaries: list[Any] = []
        self.diff: list[tuple[str, list[Any]]] = []
        self.grids: dict[int, list[dict[str, Any]]] = {}
        self.steps: list[int] = []                  # every step at which a run drew a grid
        self.position = -1                          # index into steps; the scrubber is shared
        self.live = True
        self.last_id = 0
        self.polls = 0
        self.metric = ""
        self.shown: dict[int, int | None] = {}      # run id -> sample id shown
        self.images: dict[int, Any] = {}            # run id -> the decoded grid shown
        self.tilings: dict[int, Any] = {}           # run id -> how it is laid out (half-blocks)
        self.renderer = preferred()
        self.recheck: Any = None                    # a fork pair's re-check (engine/doctor/recheck.py Recheck)
        self.recheck_key: Any = None

    def compose(self) -> ComposeResult:
        yield Static("", id="compare-title")
        with Horizontal(id="compare-top"):
            yield OverlayChart(title="compare", id="compare-curves")
            with VerticalScroll(id="compare-side"):
                yield Static("", id="compare-recheck")
                yield Static("", id="compare-metrics")
                yield Static("", id="compare-diff")
        with Horizontal(id="compare-grids"):
            for run_id in self.run_ids:
                with Vertical(classes="compare-grid", id=f"compare-grid-{run_id}"):
                    yield Static(f"run {run_id}", classes="compare-caption", markup=False)
                    yield widget_class(self.renderer)(None, classes="compare-picture")
        yield Footer()

    @unless_closing
    def on_mount(self) -> None:
        self.query_one("#compare-side").border_title = "metrics and config difference"
        self.refresh_now()

    # -- polling --------------------------------------------------------------------------------------------------

    poll_group = "compare-poll"
    retry_after_s = POLL_IDLE_S

    def start_poll(self) -> None:
        self.poll_compare(self.last_id)

    @work(thread=True, exclusive=True, group="compare-poll", exit_on_error=False)
    def poll_compare(self, last_id: int) -> None:
        self.post_message(ComparePolled(read_compare(self.app.db_path, self.run_ids, last_id, self.recheck_key,
                                                     tuple(self.app.preset_dirs))))

    @unless_closing
    def on_compare_polled(self, message: ComparePolled) -> None:
        self.polls += 1
        batch = message.batch
        self.summaries, self.diff, self.grids, self.last_id = batch.summaries, batch.diff, batch.grids, batch.last_id
        chart = self.query_one(OverlayChart)
        chart.set_runs([(s.run["id"], f"run {s.run['id']} {s.run['name']}") for s in self.summaries])
        chart.add_rows(batch.rows)
        if not self.metric:
            names = self.metrics()
            if names:
                self.metric = names[0]
                chart.metric = self.metric
        self.recheck_key = batch.recheck_key
        if batch.recheck is not None:
            self.recheck = batch.recheck
        recheck_box = self.query_one("#compare-recheck", Static)
        if batch.recheck_error:
            recheck_box.update(Text(f"re-check: {batch.recheck_error}", style="red"))
        elif batch.recheck is not None:
            recheck_box.update(recheck_text(self.recheck))
        recheck_box.display = bool(self.recheck is not None or batch.recheck_error)
        if self.recheck is not None:
            chart.fork_step = self.recheck.fork_step
        self._draw_title()
        self._draw_side()
        steps = sorted({r["step"] for rows in self.grids.values() for r in rows})
        if steps != self.steps:
            self.steps = steps
            if self.live or self.position >= len(steps):
                self.position = len(steps) - 1
            self._load_grids()
        active = any(s.run["status"] in ACTIVE_STATUSES for s in self.summaries)
        self.poll_done(POLL_ACTIVE_S if active else POLL_IDLE_S)

    def metrics(self) -> list[str]:
        return [n for n in LOSSES if any(n in s.last for s in self.summaries)]

    # -- drawing --------------------------------------------------------------------------------------------------

    def _draw_title(self) -> None:
        chart = self.query_one(OverlayChart)
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("compare ", style="bold")
        if self.runs_in_rows:                       # the runs are named in the table, each with its colour
            counts: dict[str, int] = {}
            for s in self.summaries:
                counts[s.run["status"]] = counts.get(s.run["status"], 0) + 1
            text.append(f"{len(self.summaries)} runs ", style="bold")
            text.append(f"({', '.join(f'{n} {st}' for st, n in counts.items())})   ")
        for s in self.summaries if not self.runs_in_rows else ():
            text.append(f"run {s.run['id']} ", style="bold")
            text.append(f"{s.run['name']} ")
            text.append(s.run["status"], style=STATUS_STYLES.get(s.run["status"], ""))
            text.append("   ")
        text.append(f"{chart.metric} by {chart.x}", style="dim")
        if self.recheck is not None and self.recheck.fork_step:
            text.append(f"   fork at step {self.recheck.fork_step:,}", style="yellow")
        self.query_one("#compare-title", Static).update(text)

    @property
    def runs_in_rows(self) -> bool:
        side = self.query_one("#compare-side")
        return not runs_fit_as_columns(len(self.summaries), side.content_size.width or 60)

    def on_resize(self, event) -> None:
        # Below 120x30 the tables go under the chart, at the terminal's whole width, and the grids take the screen
        # in turns with them (g; app.tcss).
        compact = event.size.width < COMPACT_BELOW[0] or event.size.height < COMPACT_BELOW[1]
        if compact != self.has_class("compact"):
            self.set_class(compact, "compact")
            self.refresh_bindings()
        if self.summaries:
            self.call_after_refresh(self._draw_title)
            self.call_after_refresh(self._draw_side)
        if self.images:
            self.call_after_refresh(self._fit_grids)
            self.call_after_refresh(self._draw_captions)

    def swatch(self, run_id: int) -> Text:
        """The run's colour in the chart, as a dot before its name."""
        from difftui.tui.widgets.overlay_chart import color_of
        order = self.query_one(OverlayChart).order
        index = order.index(run_id) if run_id in order else 0
        return Text("● ", style=RICH_COLORS.get(color_of(index), ""))

    def _draw_side(self) -> None:
        rows = self.runs_in_rows
        self.query_one(OverlayChart).legend = not rows          # the table's swatches name the curves instead
        if rows:
            self._draw_side_rows()
            return
        metrics = Table(box=None, padding=(0, 1), title="last / best", title_justify="left", title_style="bold")
        metrics.add_column("", no_wrap=True, style="bold")
        for s in self.summaries:
            metrics.add_column(f"run {s.run['id']}", justify="right", no_wrap=True)
        metrics.add_row("step", *[f"{s.run['step']}/{s.run['total_steps']}" for s in self.summaries])
        for name in [*self.metrics(), "flops_ratio"]:
            if any(name in s.last for s in self.summaries):
                metrics.add_row(f"{name} last", *[format_number(s.last.get(name)) for s in self.summaries])
                if name != "flops_ratio":
                    metrics.add_row("      best", *[format_number(s.best.get(name)) for s in self.summaries])
        if any(s.nll for s in self.summaries):
            metrics.add_row("NLL b/d", *[format_number(s.nll[1]) if s.nll else "-" for s in self.summaries])
        self.query_one("#compare-metrics", Static).update(metrics)
        diff = Table(box=None, padding=(0, 1), title=_diff_title(self.diff), title_justify="left",
                     title_style="bold")
        diff.add_column("key", no_wrap=True, style="cyan")
        for s in self.summaries:
            diff.add_column(f"run {s.run['id']}", justify="right")
        for key, values in self.diff:
            diff.add_row(key, *[format_setting(v) for v in values])
        if not self.diff:
            diff.add_row(Text("identical configs", style="dim"))
        self.query_one("#compare-diff", Static).update(diff)

    def _draw_side_rows(self) -> None:
        """Runs as rows: a row per run (its colour, id and name), a column per figure; every value whole."""
        names = [n for n in [*self.metrics(), "flops_ratio"] if any(n in s.last for s in self.summaries)]
        metrics = Table(box=None, padding=(0, 1), title="last / best", title_justify="left", title_style="bold")
        metrics.add_column("run", overflow="fold")
        metrics.add_column("step", justify="right", no_wrap=True)
        for name in names:
            metrics.add_column(f"{name} last", justify="right", overflow="fold")
            if name != "flops_ratio":
                metrics.add_column("best", justify="right", overflow="fold")
        nll = any(s.nll for s in self.summaries)
        if nll:
            metrics.add_column("NLL b/d", justify="right", overflow="fold")
        for s in self.summaries:
            run = s.run
            cells: list[Any] = [Text.assemble(self.swatch(run["id"]), (f"{run['id']} ", "bold"), run["name"]),
                                f"{run['step']}/{run['total_steps']}"]
            for name in names:
                cells.append(format_number(s.last.get(name)))
                if name != "flops_ratio":
                    cells.append(format_number(s.best.get(name)))
            if nll:
                cells.append(format_number(s.nll[1]) if s.nll else "-")
            metrics.add_row(*cells)
        self.query_one("#compare-metrics", Static).update(metrics)
        diff = Table(box=None, padding=(0, 1), title=_diff_title(self.diff), title_justify="left",
                     title_style="bold")
        diff.add_column("run", no_wrap=True)
        for key, _values in self.diff:
            diff.add_column(key, justify="right", overflow="fold", header_style="cyan")
        for i, s in enumerate(self.summaries):
            diff.add_row(Text.assemble(self.swatch(s.run["id"]), (str(s.run["id"]), "bold")),
                         *[format_setting(values[i]) for _key, values in self.diff])
        if not self.diff:
            diff.add_row(Text("identical configs", style="dim"))
        self.query_one("#compare-diff", Static).update(diff)

    # -- the shared grid scrubber ---------------------------------------------------------------------------------

    @property
    def step(self) -> int | None:
        return self.steps[self.position] if self.steps and self.position >= 0 else None

    def choices(self) -> dict[int, dict[str, Any] | None]:
        """The grid each run shows at the scrubber's step."""
        step = self.step
        return {run_id: (grid_at(self.grids.get(run_id, []), step) if step is not None else None)
                for run_id in self.run_ids}

    def _load_grids(self) -> None:
        self._draw_captions()
        if self.step is not None:
            self.load_grids(self.step, {k: v for k, v in self.choices().items()})

    @work(thread=True, exclusive=True, group="compare-grids", exit_on_error=False)
    def load_grids(self, step: int, rows: dict[int, dict[str, Any] | None]) -> None:
        from difftui.tui.screens.dashboard import decode_png
        images = {}
        with open_for_reading(self.app.db_path) as store:
            for run_id, row in rows.items():
                images[run_id] = (row, decode_png(store.sample_png(row["id"])) if row else None)
        self.post_message(CompareGridsLoaded(step, images))

    @unless_closing
    def on_compare_grids_loaded(self, message: CompareGridsLoaded) -> None:
        if message.step != self.step:
            return
        for run_id, (row, image) in message.images.items():
            self.images[run_id] = image
            self.shown[run_id] = row["id"] if row else None
        self._fit_grids()
        self._draw_captions()

    def _fit_grids(self) -> None:
        """Each run's grid in its box (half-blocks: at an integer scale, as many samples as fit; grid_tiles.py)."""
        from difftui.tui.widgets.grid_image import fit_picture
        for run_id, image in self.images.items():
            box = self.query_one(f"#compare-grid-{run_id}")
            caption = box.query_one(".compare-caption").outer_size.height
            self.tilings[run_id] = fit_picture(box.query_one(".compare-picture"), image, self.renderer,
                                               box.content_size.width, box.content_size.height - caption)

    def _draw_captions(self) -> None:
        step = self.step
        for run_id, row in self.choices().items():
            text = Text(no_wrap=True, overflow="ellipsis")
            text.append(f"run {run_id}  ", style="bold")
            if step is None:
                text.append("no grid yet", style="dim")
            elif row is None:
                text.append(f"no grid at or before step {step}", style="dim")
            else:
                text.append(f"step {row['step']}")
                if row["step"] != step:
                    text.append(f" (none at {step})", style="yellow")
                tiling = self.tilings.get(run_id)
                if tiling is not None and tiling.partial:
                    text.append(f"  {tiling.shown} of {tiling.total}", style="dim")
            self.query_one(f"#compare-grid-{run_id}").query_one(".compare-caption", Static).update(text)
        if self.steps:
            self.query_one("#compare-grids").border_title = (
                f"fixed-x_T grids at step {step}  {self.position + 1}/{len(self.steps)}"
                + ("  live" if self.live else "  [ ] scrub, end: live"))

    def _move(self, delta: int) -> None:
        if not self.steps:
            return
        new = min(max(self.position + delta, 0), len(self.steps) - 1)
        self.live = new == len(self.steps) - 1
        if new != self.position:
            self.position = new
            self._load_grids()
        else:
            self._draw_captions()

    def action_grid_prev(self) -> None:
        self._move(-1)

    def action_grid_next(self) -> None:
        self._move(+1)

    def action_grid_latest(self) -> None:
        self._move(len(self.steps))

    # -- chart keys -----------------------------------------------------------------------------------------------

    def action_toggle_grids(self) -> None:
        """g (compact layout): the grids in place of the chart and the tables, and back."""
        self.toggle_class("show-grids")
        if self.images:
            self.call_after_refresh(self._fit_grids)
            self.call_after_refresh(self._draw_captions)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "toggle_grids":
            return self.has_class("compact")        # the wide layout shows both: no key in the footer
        return True

    def action_next_metric(self) -> None:
        names = self.metrics()
        if len(names) < 2:
            self.notify(one_metric_note(names, "these runs"), title="m: metric", timeout=5)
            return
        if names:
            i = names.index(self.metric) if self.metric in names else -1
            self.metric = names[(i + 1) % len(names)]
            self.query_one(OverlayChart).metric = self.metric
            self._draw_title()

    def action_toggle_x(self) -> None:
        chart = self.query_one(OverlayChart)
        chart.x = "kimg" if chart.x == "step" else "step"
        self._draw_title()

    def action_toggle_smoothing(self) -> None:
        chart = self.query_one(OverlayChart)
        chart.smoothing = not chart.smoothing

    def action_toggle_log(self) -> None:
        chart = self.query_one(OverlayChart)
        chart.log_scale = not chart.log_scale

    def action_back(self) -> None:
        self.app.pop_screen()

    # -- the re-check's evaluation (issue 18 item 4) --------------------------------------------------------------

    def action_evaluate_recheck(self) -> None:
        """v: parent and fork evaluated under the playbook's fixed protocol (5.6); the re-check reads the results."""
        if self.recheck is None:
            self.notify("v evaluates a fork and its parent: these runs are not a fork pair", severity="warning")
            return
        self.notify("starting the fixed-protocol evaluation of both runs ...", timeout=4)
        self.evaluate_pair(self.recheck.parent_id, self.recheck.child_id)

    @work(thread=True, exclusive=True, group="recheck-eval", exit_on_error=False)
    def evaluate_pair(self, parent_id: int, child_id: int) -> None:
        from difftui.engine.eval.start import start_recheck
        lines = start_recheck(self.app.db_path, parent_id, child_id)
        self.app.call_from_thread(self.app.notify, "\n".join(lines), title="re-check evaluation", timeout=12)
