"""The live loss chart: every loss series of a run, downsampled to the chart's width before plotting.

The widget keeps the whole series (and its EMA, updated incrementally as points arrive); each redraw reduces every
series to at most two points per character column (min/max buckets, so spikes survive) and hands only those to
plotext. Smoothing and the log scale are toggles.
"""

from __future__ import annotations

import bisect
import math
from typing import Iterable, Sequence

import numpy as np
from textual.reactive import reactive
from textual_plotext import PlotextPlot

__all__ = ["LossChart", "LOSS_NAMES", "downsample_minmax", "ema"]

LOSS_NAMES = ("L_simple", "L_vlb", "L_hybrid", "L_edm")
COLORS = {"L_simple": "cyan", "L_vlb": "magenta", "L_hybrid": "orange", "L_edm": "green"}
EMA_ALPHA = 0.1                       # weight of the newest point: about a 10-point memory


def ema(values: Sequence[float], alpha: float = EMA_ALPHA, start: float | None = None) -> list[float]:
    """Exponential moving average, bias-free at the start (the first point is its own average)."""
    out: list[float] = []
    acc = start
    for v in values:
        acc = v if acc is None else acc + alpha * (v - acc)
        out.append(acc)
    return out


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
    for lo, hi in zip(edges[:-1], edges[1:]):
        if hi <= lo:
            continue
        seg = y[lo:hi]
        i, j = int(np.argmin(seg)), int(np.argmax(seg))
        for k in sorted({i, j}):
            out_x.append(float(x[lo + k]))
            out_y.append(float(seg[k]))
    return out_x, out_y


class LossChart(PlotextPlot):
    """Loss curves of one run (L_simple, L_vlb, L_hybrid, L_edm), fed incrementally by the dashboard's poll."""

    smoothing: reactive[bool] = reactive(True)
    log_scale: reactive[bool] = reactive(False)

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.steps: dict[str, list[float]] = {}
        self.values: dict[str, list[float]] = {}
        self.smoothed: dict[str, list[float]] = {}
        self._plotted_width = 0

    # -- data -----------------------------------------------------------------------------------------------------

    def add_points(self, rows: Iterable[dict]) -> int:
        """Append metric rows (dicts with name, step, value); non-loss names are ignored. Returns points added."""
        added = 0
        for row in rows:
            name, value = row["name"], row["value"]
            if name not in LOSS_NAMES or value is None or not math.isfinite(value):
                continue
            steps = self.steps.setdefault(name, [])
            values = self.values.setdefault(name, [])
            smooth = self.smoothed.setdefault(name, [])
            step = float(row["step"])
            if steps and step <= steps[-1]:
                # A resume rewound to a checkpoint: drop what was logged after it.
                cut = bisect.bisect_left(steps, step)
                del steps[cut:], values[cut:], smooth[cut:]
            steps.append(step)
            values.append(float(value))
            smooth.append(value if not smooth else smooth[-1] + EMA_ALPHA * (value - smooth[-1]))
            added += 1
        if added:
            self.replot()
        return added

    def point_count(self, name: str = "L_simple") -> int:
        return len(self.values.get(name, ()))

    def clear_points(self) -> None:
        self.steps.clear()
        self.values.clear()
        self.smoothed.clear()
        self.replot()

    # -- drawing --------------------------------------------------------------------------------------------------

    def watch_smoothing(self) -> None:
        self.replot()

    def watch_log_scale(self) -> None:
        self.replot()

    def on_resize(self) -> None:
        if self.size.width != self._plotted_width:
            self.replot()

    def plotted(self) -> dict[str, tuple[list[float], list[float]]]:
        """The downsampled (and maybe smoothed) series exactly as handed to plotext."""
        width = max(self.size.width - 12, 10)           # minus the y-axis labels
        out = {}
        for name in LOSS_NAMES:
            if not self.values.get(name):
                continue
            ys = self.smoothed[name] if self.smoothing else self.values[name]
            xs = self.steps[name]
            if self.log_scale:
                keep = [(x, y) for x, y in zip(xs, ys) if y > 0]
                xs, ys = [k[0] for k in keep], [k[1] for k in keep]
            out[name] = downsample_minmax(xs, ys, width // 2)
        return out

    def replot(self) -> None:
        if not self.is_mounted:
            return
        self._plotted_width = self.size.width
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        series = self.plotted()
        parts = ["EMA" if self.smoothing else "raw", "log" if self.log_scale else "linear"]
        if not series:
            plt.title("loss - waiting for the first metrics")
        else:
            plt.title(f"loss ({', '.join(parts)})")
            for name, (xs, ys) in series.items():
                if xs:
                    plt.plot(xs, ys, label=name, marker="braille", color=COLORS[name])
            plt.xlabel("step")
        plt.yscale("log" if self.log_scale and series else "linear")
        self.refresh()

    def on_mount(self) -> None:
        # PlotextPlot's own on_mount (theme registration) runs too: Textual dispatches along the MRO.
        self.replot()
