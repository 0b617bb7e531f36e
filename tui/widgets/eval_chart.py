"""A metric over training steps (FID, else the held-out NLL), one series per protocol (sample count), so numbers of
different sample counts are never joined into one line (playbook 5.5)."""

from __future__ import annotations

import math
from typing import Any

from textual_plotext import PlotextPlot

__all__ = ["EvalChart", "RecordsChart", "chart_series"]


def chart_series(records: list[dict[str, Any]]) -> tuple[str, dict[str, tuple[list[float], list[float]]]]:
    """(metric name, {series label: (steps, values)}) for the records of the evaluation table."""
    metric = "fid" if any(math.isfinite(r["fid"]) for r in records) else "nll_bpd"
    series: dict[str, tuple[list[float], list[float]]] = {}
    for r in sorted(records, key=lambda r: r["step"]):
        v = r[metric]
        if not math.isfinite(v):
            continue
        if metric == "fid":
            label = f"FID {r['samples']:,}{' quick' if r['quick'] else ''} {r['sampler']}"
        else:
            label = f"NLL /{r['nll_images']:,}"
        xs, ys = series.setdefault(label, ([], []))
        xs.append(float(r["step"]))
        ys.append(float(v))
    return metric, series


class RecordsChart(PlotextPlot):
    """A plotext chart of a list of evaluation records, redrawn whole when they change; subclasses say how (`draw`)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.records: list[dict[str, Any]] = []

    def show_records(self, records: list[dict[str, Any]]) -> None:
        self.records = records
        self.replot()

    def replot(self) -> None:
        if not self.is_mounted:
            return
        self.plt.clear_data()
        self.plt.clear_figure()
        self.draw(self.plt)
        self.refresh()

    def draw(self, plt: Any) -> None:
        raise NotImplementedError                   # each chart draws its own records

    def on_mount(self) -> None:
        self.replot()


class EvalChart(RecordsChart):
    def draw(self, plt: Any) -> None:
        metric, series = chart_series(self.records)
        if not series:
            plt.title("no FID or NLL yet - v evaluates")
        else:
            plt.title(("FID" if metric == "fid" else "held-out NLL (bits/dim)") + " over training steps")
            for label, (xs, ys) in series.items():
                plt.plot(xs, ys, label=label[:40], marker="dot")
            plt.xlabel("step")
