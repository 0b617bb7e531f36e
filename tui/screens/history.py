"""The run history: every run in runs.db with its status, presets, step and last loss.

Enter opens the dashboard, `r` resumes from the newest checkpoint, `s` stops, `d` deletes (after a confirm), `n`
starts the new-run flow, `/` filters. The list is re-read by a worker every couple of seconds; the worker also reaps
runs whose engine is gone (shown as crashed) and the engines this app started, and ingests what spool-mode engines
wrote (issue 17: runs on a cluster's nodes) so that they are listed as the local ones are.
"""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import DataTable, Footer, Input, Static

from difftui.engine.store import open_for_reading
from difftui.engine.store.ingest import ingest_listed
from difftui.tui import bindings
from difftui.tui.advice import in_tui_words
from difftui.tui.messages import RunsJudged, RunsLoaded
from difftui.tui.screens.base import PollingScreen, unless_closing
from difftui.tui.widgets.run_table import RunTable, judge_runs
from difftui.tui.widgets.status_line import STATUS_STYLES

__all__ = ["HistoryScreen"]

POLL_S = 2.0
JUDGED_FIRST = 40           # the first poll judges the newest runs (the table has no size yet)


def run_detail(run: dict | None) -> Text:
    """One line about the selected run: status and error, device, recipe, the run it resumed or cloned."""
    if run is None:
        return Text("")
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"run {run['id']} ", style="bold")
    text.append(run["status"], style=STATUS_STYLES.get(run["status"], ""))
    if run.get("error") and run["status"] in ("failed", "crashed", "stopped"):
        text.append(f": {in_tui_words(run['error'])}", style="red")
    for label, key in (("device", "device"), ("recipe", "recipe")):
        if run.get(key):
            text.append(f"   {label} {run[key]}", style="dim")
    if run.get("parent_id"):                        # issue 18: its lineage; R re-checks a fork against its parent
        from difftui.engine.launch.fork import lineage
        text.append(f"   {lineage(run)} (R: re-check)" if run.get("fork_step") is not None
                    else f"   {lineage(run)}", style="dim")
    if run.get("sweep_id"):                         # issue 8: sweep membership, off-grid values
        import json

        from difftui.engine.sweeps import member_label
        text.append(f"   sweep {run['sweep_id']}: {member_label(json.loads(run.get('axis_values') or '{}'))}",
                    style="dim")
        if run.get("off_grid"):
            text.append("  OFF-GRID", style="bold yellow")
    return text


class HistoryScreen(PollingScreen):
    HELP_TITLE = "run history"
    BINDINGS = bindings.HISTORY
    AUTO_FOCUS = "#runs"

    def __init__(self) -> None:
        super().__init__()
        self.loaded = False
        self.judged: dict[int, tuple] = {}          # run id -> (cursors, findings, worst): the findings column

    def compose(self) -> ComposeResult:
        with Horizontal(id="history-top"):
            yield Static("runs", id="history-title")
            yield Input(placeholder="/ filter: words matching name, status, dataset, backbone, sampler",
                        id="filter")
        yield RunTable(id="runs")
        yield Static("", id="history-empty", markup=False)
        yield Static("", id="run-detail")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_now()

    # -- polling: a worker reads, the handler draws, then (and only then) the timer re-arms ------------------------

    poll_group = "history-poll"
    retry_after_s = POLL_S

    def start_poll(self) -> None:
        self.poll_runs()

    @work(thread=True, exclusive=True, group="history-poll", exit_on_error=False)
    def poll_runs(self) -> None:
        from difftui.engine.launch import liveness
        from difftui.engine.launch.runs import delete_refusal
        self.app.reap_children()
        with open_for_reading(self.app.db_path) as store:
            liveness.reap(store)                    # ingests the active spool runs first
            ingest_listed(store, store.spool_runs())    # and the ended ones whose evaluators may still write
            runs = store.list_runs()
            for run in runs:                        # the engine's delete rule, asked here, off the UI thread
                run["delete_refused"] = delete_refusal(store, run)
        self.post_message(RunsLoaded(runs))

    @unless_closing
    def on_runs_loaded(self, message: RunsLoaded) -> None:
        self.loaded = True
        self.query_one(RunTable).show_runs(message.runs)
        self._judge_in_view()
        self._show_empty()
        self._show_detail()
        self.poll_done(POLL_S)

    # -- the findings column (issue 18): judged after the list is drawn, in its own worker ------------------------

    _judging = False

    @property
    def settled(self) -> bool:
        """Loaded, and the findings column judged for every run in view (what a snapshot waits for)."""
        if not self.loaded or self._judging:
            return False
        table = self.query_one(RunTable)
        ids = table.ids_in_view() or [r["id"] for r in table.runs[:JUDGED_FIRST]]
        return all(i in self.judged for i in ids)

    def _judge_in_view(self) -> None:
        """Judge the runs in view (the first time: the newest screenful) in a worker; the list never waits for it,
        and a judgement still under way is not started twice."""
        if self._judging:
            return
        table = self.query_one(RunTable)
        ids = table.ids_in_view() or [r["id"] for r in table.runs[:JUDGED_FIRST]]
        if ids:
            self._judging = True
            self.judge_runs(ids, dict(self.judged))

    @work(thread=True, exclusive=True, group="history-judge", exit_on_error=False)
    def judge_runs(self, ids: list[int], judged: dict[int, tuple]) -> None:
        with open_for_reading(self.app.db_path) as store:
            judged = judge_runs(store, ids, judged, tuple(self.app.preset_dirs))
        self.post_message(RunsJudged(judged))

    @unless_closing
    def on_runs_judged(self, message: RunsJudged) -> None:
        self._judging = False
        self.judged.update(message.judged)
        table = self.query_one(RunTable)
        table.judged = {k: (v[1], v[2]) for k, v in self.judged.items()}
        table.show_runs()

    def worker_failed(self, worker, error) -> None:
        if worker.group == "history-judge":         # the column stays as it was; the next poll tries again
            self._judging = False
            return
        super().worker_failed(worker, error)

    def _show_empty(self) -> None:
        """Say why the table is empty: no runs at all, or none that matches the filter."""
        table = self.query_one(RunTable)
        empty = self.query_one("#history-empty", Static)
        empty.display = table.visible_count == 0
        if not table.runs:
            empty.update("no runs yet - press n to start one")
        elif table.visible_count == 0:
            empty.update(f"no run matches '{table.query_text}' ({len(table.runs)} runs in all) - esc clears the "
                         f"filter")

    # -- filter ---------------------------------------------------------------------------------------------------

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.query_one(RunTable).show_runs(query=event.value)
        self._show_empty()

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        self.query_one(RunTable).focus()

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_clear_filter(self) -> None:
        self.query_one("#filter", Input).value = ""
        self.query_one(RunTable).focus()

    # -- actions on the selected run ------------------------------------------------------------------------------

    def _selected(self) -> dict | None:
        run = self.query_one(RunTable).selected_run()
        if run is None:
            self.notify("no run selected", severity="warning")
        return run

    @on(DataTable.RowHighlighted, "#runs")
    def _show_detail(self) -> None:
        self.query_one("#run-detail", Static).update(run_detail(self.query_one(RunTable).selected_run()))

    @on(DataTable.RowSelected, "#runs")
    def _row_selected(self) -> None:
        self.action_open_run()

    def action_open_run(self) -> None:
        if self.focused is self.query_one("#filter", Input):
            self._filter_done()                     # Enter in the filter: on to the table
            return
        run = self._selected()
        if run is not None:
            self.app.open_dashboard(run["id"])

    def action_new_run(self) -> None:
        self.app.action_new_run()

    def action_resume_run(self) -> None:
        run = self._selected()
        if run is not None:
            self.app.resume_run(run["id"])          # the engine refuses a live run (one line)

    def action_stop_run(self) -> None:
        run = self._selected()
        if run is not None:
            self.app.stop_run(run["id"])

    def action_delete_run(self) -> None:
        from difftui.tui.screens.confirm import ConfirmScreen
        run = self._selected()
        if run is None:
            return
        if run.get("delete_refused"):              # the engine's rule (launch.runs.delete_refusal), from the poll
            self.notify(run["delete_refused"], title="delete", severity="warning")
            return

        def done(yes: bool | None) -> None:
            if yes:
                self.app.delete_run(run["id"])

        self.app.push_screen(ConfirmScreen(f"Delete run {run['id']} ({run['name']})?",
                                           "Its metrics, grids, events and checkpoints are removed."), done)

    # -- sweeps, compare and clone (issue 8) ----------------------------------------------------------------------

    def action_mark_run(self) -> None:
        """Mark (or unmark) the highlighted run for compare, and move to the next one."""
        table = self.query_one(RunTable)
        run = self._selected()
        if run is None:
            return
        table.marked.symmetric_difference_update({run["id"]})
        table.show_runs()
        table.action_cursor_down()
        self._show_detail()

    def action_compare_runs(self) -> None:
        table = self.query_one(RunTable)
        marked = [r["id"] for r in table.runs if r["id"] in table.marked]
        if len(marked) < 2:
            self.notify("mark two or more runs with space, then press c", severity="warning")
            return
        self.app.open_compare(sorted(marked))

    def action_recheck(self) -> None:
        """R: the selected fork and its parent in the compare view, with the re-check's verdicts (issue 18)."""
        run = self._selected()
        if run is None:
            return
        if not run.get("parent_id"):
            self.notify(f"run {run['id']} is no fork (it has no parent to re-check against)", severity="warning")
            return
        self.app.open_compare([run["parent_id"], run["id"]])

    def action_clone_run(self) -> None:
        run = self._selected()
        if run is not None:
            self.app.clone_run(run["id"])

    def action_new_sweep(self) -> None:
        """A sweep around the highlighted run's config (the defaults when there is no run)."""
        run = self.query_one(RunTable).selected_run()
        self.app.open_sweep_grid(run_id=run["id"] if run else None)

    def action_open_sweep(self) -> None:
        run = self._selected()
        if run is None:
            return
        if not run.get("sweep_id"):
            self.notify(f"run {run['id']} is not in a sweep (W lists the sweeps)", severity="warning")
            return
        self.app.open_sweep(run["sweep_id"])

    def action_sweeps(self) -> None:
        self.app.open_sweeps()
