"""Every sweep in runs.db with its status, grid, members by status and slots; Enter opens the sweep view. The list is
re-read by a worker (which also reaps sweeps whose supervisor died) every few seconds."""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.widgets import DataTable, Footer, Static

from difftui.engine.launch import liveness
from difftui.engine.store import open_for_reading
from difftui.tui import bindings
from difftui.tui.messages import SweepsLoaded
from difftui.tui.screens.base import PollingScreen, unless_closing
from difftui.tui.widgets.status_line import STATUS_STYLES

__all__ = ["SweepListScreen"]

POLL_S = 3.0
COLUMNS = {"id": 4, "name": 24, "status": 10, "grid": 20, "members": 32, "slots": 12, "created": 16}


class SweepListScreen(PollingScreen):
    HELP_TITLE = "sweeps"
    BINDINGS = bindings.SWEEP_LIST
    AUTO_FOCUS = "#sweeps"

    def __init__(self) -> None:
        super().__init__()
        self.sweeps: list[dict[str, Any]] = []
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield Static("sweeps", id="sweeps-title")
        table = DataTable(id="sweeps", cursor_type="row", zebra_stripes=True)
        for col, width in COLUMNS.items():
            table.add_column(col, key=col, width=width)
        yield table
        yield Static("", id="sweeps-empty")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_now()

    poll_group = "sweep-list-poll"
    retry_after_s = POLL_S

    def start_poll(self) -> None:
        self.poll_sweeps()

    @work(thread=True, exclusive=True, group="sweep-list-poll", exit_on_error=False)
    def poll_sweeps(self) -> None:
        with open_for_reading(self.app.db_path) as store:
            liveness.reap_dead_runs(store)
            liveness.reap_dead_sweeps(store)
            sweeps = store.list_sweeps()
        self.post_message(SweepsLoaded(sweeps))

    @unless_closing
    def on_sweeps_loaded(self, message: SweepsLoaded) -> None:
        from difftui.engine.sweeps import sweep_slots
        self.loaded = True
        self.sweeps = message.sweeps
        table = self.query_one("#sweeps", DataTable)
        selected = self._selected_id()
        table.clear()
        for s in self.sweeps:
            counts = ", ".join(f"{n} {st}" for st, n in sorted(s["counts"].items()))
            table.add_row(Text(str(s["id"]), justify="right"), s["name"],
                          Text(s["status"], style=STATUS_STYLES.get(s["status"], "")), s["preset"] or "",
                          counts or "none", sweep_slots(s).short(),
                          time.strftime("%Y-%m-%d %H:%M", time.localtime(s["created"])), key=str(s["id"]))
        if selected is not None and str(selected) in table.rows:
            table.move_cursor(row=table.get_row_index(str(selected)), animate=False)
        empty = self.query_one("#sweeps-empty", Static)
        empty.display = not self.sweeps
        empty.update("no sweeps yet - press w in the history to start one")
        self.poll_done(POLL_S)

    def _selected_id(self) -> int | None:
        table = self.query_one("#sweeps", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return int(key.value) if key.value is not None else None

    @on(DataTable.RowSelected, "#sweeps")
    def _row_selected(self) -> None:
        self.action_open_sweep()

    def action_open_sweep(self) -> None:
        sweep_id = self._selected_id()
        if sweep_id is not None:
            self.app.open_sweep(sweep_id)

    def action_back(self) -> None:
        self.app.pop_screen()
