"""The dashboard's series: bucketed in SQL or merged row by row they are the same; smoothing is TensorBoard's debiased
EMA (checked against its closed form); NaN and inf are counted, drawn as gaps and spelled out, never a crash; the
store's series reads are answered from the covering index."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from difftui.engine.numbers import format_number
from difftui.engine.store import Store
from difftui.tui.metric_series import BucketSeries, as_value, debiased_ema, family_of


def _config():
    return {"dataset": {"name": "digits"}, "backbone": {"name": "unet-demo"}, "sampler": {"name": "ddim"},
            "recipe": {"name": "p1-default"}}


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "runs.db") as s:
        yield s


def _write(store: Store, run_id: int, rows: list[tuple[int, str, object]]) -> None:
    store.write_batch(run_id, metrics=[(step, 0.0, name, value, 0.0) for step, name, value in rows])


#----------------------------------------------------------------------------
# Bucketing.

def test_sql_buckets_equal_the_same_rows_merged_one_by_one(store):
    rng = random.Random(3)
    run = store.create_run(_config(), name="a", total_steps=1)
    other = store.create_run(_config(), name="b", total_steps=1)
    steps = sorted(rng.sample(range(1, 50_000), 3000))
    values = [rng.gauss(0, 1) for _ in steps]
    _write(store, run, [(s, "L_simple", v) for s, v in zip(steps, values, strict=False)])
    _write(store, other, [(s, "L_simple", 100.0) for s in steps[:50]])          # another run's rows stay out
    width, rows = store.series_buckets(run, "L_simple", capacity=64)
    from_sql = BucketSeries.from_buckets(width, rows, None, capacity=64)
    from_rows = BucketSeries.from_points(zip(steps, values, strict=False), capacity=64)
    assert from_sql.width == from_rows.width == width
    assert width == 1024                                  # the smallest power of two with 49,999 // w < 64
    assert sorted(from_sql.buckets) == sorted(from_rows.buckets)
    for key, b in from_sql.buckets.items():
        r = from_rows.buckets[key]
        assert (b.n_finite, b.first_step, b.last_step) == (r.n_finite, r.first_step, r.last_step)
        assert b.lo == r.lo and b.hi == r.hi
        assert b.total == pytest.approx(r.total, abs=1e-9) and b.step_total == r.step_total
    # Exact against numpy over the raw rows of one bucket.
    key = sorted(from_sql.buckets)[5]
    inside = np.array([v for s, v in zip(steps, values, strict=False) if s // width == key])
    assert from_sql.buckets[key].mean == pytest.approx(inside.mean())
    assert from_sql.buckets[key].lo == inside.min() and from_sql.buckets[key].hi == inside.max()
    assert from_sql.lo == min(values) and from_sql.hi == max(values)


def test_a_series_stays_bounded_and_keeps_its_spikes(store):
    series = BucketSeries(capacity=128)
    for step in range(1, 200_001):
        series.add(step, 5.0 if step == 123_457 else math.sin(step / 1000))
    assert len(series.buckets) <= 128 and len(series) == 200_000
    points = series.points(60)
    assert len(points) <= 60
    assert max(p.hi for p in points) == 5.0                 # the spike survives two reductions
    assert [p.step for p in points] == sorted(p.step for p in points)


def test_a_step_that_goes_back_is_refused_so_the_run_is_read_again():
    series = BucketSeries.from_points([(10, 1.0), (20, 0.5)])
    assert series.add(20, 0.4) is False and series.add(15, 0.4) is False
    assert series.last_step == 20 and series.last == 0.5 and len(series) == 2


def test_non_finite_values_are_counted_shown_and_are_gaps(store):
    run = store.create_run(_config(), name="a", total_steps=1)
    _write(store, run, [(1, "L_simple", 1.0), (2, "L_simple", float("nan")), (3, "L_simple", float("inf")),
                        (4, "L_simple", 0.5)])
    # However the engine stores them: SQLite keeps a bound NaN as NULL, and text is possible too.
    store.db.execute("INSERT INTO metrics (run_id, step, kimg, name, value, time) VALUES (?, 5, 0, 'L_simple', 'nan', 0)",
                     [run])
    store.db.execute("INSERT INTO metrics (run_id, step, kimg, name, value, time) VALUES (?, 6, 0, 'L_simple', '-inf', 0)",
                     [run])
    width, rows = store.series_buckets(run, "L_simple")
    assert width == 1
    by_step = {r["first_step"]: r for r in rows}
    assert (by_step[2]["n_nan"], by_step[3]["n_pinf"], by_step[5]["n_nan"], by_step[6]["n_ninf"]) == (1, 1, 1, 1)
    assert by_step[1]["n_finite"] == 1 and by_step[2]["n_finite"] == 0
    tail = store.series_tail(run, "L_simple")[0]
    series = BucketSeries.from_buckets(width, rows, (tail["step"], tail["value"]))
    assert series.last == -math.inf and format_number(series.last) == "-inf"
    assert series.lo == 0.5 and series.hi == 1.0
    points = series.points(100)
    assert [p.marker for p in points] == ["", "nan", "inf", "", "nan", "-inf"]
    assert math.isnan(points[1].mean)
    assert math.isnan(as_value(None)) and math.isnan(as_value("nan")) and math.isnan(as_value("garbage"))
    assert (as_value("inf"), as_value("-inf"), as_value(2)) == (math.inf, -math.inf, 2.0)


#----------------------------------------------------------------------------
# Smoothing (TensorBoard's).

def test_debiased_ema_matches_its_closed_form():
    w = 0.6
    a, b, c = 2.0, 1.0, 4.0
    out = debiased_ema([a, b, c], w)
    # EMA_n = (1-w) sum_k w^(n-k) y_k, divided by 1 - w^n.
    assert out[0] == pytest.approx(a)                                   # no pull towards zero at the start
    assert out[1] == pytest.approx((w * a + b) / (1 + w))
    assert out[2] == pytest.approx((w * w * a + w * b + c) / (1 + w + w * w))
    # A non-finite value passes through and does not enter the average.
    out = debiased_ema([a, float("nan"), b], w)
    assert math.isnan(out[1]) and out[2] == pytest.approx((w * a + b) / (1 + w))
    assert debiased_ema([3.0, 3.0, 3.0], 0.9) == [3.0, 3.0, 3.0]        # constant: unchanged
    assert debiased_ema([1.0, 2.0], 0.0) == [1.0, 2.0]                  # weight 0: raw


def test_families_one_chart_per_loss_and_hidden_constants():
    assert family_of("L_simple")[0] != family_of("L_vlb")[0]            # own axes: L_vlb ~900 vs L_simple ~0.4
    assert family_of("gflops_fwd") is None and family_of("flops_target") is None
    assert family_of("some_new_metric") == ("some_new_metric", "some_new_metric")


def test_the_legends_number_spells_out_and_keeps_thousands_readable():
    assert [format_number(v) for v in (None, float("nan"), float("inf"), -float("inf"))] == ["-", "NaN", "inf", "-inf"]
    assert format_number(1006.2, 3) == "1,006" and format_number(0.000123, 3) == "0.000123"


#----------------------------------------------------------------------------
# The store's read plans.

def _plan(store: Store, sql: str, params) -> str:
    return " | ".join(r[3] for r in store.db.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall())


def test_series_reads_use_the_covering_index(store):
    run = store.create_run(_config(), name="a", total_steps=1)
    _write(store, run, [(s, "L_simple", 0.1) for s in range(1, 50)])
    from difftui.engine.store import series as store_module
    plan = _plan(store, f"SELECT step / 4 AS b, COUNT(*), MIN(value) FROM metrics WHERE run_id = ? AND name = ?"
                        f" AND +id <= ? AND {store_module._FINITE} GROUP BY b", [run, "L_simple", 10**9])
    assert "COVERING INDEX metrics_series" in plan
    assert "COVERING INDEX" in _plan(store, "SELECT MAX(id) FROM metrics WHERE run_id = ?", [run])
    assert store.series_names(run) == ["L_simple"] and store.metric_cursor(run) == 49
    # Rows after the cursor are left to the next incremental read.
    _write(store, run, [(60, "L_simple", 9.0)])
    width, rows = store.series_buckets(run, "L_simple", max_id=49)
    assert sum(r["n"] for r in rows) == 49 and store.series_tail(run, "L_simple", 1, 49)[0]["step"] == 49
