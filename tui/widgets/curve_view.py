"""The few-step curve (playbook 5.7-5.8): FID and NLL at 5/10/15/20 steps for each covariance (heuristic, learned,
OCM) as a table and a chart, with the grid of the highlighted row beside them (all grids from the same x_T)."""

from __future__ import annotations

import math
from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from difftui.engine.eval.rows import format_metric
from difftui.tui.widgets.eval_chart import RecordsChart

__all__ = ["CurveTable", "CurveChart"]

# Widths include one space of separation (cell padding 0); NFE = steps for these chains (one forward per step).
COLUMNS = {"covariance": 20, "steps": 6, "FID": 8, "NLL": 7, "samples": 8}


class CurveTable(DataTable):
    """One row per (covariance, steps); the best FID and NLL at each step count in bold green."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True, cell_padding=0)
        self.records: list[dict[str, Any]] = []
        self._shown: list[str] = []
        for col, width in COLUMNS.items():
            self.add_column(col, key=col, width=width)

    def show_records(self, records: list[dict[str, Any]]) -> None:
        best: dict[tuple[int, str], float] = {}
        for r in records:
            steps = r["protocol"].get("steps")
            for m in ("fid", "nll_bpd"):
                v = r.get(m, math.nan)
                if math.isfinite(v):
                    best[steps, m] = min(v, best.get((steps, m), math.inf))

        def cell(r, m):
            v = r.get(m)
            style = "bold green" if v is not None and math.isfinite(v) and \
                v == best.get((r["protocol"].get("steps"), m)) else ""
            return Text(format_metric(m, v), justify="right", style=style)

        rows = [(r["sampler"].rsplit(" N=", 1)[0], Text(str(r["protocol"].get("steps")), justify="right"),
                 cell(r, "fid"), cell(r, "nll_bpd"),
                 Text(f"{r['samples']:,}" if r["samples"] else "-", justify="right")) for r in records]
        keyed = [" ".join(map(str, row)) for row in rows]
        if keyed == self._shown:
            return
        self._shown = keyed
        self.records = records
        self.clear()
        for i, row in enumerate(rows):
            self.add_row(*row, key=str(i), height=None)      # a long covariance name wraps, never cut

    def highlighted(self) -> dict[str, Any] | None:
        if not self.records or not 0 <= self.cursor_row < len(self.records):
            return None
        return self.records[self.cursor_row]


class CurveChart(RecordsChart):
    """FID against the number of steps, one line per covariance."""

    def draw(self, plt: Any) -> None:
        lines: dict[str, tuple[list[float], list[float]]] = {}
        for r in self.records:
            v = r.get("fid", math.nan)
            if math.isfinite(v):
                xs, ys = lines.setdefault(r["sampler"].rsplit(" N=", 1)[0], ([], []))
                xs.append(float(r["protocol"].get("steps")))
                ys.append(float(v))
        if not lines:
            plt.title("few-step curve: none yet (? says how to draw one)")
        else:
            plt.title(f"few-step curve: FID vs steps (step {self.records[0]['step']})")
            for label, (xs, ys) in lines.items():
                order = sorted(range(len(xs)), key=xs.__getitem__)
                plt.plot([xs[i] for i in order], [ys[i] for i in order], label=label, marker="dot")
            plt.xlabel("steps")
