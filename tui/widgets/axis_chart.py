"""A metric against a sweep's axis value: one point per member (e.g. the final L_vlb against dropout, playbook 4.5),
and for DyDiT the measured FLOPs ratio on the right-hand axis (with the loss on the left: the P5 speed-quality
trade-off against lambda, playbook A.1a / A.2).

Members that ended before their last step (stopped, failed, crashed) are left out, and the border names them: their
partial value beside finished members would read as a result (issue 16 item 7).

Numeric axes are plotted at their values; other axes (a schedule, a tier name) at evenly spaced positions labelled
with the value. Members that share an axis value (several axes) each give a point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from textual_plotext import PlotextPlot

__all__ = ["AxisChart", "AxisPoints"]


@dataclass
class AxisPoints:
    axis: str = ""                                  # the axis key, e.g. recipe.dropout
    metric: str = ""
    values: list[Any] = field(default_factory=list)  # axis value per member
    last: list[float] = field(default_factory=list)  # the metric's last value per member (nan: none yet)
    best: list[float] = field(default_factory=list)
    flops: list[float] = field(default_factory=list)  # measured FLOPs ratio per member (DyDiT), or empty
    left_out: list[str] = field(default_factory=list)  # run ids of the members not plotted (unfinished)

    def positions(self) -> tuple[list[float], list[str] | None]:
        """x positions, and tick labels when the axis is not numeric."""
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in self.values):
            return [float(v) for v in self.values], None
        distinct: list[Any] = []
        for v in self.values:
            if v not in distinct:
                distinct.append(v)
        return [float(distinct.index(v)) for v in self.values], [str(v) for v in distinct]


def _finite(xs: list[float], ys: list[float]) -> tuple[list[float], list[float]]:
    pairs = sorted((x, y) for x, y in zip(xs, ys, strict=False) if y is not None and math.isfinite(y))
    return [p[0] for p in pairs], [p[1] for p in pairs]


class AxisChart(PlotextPlot):
    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.points = AxisPoints()

    def show_points(self, points: AxisPoints) -> None:
        self.points = points
        self.replot()

    def plotted(self) -> dict[str, tuple[list[float], list[float]]]:
        p = self.points
        xs, _ = p.positions()
        out = {}
        for label, ys in ((f"{p.metric} last", p.last), (f"{p.metric} best", p.best), ("FLOPs ratio", p.flops)):
            if ys:
                fx, fy = _finite(xs, ys)
                if fx:
                    out[label] = (fx, fy)
        return out

    def left_out_note(self) -> str:
        """Members that ended before their last step are not plotted (a partial value would read as a result)."""
        left = self.points.left_out
        if not left:
            return ""
        return f"left out: run{'s' if len(left) > 1 else ''} {', '.join(left)} (partial)"

    def replot(self) -> None:
        if not self.is_mounted:
            return
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        p = self.points
        self.border_subtitle = self.left_out_note()        # on the border: plotext drops a title wider than the plot
        series = self.plotted()
        short = p.axis.split(".")[-1] if p.axis else "axis"
        if not series:
            plt.title(f"{p.metric or 'metric'} against {short} - no points yet")
            self.refresh()
            return
        plt.title(f"{p.metric} against {short}" + (" (FLOPs ratio on the right)" if "FLOPs ratio" in series else ""))
        styles = {f"{p.metric} last": ("cyan+", "dot", "left"), f"{p.metric} best": ("green", "dot", "left"),
                  "FLOPs ratio": ("orange+", "dot", "right")}
        for label, (xs, ys) in series.items():
            color, marker, side = styles[label]
            plt.plot(xs, ys, label=label, color=color, marker="braille", yside=side)
            plt.scatter(xs, ys, color=color, marker="o", yside=side)
        _, ticks = p.positions()
        if ticks is not None:
            plt.xticks(list(range(len(ticks))), ticks)
        plt.xlabel(short)
        self.refresh()

    def on_mount(self) -> None:
        self.replot()

    def on_resize(self) -> None:
        self.replot()
