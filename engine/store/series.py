"""What the front ends read of a run's logs: metric series (incremental, bucketed to a chart's width, the newest
rows), GPU samples, events, grids and evaluation rows, and the comparisons of several runs (last and best values,
NLL, the throughput earlier runs measured).

Each whole-series query is answered from an index (tests/tui/test_tui_store_reads.py checks the plans), so opening a
run with a million metric rows reads about a thousand rows per series. Reads that must agree take `max_id`, the
metric cursor read first, so rows written meanwhile are left to the next incremental read, never counted twice.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

from difftui.engine.store.connection import decode_rows, decode_value

__all__ = ["SeriesReads"]

_MAX_ID = 2**63 - 1
_FLOAT_MAX = 1.7976931348623157e308
# A finite value: numeric and within the float range (NULL, text and +-inf all compare false).
_FINITE = "value BETWEEN -1.7976931348623157e308 AND 1.7976931348623157e308"


def _nonfinite(value: Any) -> float:
    """A stored non-finite value as a float: NULL (how SQLite keeps a bound NaN) and unreadable text are NaN."""
    if value is None:
        return float("nan")
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


class SeriesReads:
    """Reads of metrics, gpu, events, samples and evals (a mixin of `Store`)."""

    #------------------------------------------------------------------------
    # Incremental reads (TUI workers).

    def metrics_since(self, run_id: int, last_id: int = 0, names: Iterable[str] | None = None
                      ) -> list[dict[str, Any]]:
        if names:
            names = list(names)
            marks = ",".join("?" * len(names))
            return decode_rows(self._rows(f"SELECT id, step, kimg, name, value, time FROM metrics WHERE run_id = ?"
                                      f" AND id > ? AND name IN ({marks}) ORDER BY id", [run_id, last_id, *names]),
                           "value")
        return decode_rows(self._rows("SELECT id, step, kimg, name, value, time FROM metrics WHERE run_id = ? AND id > ?"
                                  " ORDER BY id", [run_id, last_id]), "value")

    def metric_names(self, run_id: int) -> list[str]:
        return [r["name"] for r in self._rows("SELECT DISTINCT name FROM metrics WHERE run_id = ? ORDER BY name",
                                              [run_id])]

    def series(self, run_id: int, name: str) -> list[tuple[int, float]]:
        return [(r["step"], decode_value(r["value"])) for r in self._rows(
            "SELECT step, value FROM metrics WHERE run_id = ? AND name = ? ORDER BY step, id", [run_id, name])]

    def gpu_since(self, run_id: int, last_id: int = 0) -> list[dict[str, Any]]:
        return decode_rows(self._rows("SELECT * FROM gpu WHERE run_id = ? AND id > ? ORDER BY id", [run_id, last_id]),
                       "util", "mem_used", "mem_total", "temperature", "power")

    def events_since(self, run_id: int, last_id: int = 0) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM events WHERE run_id = ? AND id > ? ORDER BY id", [run_id, last_id])

    def samples_index(self, run_id: int, kind: str = "grid") -> list[dict[str, Any]]:
        """Sample rows without their PNG bytes (for a scrubber)."""
        return self._rows("SELECT id, step, kind, sampler, nfe, path, time FROM samples WHERE run_id = ? AND kind = ?"
                          " ORDER BY step, id", [run_id, kind])

    def sample_png(self, sample_id: int) -> bytes | None:
        rows = self._rows("SELECT png FROM samples WHERE id = ?", [sample_id])
        return rows[0]["png"] if rows else None

    def evals_for(self, run_id: int) -> list[dict[str, Any]]:
        return decode_rows(self._rows("SELECT * FROM evals WHERE run_id = ? ORDER BY step, id", [run_id]), "value")

    def latest_values(self, run_id: int) -> dict[str, float]:
        rows = self._rows("""SELECT m.name, m.value FROM metrics m
                             JOIN (SELECT name, MAX(id) AS id FROM metrics WHERE run_id = ? GROUP BY name) l
                             ON m.id = l.id""", [run_id])
        return {r["name"]: decode_value(r["value"]) for r in rows}



    #------------------------------------------------------------------------
    # Several runs (compare, sweeps).

    def last_and_best(self, run_ids: Iterable[int], names: Iterable[str]) -> dict[int, dict[str, tuple]]:
        """{run_id: {name: (last value, best (lowest finite) value, step of the last)}} for the given metrics."""
        run_ids, names = list(run_ids), list(names)
        if not run_ids or not names:
            return {}
        rm, nm = ",".join("?" * len(run_ids)), ",".join("?" * len(names))
        out: dict[int, dict[str, tuple]] = {r: {} for r in run_ids}
        last = self._rows(f"""SELECT m.run_id, m.name, m.value, m.step FROM metrics m JOIN (
                                SELECT MAX(id) AS id FROM metrics WHERE run_id IN ({rm}) AND name IN ({nm})
                                GROUP BY run_id, name) l ON m.id = l.id""", [*run_ids, *names])
        best = self._rows(f"""SELECT run_id, name, MIN(value) AS value FROM metrics WHERE run_id IN ({rm})
                              AND name IN ({nm}) AND typeof(value) IN ('real', 'integer') GROUP BY run_id, name""",
                          [*run_ids, *names])
        best_of = {(r["run_id"], r["name"]): r["value"] for r in best}
        for r in last:
            out[r["run_id"]][r["name"]] = (decode_value(r["value"]), best_of.get((r["run_id"], r["name"]), math.nan),
                                           r["step"])
        return out

    def latest_nll(self, run_ids: Iterable[int]) -> dict[int, tuple[int, float]]:
        """{run_id: (step, lowest NLL in bits/dim over the panel's samplers)} at each run's latest evaluated step."""
        run_ids = list(run_ids)
        if not run_ids:
            return {}
        rm = ",".join("?" * len(run_ids))
        rows = decode_rows(self._rows(f"""SELECT e.run_id, e.step, e.value FROM evals e JOIN (
                                        SELECT run_id, MAX(step) AS step FROM evals WHERE metric = 'nll_bpd'
                                        AND run_id IN ({rm}) GROUP BY run_id) l
                                      ON e.run_id = l.run_id AND e.step = l.step WHERE e.metric = 'nll_bpd'""",
                                  run_ids), "value")
        out: dict[int, tuple[int, float]] = {}
        for r in rows:
            prev = out.get(r["run_id"])
            v = r["value"] if r["value"] is not None else math.nan
            if prev is None or (v == v and not prev[1] <= v):
                out[r["run_id"]] = (r["step"], v)
        return out

    def metrics_since_many(self, run_ids: Iterable[int], names: Iterable[str], last_id: int = 0
                           ) -> list[dict[str, Any]]:
        """New metric rows of several runs (overlaid charts), oldest first."""
        run_ids, names = list(run_ids), list(names)
        if not run_ids or not names:
            return []
        rm, nm = ",".join("?" * len(run_ids)), ",".join("?" * len(names))
        return decode_rows(self._rows(f"SELECT id, run_id, step, kimg, name, value FROM metrics WHERE run_id IN ({rm})"
                                  f" AND name IN ({nm}) AND id > ? ORDER BY id", [*run_ids, *names, last_id]), "value")

    def throughput_samples(self, backbone: str, dataset: str, *, runs: int = 20, per_run: int = 50
                           ) -> list[dict[str, Any]]:
        """Earlier runs of this backbone preset on this data set that logged img/s, newest first: each with its
        config, device and its last `per_run` img/s values (the estimate matches and summarises them)."""
        out = []
        for run in self._rows("SELECT r.id, r.config, r.device FROM runs r WHERE r.backbone = ? AND r.dataset = ?"
                              " AND EXISTS (SELECT 1 FROM metrics m WHERE m.run_id = r.id AND m.name = 'img_per_s')"
                              " ORDER BY r.id DESC LIMIT ?", [backbone, dataset, runs]):
            values = [decode_value(r["value"]) for r in self._rows(
                "SELECT value FROM metrics WHERE run_id = ? AND name = 'img_per_s' ORDER BY id DESC LIMIT ?",
                [run["id"], per_run])]
            run["img_per_s"] = [v for v in values if v is not None and math.isfinite(v) and v > 0]
            out.append(run)
        return out


    #------------------------------------------------------------------------
    # Whole series for the charts.

    def metric_cursor(self, run_id: int) -> int:
        """The newest metric row id of a run (0 when it has none)."""
        rows = self._rows("SELECT MAX(id) AS id FROM metrics WHERE run_id = ?", [run_id])
        return int(rows[0]["id"] or 0)

    def series_names(self, run_id: int) -> list[str]:
        """The metric names of a run, sorted; a skip-scan of the index (one seek per name, not one per row)."""
        return [r["name"] for r in self._named(
            """WITH RECURSIVE n(name) AS (
                   SELECT (SELECT MIN(name) FROM metrics WHERE run_id = :run)
                   UNION ALL
                   SELECT (SELECT MIN(name) FROM metrics WHERE run_id = :run AND name > n.name)
                   FROM n WHERE n.name IS NOT NULL)
               SELECT name FROM n WHERE name IS NOT NULL""", {"run": run_id})]

    def series_tail(self, run_id: int, name: str, count: int = 1, max_id: int | None = None) -> list[dict[str, Any]]:
        """The last `count` rows (id, step, value) of one series, newest first."""
        return self._rows("SELECT id, step, value FROM metrics WHERE run_id = ? AND name = ? AND +id <= ?"
                          " ORDER BY step DESC, id DESC LIMIT ?", [run_id, name, _MAX_ID if max_id is None else max_id,
                                                                   count])

    def series_buckets(self, run_id: int, name: str, capacity: int = 1024,
                       max_id: int | None = None) -> tuple[int, list[dict[str, Any]]]:
        """One series in at most `capacity` step buckets: `(width, rows)`, width the smallest power of two with
        max_step // width < capacity; each row is bucket `b` (steps b*width .. (b+1)*width - 1) with `n` rows,
        `n_finite`, `lo`, `hi`, `total` (sum of finite values), `step_total` (sum of their steps), `first_step`,
        `last_step`, and the non-finite counts `n_nan`, `n_pinf`, `n_ninf`. NaN is read as SQL NULL or the text
        'nan', inf as a REAL infinity or the text 'inf' / '-inf' (however the engine stored it)."""
        max_id = _MAX_ID if max_id is None else max_id
        top = self._rows("SELECT MAX(step) AS s FROM metrics WHERE run_id = ? AND name = ? AND +id <= ?",
                         [run_id, name, max_id])[0]["s"]
        if top is None:
            return 1, []
        width = 1
        while top // width >= capacity:
            width *= 2
        params = {"w": width, "run": run_id, "name": name, "max_id": max_id}
        # One plain aggregate over every row (a CASE per column would cost three times as much). A bucket whose
        # minimum, maximum and sum are finite numbers and that has no NULL holds finite values only (text sorts above
        # every number, a NaN is stored as NULL, an infinity makes the sum infinite); the few others (a run that
        # diverged) are read again exactly: their finite rows, then their non-finite ones grouped by value.
        rows = self._named(
            """SELECT step / :w AS b, COUNT(*) AS n, COUNT(value) AS n_value, MIN(value) AS lo, MAX(value) AS hi,
                   TOTAL(value) AS total, TOTAL(step) AS step_total, MIN(step) AS first_step, MAX(step) AS last_step
               FROM metrics WHERE run_id = :run AND name = :name AND +id <= :max_id GROUP BY b""", params)
        clean = [r for r in rows if r["n"] == r["n_value"] and all(
            isinstance(r[k], float | int) and abs(r[k]) <= _FLOAT_MAX for k in ("lo", "hi", "total"))]
        odd_keys = {r["b"] for r in rows} - {r["b"] for r in clean}
        for r in clean:
            r["n_finite"] = r.pop("n")
            del r["n_value"]
        rows, odd = clean, []
        for b in sorted(odd_keys):
            span = {**params, "lo": b * width, "hi": (b + 1) * width}
            rows += self._named(
                f"""SELECT step / :w AS b, COUNT(*) AS n_finite, MIN(value) AS lo, MAX(value) AS hi,
                        TOTAL(value) AS total, TOTAL(step) AS step_total, MIN(step) AS first_step,
                        MAX(step) AS last_step
                    FROM metrics WHERE run_id = :run AND name = :name AND step >= :lo AND step < :hi
                    AND +id <= :max_id AND {_FINITE} GROUP BY b""", span)
            odd += self._named(
                f"""SELECT step / :w AS b, value, COUNT(*) AS n, MIN(step) AS first_step, MAX(step) AS last_step
                    FROM metrics WHERE run_id = :run AND name = :name AND step >= :lo AND step < :hi
                    AND +id <= :max_id AND ({_FINITE}) IS NOT 1 GROUP BY b, value""", span)
        buckets = {r["b"]: {**r, "n_nan": 0, "n_pinf": 0, "n_ninf": 0} for r in rows}
        for r in odd:
            b = buckets.setdefault(r["b"], {"b": r["b"], "n_finite": 0, "lo": None, "hi": None, "total": 0.0,
                                            "step_total": 0.0, "first_step": r["first_step"],
                                            "last_step": r["last_step"], "n_nan": 0, "n_pinf": 0, "n_ninf": 0})
            b["first_step"] = min(b["first_step"], r["first_step"])
            b["last_step"] = max(b["last_step"], r["last_step"])
            value = _nonfinite(r["value"])
            key = "n_nan" if value != value else "n_pinf" if value > 0 else "n_ninf"
            b[key] += r["n"]
        out = [buckets[k] for k in sorted(buckets)]
        for b in out:
            b["n"] = b["n_finite"] + b["n_nan"] + b["n_pinf"] + b["n_ninf"]
        return width, out

    def evals_since(self, run_id: int, last_id: int = 0) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM evals WHERE run_id = ? AND id > ? ORDER BY id", [run_id, last_id])

    def gpu_recent(self, run_id: int, limit: int) -> list[dict[str, Any]]:
        """The newest `limit` gpu rows of a run, oldest first (a panel's history window, not the whole run)."""
        return self._rows("SELECT * FROM (SELECT * FROM gpu WHERE run_id = ? ORDER BY id DESC LIMIT ?) ORDER BY id",
                          [run_id, limit])

    def samples_since(self, run_id: int, last_id: int = 0, kind: str = "grid") -> list[dict[str, Any]]:
        """Sample rows of one kind added after `last_id`, without their PNG bytes."""
        return self._rows("SELECT id, step, kind, sampler, nfe, path, time FROM samples WHERE run_id = ? AND id > ?"
                          " AND kind = ? ORDER BY id", [run_id, last_id, kind])
