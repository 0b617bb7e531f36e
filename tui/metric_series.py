"""Metric series as the dashboard's charts hold them: a bounded number of step buckets, however long the run.

A series is a list of buckets of `width` steps each (`width` a power of two). The first poll reads them already
reduced by SQL (`Store.series_buckets`); later rows are merged one by one, and when the run outgrows `capacity`
buckets, neighbours are merged pairwise and the width doubles. Merging min / max / sum / count is exact, so a series
built from rows and one read from SQL are the same. A chart reduces the buckets once more to its own width
(`points`) and smooths what it draws with TensorBoard's debiased EMA (`debiased_ema`).

Non-finite values are data (DESIGN.md): a bucket counts its NaN, +inf and -inf rows apart from the finite ones; a
bucket with no finite value is a gap in the curve and a marker on the chart, never a zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

__all__ = ["Bucket", "BucketSeries", "Point", "as_value", "debiased_ema", "FAMILIES", "family_of",
           "eval_family", "family_order", "HIDDEN_METRICS", "CAPACITY", "DEFAULT_SMOOTHING"]

CAPACITY = 1024                      # buckets per series: wider than any chart draws (2 points per column)
DEFAULT_SMOOTHING = 0.6              # TensorBoard's default smoothing weight


def as_value(value: Any) -> float:
    """A stored metric value as a float: NULL (SQLite's NaN) and unreadable text are NaN; 'inf' / '-inf' text and
    REAL infinities are infinities."""
    if value is None:
        return math.nan
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


#----------------------------------------------------------------------------
# Buckets.

@dataclass
class Bucket:
    n_finite: int = 0
    lo: float = math.inf
    hi: float = -math.inf
    total: float = 0.0
    step_total: float = 0.0
    first_step: int = 0
    last_step: int = 0
    n_nan: int = 0
    n_pinf: int = 0
    n_ninf: int = 0

    @classmethod
    def of(cls, step: int, value: float) -> "Bucket":
        b = cls(first_step=step, last_step=step)
        b.add(step, value)
        return b

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Bucket":
        return cls(n_finite=int(row["n_finite"] or 0),
                   lo=math.inf if row["lo"] is None else float(row["lo"]),
                   hi=-math.inf if row["hi"] is None else float(row["hi"]),
                   total=float(row["total"] or 0.0), step_total=float(row["step_total"] or 0.0),
                   first_step=int(row["first_step"]), last_step=int(row["last_step"]),
                   n_nan=int(row["n_nan"]), n_pinf=int(row["n_pinf"]), n_ninf=int(row["n_ninf"]))

    def add(self, step: int, value: float) -> None:
        self.first_step = min(self.first_step, step)
        self.last_step = max(self.last_step, step)
        if math.isfinite(value):
            self.n_finite += 1
            self.lo = min(self.lo, value)
            self.hi = max(self.hi, value)
            self.total += value
            self.step_total += step
        elif math.isnan(value):
            self.n_nan += 1
        elif value > 0:
            self.n_pinf += 1
        else:
            self.n_ninf += 1

    def merge(self, other: "Bucket") -> "Bucket":
        return Bucket(n_finite=self.n_finite + other.n_finite, lo=min(self.lo, other.lo), hi=max(self.hi, other.hi),
                      total=self.total + other.total, step_total=self.step_total + other.step_total,
                      first_step=min(self.first_step, other.first_step),
                      last_step=max(self.last_step, other.last_step), n_nan=self.n_nan + other.n_nan,
                      n_pinf=self.n_pinf + other.n_pinf, n_ninf=self.n_ninf + other.n_ninf)

    @property
    def nonfinite(self) -> int:
        return self.n_nan + self.n_pinf + self.n_ninf

    @property
    def mean(self) -> float:
        return self.total / self.n_finite if self.n_finite else math.nan

    @property
    def step(self) -> float:
        """Where the bucket is drawn: the mean step of its finite values (its middle when it has none)."""
        if self.n_finite:
            return self.step_total / self.n_finite
        return (self.first_step + self.last_step) / 2


@dataclass(frozen=True)
class Point:
    """One drawn point: the mean of the finite values at `step`, their range, and what was not finite there."""
    step: float
    mean: float
    lo: float
    hi: float
    n_nan: int = 0
    n_pinf: int = 0
    n_ninf: int = 0

    @property
    def marker(self) -> str:
        """'nan', 'inf' or '-inf' when the point holds such a value ('' otherwise)."""
        return "nan" if self.n_nan else "inf" if self.n_pinf else "-inf" if self.n_ninf else ""


@dataclass
class BucketSeries:
    """One metric over steps, in at most `capacity` buckets of `width` steps; `last` is the newest raw value."""
    capacity: int = CAPACITY
    width: int = 1
    buckets: dict[int, Bucket] = field(default_factory=dict)
    last_step: int | None = None
    last: float | None = None

    @classmethod
    def from_buckets(cls, width: int, rows: Sequence[dict[str, Any]], last: tuple[int, Any] | None,
                     capacity: int = CAPACITY) -> "BucketSeries":
        """From `Store.series_buckets` rows and the newest row `(step, value)` (`Store.series_tail`)."""
        series = cls(capacity=capacity, width=width, buckets={int(r["b"]): Bucket.from_row(r) for r in rows})
        if last is not None:
            series.last_step, series.last = int(last[0]), as_value(last[1])
        elif series.buckets:
            series.last_step = max(b.last_step for b in series.buckets.values())
        return series

    @classmethod
    def from_points(cls, points: Iterable[tuple[int, Any]], capacity: int = CAPACITY) -> "BucketSeries":
        series = cls(capacity=capacity)
        for step, value in points:
            series.add(step, value)
        return series

    def __len__(self) -> int:
        return sum(b.n_finite + b.nonfinite for b in self.buckets.values())

    def add(self, step: int, value: Any) -> bool:
        """Append one row; False (and nothing changed) when `step` is not after the newest one: the run was rewound
        to a checkpoint, and the caller reads the series again."""
        step = int(step)
        if self.last_step is not None and step <= self.last_step:
            return False
        value = as_value(value)
        while step // self.width >= self.capacity:
            self._coarsen()
        key = step // self.width
        bucket = self.buckets.get(key)
        if bucket is None:
            self.buckets[key] = Bucket.of(step, value)
        else:
            bucket.add(step, value)
        self.last_step, self.last = step, value
        return True

    def _coarsen(self) -> None:
        """Double the width: buckets 2k and 2k+1 become bucket k."""
        merged: dict[int, Bucket] = {}
        for key in sorted(self.buckets):
            b = self.buckets[key]
            k = key // 2
            merged[k] = merged[k].merge(b) if k in merged else b
        self.buckets = merged
        self.width *= 2

    @property
    def lo(self) -> float | None:
        """The smallest finite value (None when there is none)."""
        values = [b.lo for b in self.buckets.values() if b.n_finite]
        return min(values) if values else None

    @property
    def hi(self) -> float | None:
        values = [b.hi for b in self.buckets.values() if b.n_finite]
        return max(values) if values else None

    def points(self, count: int) -> list[Point]:
        """At most `count` points, each merging consecutive buckets (in step order)."""
        keys = sorted(self.buckets)
        if not keys:
            return []
        count = max(int(count), 1)
        groups: list[Bucket] = []
        if len(keys) <= count:
            groups = [self.buckets[k] for k in keys]
        else:
            # Equal step spans (not equal bucket counts), so the x axis keeps its scale.
            first, last = keys[0], keys[-1]
            span = (last - first + 1) / count
            current: Bucket | None = None
            current_slot = -1
            for k in keys:
                slot = min(int((k - first) / span), count - 1)
                if slot != current_slot:
                    if current is not None:
                        groups.append(current)
                    current, current_slot = self.buckets[k], slot
                else:
                    current = current.merge(self.buckets[k])
            if current is not None:
                groups.append(current)
        return [Point(step=b.step, mean=b.mean, lo=b.lo if b.n_finite else math.nan,
                      hi=b.hi if b.n_finite else math.nan, n_nan=b.n_nan, n_pinf=b.n_pinf, n_ninf=b.n_ninf)
                for b in groups]


#----------------------------------------------------------------------------
# Smoothing.

def debiased_ema(values: Sequence[float], weight: float) -> list[float]:
    """TensorBoard's scalar smoothing: an EMA with weight `weight` on the previous value, divided by
    `1 - weight**n` so that the start is not pulled towards zero; non-finite values pass through unsmoothed and do
    not enter the average; a constant series is returned as it is."""
    if not values:
        return []
    if weight <= 0:
        return list(values)
    finite = [v for v in values if math.isfinite(v)]
    if finite and all(v == finite[0] for v in finite):
        return list(values)
    last = 0.0
    n = 0
    out = []
    for v in values:
        if not math.isfinite(v):
            out.append(v)
            continue
        last = last * weight + (1 - weight) * v
        n += 1
        debias = 1 - weight ** n if weight < 1 else 1.0
        out.append(last / debias)
    return out


#----------------------------------------------------------------------------
# Metric families: one chart each, with its own axis.

# (key, title, member metric names). The first member is the chart's main series; others share its axis.
FAMILIES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("L_simple", "L_simple", ("L_simple",)),
    ("L_vlb", "L_vlb (bits/dim)", ("L_vlb",)),
    ("L_hybrid", "L_hybrid", ("L_hybrid",)),
    ("L_edm", "L_edm", ("L_edm",)),
    ("L_ocm", "L_ocm", ("L_ocm",)),
    ("L_complete", "L_complete (DyDiT warm-up)", ("L_complete",)),
    ("loss", "loss", ("loss",)),
    ("flops_ratio", "F_dyn/F_static", ("flops_ratio",)),
    ("grad_norm", "grad norm", ("grad_norm",)),
    ("lr", "learning rate", ("lr",)),
    ("img_per_s", "img/s", ("img_per_s",)),
    ("tflops", "TFLOP/s (training)", ("tflops",)),
    ("mfu", "MFU", ("mfu",)),
    ("skipped_steps", "skipped steps", ("skipped_steps",)),
)
# Not curves: gflops_fwd is logged once (a figure in the FLOPs panel), flops_target is the constant lambda (a
# reference line on the F_dyn/F_static chart).
HIDDEN_METRICS = frozenset({"gflops_fwd", "flops_target"})
_MEMBER = {name: key for key, _, names in FAMILIES for name in names}
_TITLE = {key: title for key, title, _ in FAMILIES}
_ORDER = {key: i for i, (key, _, _) in enumerate(FAMILIES)}


def family_of(name: str) -> tuple[str, str] | None:
    """(chart key, title) of a training metric; an unknown metric gets a chart of its own; None when hidden."""
    if name in HIDDEN_METRICS:
        return None
    key = _MEMBER.get(name, name)
    return key, _TITLE.get(key, name)


def eval_family(metric: str) -> tuple[str, str]:
    """(chart key, title) of an evaluation metric (one line per sampler)."""
    return f"eval:{metric}", f"eval {metric}"


def family_order(key: str) -> tuple[int, str]:
    """Charts in FAMILIES order, then other training metrics, then evaluations, each alphabetical."""
    if key in _ORDER:
        return _ORDER[key], ""
    return (len(FAMILIES) + (1 if key.startswith("eval:") else 0), key)
