"""The metric grid: one small chart per metric family (L_simple, L_vlb, ..., grad norm, lr, img/s, the FLOPs ratio,
evaluations), each with its own y axis and log-scale toggle, a shared smoothing amount, and a metric filter.

A chart draws the smoothed curve (TensorBoard's debiased EMA over the drawn points) in its colour and the raw bucket
means faintly behind it; its legend line says which value the header number is (the smoothed last point, exactly the
chart's last point) beside the raw last value, the minimum and the maximum. Each chart reduces its bucketed series
(metric_series.py) to two points per character column before plotext sees them, and builds its canvas only when its
data, size or options changed; while a run streams faster than its charts can cheaply follow, new data redraws each
canvas at most as often as a CPU budget allows (CHART_CPU_BUDGET), and a key press redraws at once. NaN and inf are
gaps in the curve with a red `x` at the top of the chart and spelled out in the legend; they never stop a chart from
drawing.
"""

from __future__ import annotations

import math
import time
from typing import Any, Iterable

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Grid, Vertical, VerticalScroll
from textual.geometry import Region
from textual.reactive import reactive
from textual.widgets import Static
from textual_plotext import PlotextPlot

from difftui.engine.numbers import format_number
from difftui.tui.metric_series import (
    DEFAULT_SMOOTHING,
    BucketSeries,
    Point,
    as_value,
    debiased_ema,
    eval_family,
    family_of,
    family_order,
)

__all__ = ["MetricChart", "MetricGrid", "ChartPlot", "Reference", "SMOOTHING_STEPS"]

# The smoothing weights the +/- keys walk through (0 = raw; TensorBoard's slider spans [0, 0.999]).
SMOOTHING_STEPS = (0.0, 0.3, 0.6, 0.8, 0.9, 0.95, 0.99)
# (bright, faint) per series slot; the faint one draws the raw values behind the smoothed curve.
PALETTE = (((64, 200, 255), (40, 80, 100)), ((255, 120, 220), (100, 50, 90)), ((255, 170, 60), (100, 70, 30)),
           ((110, 220, 110), (45, 90, 45)), ((200, 160, 255), (80, 65, 100)))
MARK = (255, 80, 80)
REFERENCE = (150, 150, 150)
Y_LABEL_COLUMNS = 8                    # what plotext's y tick labels take from the width
# What the charts of a screen may spend, together, redrawing for new data (a fraction of one core; the TUI's whole
# target is 5% while it watches a run, bench/tui.py): a canvas that costs c seconds to draw, one of K shown, redraws
# for new data every max(MIN_REDRAW_S, K * c / CHART_CPU_BUDGET) seconds, and never less often than MAX_REDRAW_S. At
# the default CPU run's pace (an interval every few seconds) this never holds a redraw back.
CHART_CPU_BUDGET = 0.02
MIN_REDRAW_S, MAX_REDRAW_S = 1.0, 5.0


class Reference:
    """A horizontal (`y`) or vertical (`x`) reference line drawn on a chart (a target, a band edge, a phase end)."""

    def __init__(self, *, y: float | None = None, x: float | None = None, label: str = "") -> None:
        self.y, self.x, self.label = y, x, label

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Reference) and (self.y, self.x, self.label) == (other.y, other.x, other.label)


class ChartPlot(PlotextPlot):
    """A plotext canvas that rebuilds only when its chart says something changed (plotext builds in Python: a few
    milliseconds a chart, so a dashboard that rebuilt every chart on every frame would cost a core), and for new data
    no more often than the screen's chart budget allows."""

    def __init__(self, chart: "MetricChart", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.chart = chart
        self._cache_key: tuple | None = None
        self._cache: Any = None
        self.builds = 0
        self.allowed = 0                       # the chart version this canvas may draw (see request)
        self.cost = 0.0                        # seconds per draw (plotext's build and the conversion to lines)
        self._drawn_at = -math.inf
        self._started: float | None = None
        self._timer: Any = None

    def on_resize(self) -> None:
        # The legend's smoothed value is read from the points at this width: recompute it with the canvas.
        self.chart.update_legend()

    def request(self, *, at_once: bool) -> None:
        """The chart changed: redraw now (a key press, the first data) or when the budget allows (new data)."""
        if self._timer is not None and not at_once:
            return                             # a redraw is already due; it will draw the newest version
        wait = 0.0 if at_once else self._drawn_at + self.min_gap() - time.monotonic()
        if wait <= 0:
            self._release()
        else:
            self._timer = self.set_timer(wait, self._release)

    def min_gap(self) -> float:
        shown = sum(1 for plot in self.screen.query(ChartPlot) if plot.chart.display) if self.is_attached else 1
        return min(max(MIN_REDRAW_S, shown * self.cost / CHART_CPU_BUDGET), MAX_REDRAW_S)

    def _release(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self.allowed = self.chart.version
        self.refresh()

    def render(self):
        if self._cache_key is None or self._cache_key[:2] != (self.size.width, self.size.height):
            self.allowed = self.chart.version  # a first canvas or a new size is built anyway: with the newest data
        key = (self.size.width, self.size.height, self.allowed, self.app.theme)
        if key != self._cache_key or self._cache is None:
            self._started = time.perf_counter()
            self.chart.draw(self.plt, self.size.width)
            self._cache = super().render()
            self._cache_key = key
            self.builds += 1
        return self._cache

    def render_lines(self, crop: Region):
        lines = super().render_lines(crop)
        if self._started is not None:          # a new canvas was built and converted: what did it cost?
            spent = time.perf_counter() - self._started
            self.cost = spent if self.cost == 0 else 0.7 * self.cost + 0.3 * spent
            self._drawn_at, self._started = time.monotonic(), None
        return lines


class MetricChart(Vertical, can_focus=True):
    """One metric family: its series (the first is the main one), optional reference lines, log scale."""

    log_scale: reactive[bool] = reactive(False)

    def __init__(self, key: str, title: str, *, smoothing: float = DEFAULT_SMOOTHING) -> None:
        super().__init__(id="chart-" + "".join(c if c.isalnum() else "-" for c in key), classes="metric-chart")
        self.key = key
        self.title = title
        self.series: dict[str, BucketSeries] = {}
        self.references: list[Reference] = []
        self.smoothing = smoothing
        self.version = 0                       # bumped whenever what the chart draws changes
        self._points: dict[str, list[Point]] = {}
        self._legend_key: tuple | None = None
        self._drawn: dict[str, tuple[list[float], list[float], list[float]]] = {}

    def compose(self) -> ComposeResult:
        yield Static("", classes="chart-legend", markup=False)
        yield ChartPlot(self, classes="chart-plot")

    def on_mount(self) -> None:
        self.changed()

    # -- data -----------------------------------------------------------------------------------------------------

    def set_series(self, label: str, series: BucketSeries) -> None:
        self.series[label] = series
        self.changed()

    def set_references(self, references: list[Reference]) -> None:
        if references != self.references:
            self.references = references
            self.changed()

    def set_smoothing(self, weight: float) -> None:
        if weight != self.smoothing:
            self.smoothing = weight
            self.changed()

    def watch_log_scale(self) -> None:
        self.changed()

    def changed(self, *, at_once: bool = True) -> None:
        """Something drawn changed: new legend now, a new canvas at the next frame (or, for new data of a streaming
        run, as soon as the chart budget allows)."""
        self.version += 1
        title = self.title + ("  log" if self.log_scale else "")
        subtitle = f"EMA {self.smoothing:g}" if self.smoothing > 0 else "raw"
        if (self.border_title, self.border_subtitle) != (title, subtitle):
            self.border_title, self.border_subtitle = title, subtitle
        if self.is_mounted:
            self.update_legend()
            self.query_one(ChartPlot).request(at_once=at_once)

    def update_legend(self) -> None:
        """A changed legend only, and without a layout pass (the line's size never changes): redrawing the whole
        screen for every chart on every poll is what a live dashboard would spend its CPU on."""
        if self.is_mounted:
            legend = self.legend()
            key = (legend.plain, tuple(legend.spans))
            if key != self._legend_key:
                self._legend_key = key
                self.query_one(".chart-legend", Static).update(legend, layout=False)

    # -- what is drawn ---------------------------------------------------------------------------------------------

    @property
    def main(self) -> str | None:
        return next(iter(self.series), None)

    def plot_points(self, width: int | None = None) -> int:
        width = self.query_one(ChartPlot).size.width if width is None and self.is_mounted else width or 60
        return max(2 * (width - Y_LABEL_COLUMNS), 8)           # braille: two dots per column

    def plotted(self, width: int | None = None) -> dict[str, tuple[list[float], list[float], list[float]]]:
        """Per series: (steps, raw means, smoothed), exactly as handed to plotext (non-finite points are NaN)."""
        count = self.plot_points(width)
        out = {}
        for label, series in self.series.items():
            points = series.points(count)
            self._points[label] = points
            xs = [round(p.step) for p in points]            # whole steps: the axis labels read as steps
            raw = [p.mean for p in points]
            out[label] = (xs, raw, debiased_ema(raw, self.smoothing))
        self._drawn = out
        return out

    def shown_value(self) -> float | None:
        """The header number: the main series' last drawn smoothed point (the raw last value when unsmoothed)."""
        main = self.main
        if main is None:
            return None
        series = self.series[main]
        if self.smoothing <= 0 or not series.buckets:
            return series.last
        _, _, smooth = self.plotted().get(main, ([], [], []))
        finite = [v for v in smooth if math.isfinite(v)]
        if series.last is not None and not math.isfinite(series.last):
            return series.last                # the run went non-finite: say so rather than an old average
        return finite[-1] if finite else None

    def legend(self) -> Text:
        """'EMA 0.3148 last 0.2901 min 0.101 max 1.2': the header number first, named for what it is."""
        text = Text(no_wrap=True, overflow="ellipsis")
        main = self.main
        if main is None:
            text.append("no values yet", style="dim")
            return text
        series = self.series[main]
        shown = self.shown_value()
        bad = shown is not None and not math.isfinite(shown)
        text.append("EMA " if self.smoothing > 0 else "last ", style="dim")
        text.append(format_number(shown), style="bold red" if bad else "bold")
        if self.smoothing > 0:
            text.append(" last ", style="dim")
            text.append(format_number(series.last), style="red" if series.last is not None
                        and not math.isfinite(series.last) else "")
        text.append(" min ", style="dim")
        text.append(format_number(series.lo, 3))
        text.append(" max ", style="dim")
        text.append(format_number(series.hi, 3))
        odd = sum(b.nonfinite for b in series.buckets.values())
        if odd:
            text.append(f"  {odd} non-finite", style="red")
        for i, (label, other) in enumerate(list(self.series.items())[1:], start=1):
            color = "rgb({},{},{})".format(*PALETTE[i % len(PALETTE)][0])
            text.append(f"  ● {label} ", style=color)
            text.append(format_number(other.last))
        for ref in self.references:
            if ref.label and ref.y is not None and ref.label != "band":
                text.append(f"  {ref.label} {format_number(ref.y)}", style="dim")
        return text

    def draw(self, plt: Any, width: int) -> None:
        """Build the plotext figure (called by ChartPlot.render when something changed)."""
        plt.clear_data()
        plt.clear_figure()
        plotted = self.plotted(width)
        finite_all = [v for _, raw, smooth in plotted.values() for v in (*raw, *smooth) if math.isfinite(v)]
        if self.log_scale:
            finite_all = [v for v in finite_all if v > 0]
        if not finite_all:
            plt.title("waiting for values" if not self.series else "no finite values to draw")
            return
        top = max(finite_all)
        for i, (label, (xs, raw, smooth)) in enumerate(plotted.items()):
            bright, faint = PALETTE[i % len(PALETTE)]
            if self.smoothing > 0:
                for sx, sy in _segments(xs, raw, self.log_scale):
                    plt.plot(sx, sy, marker="braille", color=faint)
            for sx, sy in _segments(xs, smooth if self.smoothing > 0 else raw, self.log_scale):
                plt.plot(sx, sy, marker="braille", color=bright)
            marks = [p.step for p in self._points.get(label, []) if p.marker]
            if marks:
                plt.scatter(marks, [top] * len(marks), marker="x", color=MARK)
        for ref in self.references:
            if ref.y is not None and (not self.log_scale or ref.y > 0):
                plt.hline(ref.y, REFERENCE)
            if ref.x is not None:
                plt.vline(ref.x, REFERENCE)
        xs_all = [x for xs, _, _ in plotted.values() for x in xs]
        if xs_all:
            ticks = _step_ticks(min(xs_all), max(xs_all), 5)
            plt.xticks(ticks, [_step_label(t) for t in ticks])
        plt.yscale("log" if self.log_scale else "linear")


def _step_ticks(lo: float, hi: float, count: int) -> list[int]:
    """`count` whole steps spread over [lo, hi] (one when the range is a single step)."""
    lo, hi = int(lo), int(hi)
    if hi <= lo:
        return [lo]
    return sorted({round(lo + (hi - lo) * i / (count - 1)) for i in range(count)})


def _step_label(step: float) -> str:
    """A step for an axis: 990, 12.5k, 1.2M."""
    step = int(step)
    if abs(step) < 10_000:
        return str(step)
    if abs(step) < 1_000_000:
        return f"{step / 1000:.3g}k"
    return f"{step / 1e6:.3g}M"


def _segments(xs: list[float], ys: list[float], log: bool) -> Iterable[tuple[list[float], list[float]]]:
    """Runs of drawable points: a NaN / inf (or a value <= 0 on a log axis) ends a run, so it shows as a gap."""
    run_x: list[float] = []
    run_y: list[float] = []
    for x, y in zip(xs, ys, strict=False):
        if math.isfinite(y) and (not log or y > 0):
            run_x.append(x)
            run_y.append(y)
        elif run_x:
            yield run_x, run_y
            run_x, run_y = [], []
    if run_x:
        yield run_x, run_y


class MetricGrid(VerticalScroll):
    """Every chart of a run, in family order, as many columns as fit; the filter hides charts that do not match."""

    smoothing: reactive[float] = reactive(DEFAULT_SMOOTHING)
    filter_text: reactive[str] = reactive("")

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.charts: dict[str, MetricChart] = {}
        self.latest: dict[str, float] = {}

    def compose(self) -> ComposeResult:
        yield Static("waiting for the first metrics ...", id="metric-grid-empty", markup=False)
        yield Grid(id="metric-grid-cells")

    def on_resize(self) -> None:
        self._columns()

    def _columns(self) -> None:
        width = self.size.width
        columns = 3 if width >= 150 else 2 if width >= 84 else 1
        self.query_one("#metric-grid-cells", Grid).styles.grid_size_columns = columns

    # -- data -----------------------------------------------------------------------------------------------------

    def chart(self, key: str, title: str) -> MetricChart:
        chart = self.charts.get(key)
        if chart is None:
            chart = MetricChart(key, title, smoothing=self.smoothing)
            self.charts[key] = chart
            cells = self.query_one("#metric-grid-cells", Grid)
            later = [c for k, c in self.charts.items() if k != key and family_order(k) > family_order(key)]
            before = min(later, key=lambda c: family_order(c.key)) if later else None
            if before is not None and before.parent is cells:
                cells.mount(chart, before=before)
            else:
                cells.mount(chart)
            chart.display = self._matches(chart)
            self._say_empty()
        return chart

    def set_series(self, series: dict[str, BucketSeries]) -> None:
        """Replace every training series (a full read of the run)."""
        for chart in list(self.charts.values()):
            if not chart.key.startswith("eval:"):
                chart.series.clear()
                chart.changed()
        for name in sorted(series, key=lambda n: (family_order((family_of(n) or (n, n))[0]), n)):
            fam = family_of(name)
            if fam is not None:
                self.chart(*fam).set_series(name, series[name])
            if series[name].last is not None:
                self.latest[name] = series[name].last

    def add_rows(self, rows: list[dict[str, Any]]) -> bool:
        """Append new metric rows; False when one of them goes back in steps (the run was rewound: read it again)."""
        touched: set[str] = set()
        for row in rows:
            name = row["name"]
            fam = family_of(name)
            self.latest[name] = as_value(row["value"])
            if fam is None:
                continue
            chart = self.chart(*fam)
            series = chart.series.get(name)
            if series is None:
                series = BucketSeries()
                chart.series[name] = series
            if not series.add(row["step"], row["value"]):
                return False
            touched.add(fam[0])
        for key in touched:
            self.charts[key].changed(at_once=False)
        return True

    def set_evals(self, rows: list[dict[str, Any]]) -> None:
        """Evaluation rows (step, sampler, metric, value): one chart per metric, one line per sampler."""
        grouped: dict[str, dict[str, list[tuple[int, Any]]]] = {}
        for row in rows:
            grouped.setdefault(row["metric"], {}).setdefault(row["sampler"] or "?", []).append(
                (row["step"], row["value"]))
        for metric, by_sampler in grouped.items():
            chart = self.chart(*eval_family(metric))
            for sampler, points in by_sampler.items():
                # One point per step (a re-evaluation at the same step replaces the earlier value).
                latest = dict(sorted(points))
                chart.series[sampler] = BucketSeries.from_points(sorted(latest.items()))
            chart.changed()

    def series_of(self, name: str) -> BucketSeries | None:
        """The series of one training metric (None when the run has not logged it)."""
        fam = family_of(name)
        chart = self.charts.get(fam[0]) if fam else None
        return chart.series.get(name) if chart else None

    def point_count(self, name: str = "L_simple") -> int:
        """Rows of one metric held (finite or not)."""
        series = self.series_of(name)
        return len(series) if series is not None else 0

    def clear(self) -> None:
        for chart in self.charts.values():
            chart.series.clear()
            chart.changed()
        self.latest.clear()

    # -- options --------------------------------------------------------------------------------------------------

    def watch_smoothing(self, weight: float) -> None:
        for chart in self.charts.values():
            chart.set_smoothing(weight)

    def watch_filter_text(self) -> None:
        for chart in self.charts.values():
            chart.display = self._matches(chart)
        self._say_empty()

    def _say_empty(self) -> None:
        """The line in place of the charts: none logged yet, or none matching the filter (and how to get them back)."""
        if not self.is_mounted:
            return
        empty = self.query_one("#metric-grid-empty", Static)
        if not self.charts:
            empty.update("waiting for the first metrics ...")
            empty.display = True
        elif not self.visible():
            empty.update(f"no chart matches the filter '{self.filter_text}' ({len(self.charts)} charts): "
                         f"/ edits it, esc clears it")
            empty.display = True
        else:
            empty.display = False

    def _matches(self, chart: MetricChart) -> bool:
        words = self.filter_text.lower().split()
        loss = ["loss"] if chart.key.startswith("L_") else []        # the placeholder's example finds the losses
        hay = " ".join([chart.key, chart.title, *chart.series, *loss]).lower()
        return all(w in hay for w in words)

    def visible(self) -> list[MetricChart]:
        return [c for c in self.charts.values() if c.display]
