"""The run history table: one row per run, with a text filter; the cursor stays on its run across refreshes."""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist

from difftui.engine.numbers import format_number
from difftui.tui.metric_series import as_value
from difftui.tui.widgets.status_line import STATUS_STYLES

__all__ = ["RunTable", "run_matches", "findings_cell", "judge_runs"]

# Fixed widths: the table does not jump as rows arrive, and it renders the same on every frame. The columns a user
# scans first come first, so a 100-column terminal still shows id, name, status, step and last loss.
COLUMNS = {"id": 4, "name": 28, "status": 9, "step": 14, "last loss": 9, "findings": 9, "dataset": 12,
           "backbone": 14, "sampler": 10, "created": 16}
VIEW_MARGIN = 10            # rows judged above and below the ones in view (a scroll shows judged rows at once)
FINDING_STYLES = {"warning": "bold yellow", "info": "cyan"}


def findings_cell(judged: tuple[int, str] | None) -> Text:
    """The findings column (issue 18): '2 warn' / '1 info' (the count and the worst severity), '-' for none, ''
    while not judged yet (a run out of view, or the first poll)."""
    if judged is None:
        return Text("")
    count, worst = judged
    if not count:
        return Text("-", style="dim", justify="right")
    return Text(f"{count} {'warn' if worst == 'warning' else 'info'}", style=FINDING_STYLES.get(worst, ""),
                justify="right")


def run_matches(run: dict[str, Any], query: str) -> bool:
    """Every word of the query must appear in one of the run's shown fields (case-insensitive)."""
    hay = " ".join(str(run.get(k) or "") for k in ("id", "name", "status", "dataset", "backbone", "sampler",
                                                       "recipe", "device")).lower()
    return all(word in hay for word in query.lower().split())


def _row(run: dict[str, Any], marked: bool = False, judged: tuple[int, str] | None = None) -> tuple[Any, ...]:
    status = Text(run["status"], style=STATUS_STYLES.get(run["status"], ""))
    total = run.get("total_steps")
    step = f"{run['step']}/{total}" if total else str(run["step"])
    loss = run.get("last_loss")
    name = run["name"] + (" [off-tier]" if run.get("off_tier") else "")
    # Sweeps and compare (issue 8): a sweep member says so, an off-grid value is marked, a marked run has a dot.
    if run.get("sweep_id"):
        name += f" [sweep {run['sweep_id']}{', off-grid' if run.get('off_grid') else ''}]"
    if run.get("parent_id"):                        # issue 18: the lineage ("fork of 3 @ 400", "clone of 3")
        from difftui.engine.launch.fork import lineage
        name += f" [{lineage(run)}]"
    if marked:
        name = Text.assemble(("● ", "bold yellow"), name)
    return (
        Text(str(run["id"]), justify="right"),
        name,
        status,
        Text(step, justify="right"),
        Text(format_number(as_value(loss)) if loss is not None else "-", justify="right"),
        findings_cell(judged),
        run.get("dataset") or "",
        run.get("backbone") or "",
        run.get("sampler") or "",
        time.strftime("%Y-%m-%d %H:%M", time.localtime(run["created"])),
    )


class RunTable(DataTable):
    """Runs newest first. `show_runs` replaces the rows only when something shown changed."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.runs: list[dict[str, Any]] = []
        self.query_text = ""
        self.marked: set[int] = set()               # runs marked (space) for compare
        self.judged: dict[int, tuple[int, str]] = {}    # run id -> (findings, worst severity): the history's worker
        self._shown: list[tuple[Any, ...]] = []
        # Columns now, not on mount: the first poll's rows may arrive before this widget's Mount is handled.
        for col, width in COLUMNS.items():
            self.add_column(col, key=col, width=width)

    def show_runs(self, runs: list[dict[str, Any]] | None = None, query: str | None = None) -> None:
        if runs is not None:
            self.runs = runs
        if query is not None:
            self.query_text = query
        visible = [r for r in self.runs if run_matches(r, self.query_text)]
        rows = [_row(r, r["id"] in self.marked, self.judged.get(r["id"])) for r in visible]
        keyed = [(r["id"], *map(str, row)) for r, row in zip(visible, rows, strict=False)]
        if keyed == self._shown:
            return
        selected = self.selected_run_id
        self._shown = keyed
        self.clear()
        for run, row in zip(visible, rows, strict=False):
            self.add_row(*row, key=str(run["id"]))
        if selected is not None and str(selected) in self.rows:
            self.move_cursor(row=self.get_row_index(str(selected)), animate=False)

    @property
    def selected_run_id(self) -> int | None:
        if not self.row_count:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except CellDoesNotExist:
            return None
        return int(key.value) if key.value is not None else None

    def ids_in_view(self) -> list[int]:
        """The runs whose rows are on screen (and VIEW_MARGIN around them): the ones the findings column judges."""
        ids = [int(k[0]) for k in self._shown]
        if not ids:
            return []
        top = int(self.scroll_offset.y)
        height = self.size.height or 40
        return ids[max(0, top - VIEW_MARGIN):top + height + VIEW_MARGIN]

    @property
    def visible_count(self) -> int:
        return len(self._shown)

    def selected_run(self) -> dict[str, Any] | None:
        run_id = self.selected_run_id
        return next((r for r in self.runs if r["id"] == run_id), None)


def judge_runs(store: Any, run_ids: list[int], cache: dict[int, tuple], preset_dirs: tuple = ()
               ) -> dict[int, tuple]:
    """{run id: (cursors, findings, worst severity)} for `run_ids`: a run whose cursors (engine/store/findings_reads
    run_cursors: step, status, newest row ids) are those in `cache` keeps its entry; the others are judged again by
    the doctor. A run the doctor cannot judge is left out (its cell stays empty). Runs in a worker."""
    from difftui.engine.doctor import diagnose
    from difftui.engine.store.findings_reads import run_cursors
    out = {}
    for run_id in run_ids:
        cursors = run_cursors(store, run_id)
        if cursors is None:
            continue
        known = cache.get(run_id)
        if known is not None and known[0] == cursors:
            out[run_id] = known
            continue
        try:
            d = diagnose(store, run_id, preset_dirs=preset_dirs)
        except Exception:                           # a config this difftui cannot read: no cell, never a crash
            continue
        out[run_id] = (cursors, len(d.findings), "warning" if d.warnings else ("info" if d.findings else ""))
    return out
