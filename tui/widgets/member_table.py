"""A sweep's member table: axis values, status, step, last and best of each loss, NLL when evaluated and DyDiT's
measured FLOPs ratio, sortable from the keyboard; the cursor stays on its run across refreshes and re-sorts."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist

from difftui.engine.launch.liveness import is_waiting
from difftui.engine.launch.slurm.jobs import describe_job
from difftui.engine.numbers import format_number, format_setting
from difftui.tui.widgets.status_line import STATUS_STYLES

__all__ = ["MemberTable", "Column", "member_columns", "sortable", "LOSSES", "one_metric_note"]

LOSSES = ("L_simple", "L_vlb", "L_hybrid", "L_edm")


def one_metric_note(names: list[str], whose: str) -> str:
    """What `m` (next metric) says when there is nothing to switch to, rather than doing nothing silently."""
    if not names:
        return f"no loss logged by {whose} yet: m switches between losses once there are two"
    return (f"{whose} log only {names[0]}: m switches between losses (L_vlb, L_hybrid come with the hybrid "
            f"loss recipes)")
STATUS_ORDER = {"running": 0, "stopping": 1, "queued": 2, "failed": 3, "crashed": 4, "stopped": 5, "completed": 6}


def sortable(value: Any) -> tuple:
    """Numbers before text, missing values and NaN last, whatever the direction's meaning."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return (2, 0.0, "")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value))


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int
    value: Callable[[Any], Any]                     # summary -> the value sorted on
    cell: Callable[[Any], Any]                      # summary -> what is shown
    numeric: bool = True


def _axis_text(summary: Any, key: str, off_grid: dict[str, list[Any]]) -> Text:
    """The member's value on one axis; a value off the paper's grid is marked with a yellow '*'."""
    from difftui.engine.config.model import same_value
    v = summary.setting(key)
    text = Text(format_setting(v))
    if summary.run.get("off_grid") and any(same_value(v, o) for o in off_grid.get(key, ())):
        text.append("*", style="bold yellow")
    return text


def member_columns(summaries: list[Any], off_grid: dict[str, list[Any]] | None = None,
                   judged: dict[int, tuple[int, str]] | None = None) -> list[Column]:
    """The columns this sweep needs: its axes, the losses that were logged, NLL and FLOPs ratio when present, and the
    doctor's findings (issue 18; `judged`: run id -> (findings, worst severity), the sweep view's worker)."""
    off_grid = off_grid or {}
    judged = judged or {}
    axes: list[str] = []
    for s in summaries:
        axes.extend(k for k in s.axis_values if k not in axes)
    cols = [Column("run", "run", 5, lambda s: s.run["id"], lambda s: Text(str(s.run["id"]), justify="right"))]
    for key in axes:
        cols.append(Column(f"axis:{key}", key.split(".")[-1], max(8, len(key.split(".")[-1]) + 2),
                           lambda s, k=key: s.setting(k), lambda s, k=key: _axis_text(s, k, off_grid)))

    def status_cell(s: Any) -> Text:
        r = s.run
        label = "waiting" if is_waiting(r) else r["status"]
        return Text(label, style=STATUS_STYLES.get(r["status"], ""))

    cols.append(Column("status", "status", 9, lambda s: STATUS_ORDER.get(s.run["status"], 9), status_cell))
    if any(s.run.get("slurm_job") for s in summaries):      # a sweep on Slurm: each member's job and its state
        cols.append(Column("slurm", "slurm job", 30, lambda s: s.run.get("slurm_job") or "",
                           lambda s: Text(describe_job(s.run, prefix="") or "-", no_wrap=True,
                                          overflow="ellipsis"), numeric=False))
    cols.append(Column("step", "step", 13, lambda s: s.run["step"],
                       lambda s: Text(f"{s.run['step']}/{s.run['total_steps']}", justify="right")))
    for name in LOSSES:
        if any(name in s.last for s in summaries):
            cols.append(Column(f"last:{name}", f"{name}", 9, lambda s, n=name: s.last.get(n),
                               lambda s, n=name: _value_cell(s, s.last.get(n))))
            cols.append(Column(f"best:{name}", "best", 9, lambda s, n=name: s.best.get(n),
                               lambda s, n=name: _value_cell(s, s.best.get(n))))
    if any(s.nll for s in summaries):
        cols.append(Column("nll", "NLL b/d", 8, lambda s: s.nll[1] if s.nll else None,
                           lambda s: _value_cell(s, s.nll[1] if s.nll else None)))
    if any("flops_ratio" in s.last for s in summaries):
        cols.append(Column("flops", "FLOPs", 7, lambda s: s.last.get("flops_ratio"),
                           lambda s: _value_cell(s, s.last.get("flops_ratio"))))
    if judged:
        from difftui.tui.widgets.run_table import findings_cell
        cols.append(Column("findings", "findings", 9, lambda s: _findings_rank(judged.get(s.run["id"])),
                           lambda s: findings_cell(judged.get(s.run["id"]))))
    return cols


def _value_cell(summary: Any, value: float | None) -> Text:
    """A metric's cell; a member that ended before its last step shows its values dim and marked (PARTIAL_MARK):
    partial values, not results (issue 16 item 7; the detail line says how it ended)."""
    from difftui.engine.sweeps.compare import PARTIAL_MARK
    text = format_number(value)
    if summary.partial and value is not None:
        return Text(f"{text}{PARTIAL_MARK}", style="dim yellow", justify="right")
    return Text(text, justify="right")


def _findings_rank(judged: tuple[int, str] | None) -> Any:
    """Warnings above notes above none, then by count (sorting descending puts the worst first)."""
    if judged is None:
        return None
    count, worst = judged
    return {"warning": 2, "info": 1}.get(worst, 0) * 1000 + count


class MemberTable(DataTable):
    """`show(summaries)` redraws when something shown changed; `cycle_sort()` / `reverse_sort()` re-order."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.summaries: list[Any] = []
        self.columns_now: list[Column] = []
        self.sort_key = "run"
        self.descending = False
        self.off_grid: dict[str, list[Any]] = {}
        self.judged: dict[int, tuple[int, str]] = {}    # run id -> (findings, worst severity): the view's worker
        self._shown: list[tuple] = []

    def show(self, summaries: list[Any] | None = None, off_grid: dict[str, list[Any]] | None = None) -> None:
        if summaries is not None:
            self.summaries = summaries
        if off_grid is not None:
            self.off_grid = off_grid
        cols = member_columns(self.summaries, self.off_grid, self.judged)
        if self.sort_key not in {c.key for c in cols}:
            self.sort_key, self.descending = "run", False
        sort_col = next(c for c in cols if c.key == self.sort_key)
        ordered = sorted(self.summaries, key=lambda s: sortable(sort_col.value(s)), reverse=self.descending)
        if self.descending:                         # missing values stay last either way
            ordered = ([s for s in ordered if sortable(sort_col.value(s))[0] != 2]
                       + [s for s in ordered if sortable(sort_col.value(s))[0] == 2])
        rows = [[c.cell(s) for c in cols] for s in ordered]
        keyed = [(s.run["id"], *map(str, row)) for s, row in zip(ordered, rows, strict=False)]
        labels = [self._label(c) for c in cols]
        if keyed == self._shown and labels == [str(c.label) for c in self.ordered_columns]:
            return
        selected = self.selected_run_id
        self._shown = keyed
        self.clear(columns=True)
        for c, label in zip(cols, labels, strict=False):
            self.add_column(label, key=c.key, width=c.width)
        self.columns_now = cols
        for s, row in zip(ordered, rows, strict=False):
            self.add_row(*row, key=str(s.run["id"]))
        if selected is not None and str(selected) in self.rows:
            self.move_cursor(row=self.get_row_index(str(selected)), animate=False)

    def _label(self, col: Column) -> str:
        if col.key != self.sort_key:
            return col.label
        return f"{col.label}{'▼' if self.descending else '▲'}"

    def cycle_sort(self) -> str:
        keys = [c.key for c in self.columns_now] or ["run"]
        i = keys.index(self.sort_key) if self.sort_key in keys else -1
        self.sort_key = keys[(i + 1) % len(keys)]
        self.descending = False
        self.show()
        return self.sort_key

    def reverse_sort(self) -> None:
        self.descending = not self.descending
        self.show()

    def order(self) -> list[int]:
        """The run ids in the order shown."""
        return [int(k[0]) for k in self._shown]

    @property
    def selected_run_id(self) -> int | None:
        if not self.row_count:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except CellDoesNotExist:
            return None
        return int(key.value) if key.value is not None else None

    def selected(self) -> Any | None:
        run_id = self.selected_run_id
        return next((s for s in self.summaries if s.run["id"] == run_id), None)
