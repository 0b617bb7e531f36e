"""Every recorded evaluation of a run as one table (playbook 5.5-5.6): step, weights, sampler, NFE, samples, FID,
precision, recall, NLL and seconds, with the best value of each metric in bold green and the best snapshot marked.
The sample count is always beside the number ("10,000 q" for the quick count)."""

from __future__ import annotations

import math
from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from difftui.engine.eval.rows import best_values, format_metric

__all__ = ["EvalTable", "COLUMNS", "record_cells"]

# Widths include one space of separation (cell padding 0), so the table fits two thirds of a 160-column terminal.
COLUMNS = {"step": 6, "weights": 12, "sampler": 23, "NFE": 5, "samples": 10, "FID": 14, "prec.": 6, "recall": 7,
           "NLL": 16, "s": 7}
BEST_STYLE = "bold green"


def _cell(name: str, value: float | None, best: float | None) -> Text:
    """A metric's cell: the one formatting of evaluation numbers (eval/rows.py), the best in bold green, a missing
    or non-finite value dim."""
    if value is None or not math.isfinite(value):
        style = "dim"
    else:
        style = BEST_STYLE if best is not None and value == best else ""
    return Text(format_metric(name, value), justify="right", style=style)


def record_cells(rec: dict[str, Any], best: dict[str, float], best_snapshot: int | None) -> tuple:
    """The cells of one evaluation record (eval_rows.table_records)."""
    weights = f" snap {rec['snapshot']}" if rec["snapshot"] is not None else " checkpoint"
    if rec["snapshot"] is not None and rec["snapshot"] == best_snapshot:
        weights = Text(weights + " *", style=BEST_STYLE)
    samples = f"{rec['samples']:,}" + (" q" if rec["quick"] else "") if rec["samples"] else "-"
    fid = _cell("fid", rec["fid"], best.get("fid"))
    if rec.get("repeats") and rec["repeats"] > 1 and math.isfinite(rec["fid"]):
        fid.append(f" ±{format_metric('spread', rec['spread'])}", style="dim")
    nll = _cell("nll_bpd", rec["nll_bpd"], best.get("nll_bpd"))
    if rec["nll_images"]:
        nll.append(f" /{rec['nll_images']:,}", style="dim")
    return (Text(str(rec["step"]), justify="right"), weights, " " + (rec["sampler"] or rec["nll_chain"] or "-"),
            Text(str(rec["nfe"] or "-"), justify="right"), Text(samples, justify="right"), fid,
            _cell("precision", rec["precision"], best.get("precision")), _cell("recall", rec["recall"],
                                                                                best.get("recall")), nll,
            Text(format_metric("seconds", rec["seconds"]), justify="right"))


class EvalTable(DataTable):
    """Evaluation records, oldest first; redrawn only when they change."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True, cell_padding=0)
        self._shown: list[str] = []
        for col, width in COLUMNS.items():
            self.add_column(col, key=col, width=width)

    def show_records(self, records: list[dict[str, Any]], best_snapshot: int | None = None) -> None:
        best = best_values(records)
        rows = [record_cells(r, best, best_snapshot) for r in records]
        keyed = [" ".join(map(str, row)) for row in rows]
        if keyed == self._shown:
            return
        self._shown = keyed
        self.clear()
        for i, row in enumerate(rows):
            self.add_row(*row, key=str(i), height=None)      # a long sampler name wraps in its cell, never cut
        if rows:
            self.move_cursor(row=len(rows) - 1, animate=False)
