"""Loss curves of several runs on one chart (a sweep's members, or the runs being compared), one colour per run.

Rows arrive incrementally from the screens' polls (`run_id, step, kimg, name, value`); each run keeps its whole
series per metric, and a redraw reduces every shown series to at most two points per character column (min/max
buckets) before plotext sees it. `metric` picks the loss shown, `x` aligns the runs by optimizer step or by kimg (the
images seen: runs with different batch sizes line up by data, playbook 4.2), and the legend names each run by its
label (a sweep's axis values, or the run's name).
"""

from __future__ import annotations

import bisect
import math
from typing import Iterable, Sequence

import numpy as np
from textual.reactive import reactive
from textual_plotext import PlotextPlot

from difftui.tui.metric_series import DEFAULT_SMOOTHING, debiased_ema

__all__ = ["OverlayChart", "PALETTE", "color_of"]

# Distinct colours in legend order (plotext names); beyond twelve they repeat.
PALETTE = ("cyan+", "magenta+", "orange+", "green+", "red+", "blue+", "cyan", "magenta", "orange", "green", "red",
           "blue")


def color_of(index: int) -> str:
    return PALETTE[index % len(PALETTE)]



SMOOTHING = DEFAULT_SMOOTHING                       # the dashboard's metric grid's weight (TensorBoard's debiased EMA)


def downsample_minmax(xs: Sequence[float], ys: Sequence[float], buckets: int) -> tuple[list[float], list[float]]:
    """At most `2 * buckets` points: each bucket of consecutive points keeps its min and its max, in x order."""
    n = len(xs)
    if buckets < 1 or n <= 2 * buckets:
        return list(xs), list(ys)
    x = np.asarray(xs, dtype=float)
    y = np.asarray(ys, dtype=float)
    edges = np.linspace(0, n, buckets + 1).astype(int)
    out_x: list[float] = []
    out_y: list[float] = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=False):
        if hi <= lo:
            continue
        seg = y[lo:hi]
        i, j = int(np.nanargmin(seg)) if np.isfinite(seg).any() else 0, \
            int(np.nanargmax(seg)) if np.isfinite(seg).any() else 0
        for k in sorted({i, j}):
            out_x.append(float(x[lo + k]))
            out_y.append(float(seg[k]))
    return out_x, out_y

class OverlayChart(PlotextPlot):
    metric: reactive[str] = reactive("L_simple")
    x: reactive[str] = reactive("step")             # "step" | "kimg"
    log_scale: reactive[bool] = reactive(False)
    smoothing: reactive[bool] = reactive(True)      # an EMA of each curve (as the dashboard's), so that close
                                                    # members stay apart; `e` shows the raw values
    legend: reactive[bool] = reactive(True)         # plotext's legend; off where a table names the colours
    fork_step: reactive[int | None] = reactive(None)    # a fork pair (issue 18): a line where the fork starts

    def __init__(self, *, title: str = "loss", id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.title = title
        self.order: list[int] = []                  # run ids in legend order
        self.labels: dict[int, str] = {}
        # (run_id, metric) -> [steps], [kimg], [values]
        self.series: dict[tuple[int, str], tuple[list[float], list[float], list[float]]] = {}

    # -- data -----------------------------------------------------------------------------------------------------

    def set_runs(self, runs: Iterable[tuple[int, str]]) -> None:
        """The runs shown, in legend (and colour) order, with their labels."""
        runs = list(runs)
        order = [r for r, _ in runs]
        labels = dict(runs)
        if order != self.order or labels != self.labels:
            self.order, self.labels = order, labels
            self.replot()

    def add_rows(self, rows: Iterable[dict]) -> int:
        """Append metric rows; a step at or before the last one (a resume rewound the run) drops what follows it."""
        added = 0
        for row in rows:
            value = row["value"]
            if value is None or not math.isfinite(value):
                continue
            steps, kimg, values = self.series.setdefault((row["run_id"], row["name"]), ([], [], []))
            step = float(row["step"])
            if steps and step <= steps[-1]:
                cut = bisect.bisect_left(steps, step)
                del steps[cut:], kimg[cut:], values[cut:]
            steps.append(step)
            kimg.append(float(row["kimg"] if row["kimg"] is not None else 0.0))
            values.append(float(value))
            added += 1
        if added:
            self.replot()
        return added

    def reset_run(self, run_id: int) -> None:
        for key in [k for k in self.series if k[0] == run_id]:
            del self.series[key]

    def metrics(self) -> list[str]:
        """The metric names with data, in first-seen order."""
        out: list[str] = []
        for (_run, name) in self.series:
            if name not in out:
                out.append(name)
        return out

    # -- drawing --------------------------------------------------------------------------------------------------

    def watch_metric(self) -> None:
        self.replot()

    def watch_x(self) -> None:
        self.replot()

    def watch_log_scale(self) -> None:
        self.replot()

    def watch_smoothing(self) -> None:
        self.replot()

    def watch_legend(self) -> None:
        self.replot()

    def watch_fork_step(self) -> None:
        self.replot()

    def on_resize(self) -> None:
        self.replot()

    def plotted(self) -> dict[int, tuple[list[float], list[float]]]:
        """{run_id: (xs, ys)} exactly as handed to plotext (downsampled to the chart's width)."""
        width = max(self.size.width - 12, 10)
        out = {}
        for run_id in self.order:
            data = self.series.get((run_id, self.metric))
            if not data or not data[2]:
                continue
            xs = data[0] if self.x == "step" else data[1]
            ys = debiased_ema(data[2], SMOOTHING) if self.smoothing else data[2]
            if self.log_scale:
                keep = [(a, b) for a, b in zip(xs, ys, strict=False) if b > 0]
                xs, ys = [k[0] for k in keep], [k[1] for k in keep]
            out[run_id] = downsample_minmax(xs, ys, width // 2)
        return out

    def replot(self) -> None:
        if not self.is_mounted:
            return
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        series = self.plotted()
        if not series:
            plt.title(f"{self.title}: {self.metric} - no points yet")
        else:
            parts = ["EMA" if self.smoothing else "raw", *(["log"] if self.log_scale else [])]
            plt.title(f"{self.title}: {self.metric} by {self.x} ({', '.join(parts)})")
            for run_id, (xs, ys) in series.items():
                if xs:
                    label = self.labels.get(run_id, f"run {run_id}") if self.legend else None
                    plt.plot(xs, ys, label=label, marker="braille", color=color_of(self.order.index(run_id)))
            if self.fork_step is not None and self.x == "step":      # parent and fork align at this step
                plt.vline(self.fork_step, "gray")
            plt.xlabel(self.x)
        plt.yscale("log" if self.log_scale and series else "linear")
        self.refresh()

    def on_mount(self) -> None:
        self.replot()
