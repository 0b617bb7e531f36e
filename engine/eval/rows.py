"""Evaluation rows as the front ends show them (the dashboard's tables, `difftui show`, the report); no torch.

`evals` holds one row per number (metric, value) with its protocol. `group_evaluations` folds them into one record
per measured thing (job, kind, step, snapshot, sampler); `table_records` joins an evaluation's FID, precision,
recall and held-out NLL into one line of the evaluation table; `curve_records` keeps the newest few-step curve;
`format_metric` writes an evaluation number the one way every front end shows it.
"""

from __future__ import annotations

import math
from typing import Any

from difftui.engine.numbers import format_fixed, format_number

__all__ = ["BEST", "DECIMALS", "group_evaluations", "table_records", "curve_records", "best_values",
           "format_metric"]

BEST = {"fid": min, "precision": max, "recall": max, "nll_bpd": min}      # which end of each metric is better
# Decimals of each evaluation number, the same in the dashboard's tables, `difftui show`, the evaluator's result
# lines and the report, so that one FID reads alike everywhere and a column lines up on the point.
DECIMALS = {"fid": 3, "spread": 3, "precision": 3, "recall": 3, "nll_bpd": 4, "seconds": 1}


def format_metric(name: str, value: Any) -> str:
    """An evaluation number (`name` a key of DECIMALS: fixed decimals; another: engine/numbers.format_number);
    None is '-', NaN and inf are spelled out."""
    return format_fixed(value, DECIMALS[name]) if name in DECIMALS else format_number(value)


def group_evaluations(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of `Store.eval_results` -> one dict per (job, kind, step, snapshot, sampler), metrics as keys."""
    groups: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        key = (r.get("job_id"), r.get("kind"), r["step"], r.get("snapshot"), r.get("sampler"))
        g = groups.setdefault(key, {"job_id": r.get("job_id"), "kind": r.get("kind") or "panel", "step": r["step"],
                                    "snapshot": r.get("snapshot"), "sampler": r.get("sampler"), "nfe": r.get("nfe"),
                                    "protocol": r.get("protocol") or {}, "time": r.get("time"), "samples": None,
                                    "nll_images": None, "repeats": None, "spread": None})
        g[r["metric"]] = r["value"]
        if r["metric"] == "nll_bpd":
            g["nll_images"] = r.get("samples")
        elif r.get("samples") is not None:
            g["samples"] = r.get("samples")
        if r.get("repeats"):
            g["repeats"] = r["repeats"]
        if r.get("spread") is not None:
            g["spread"] = r["spread"]
    return list(groups.values())


def table_records(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per evaluation (job, step, snapshot): FID / precision / recall of its `fid` group and the NLL of
    its `nll` group; seconds summed. Oldest first."""
    out: dict[tuple, dict[str, Any]] = {}
    for g in groups:
        if g["kind"] not in ("fid", "nll"):
            continue
        key = (g["job_id"], g["step"], g["snapshot"])
        rec = out.setdefault(key, {"job_id": g["job_id"], "step": g["step"], "snapshot": g["snapshot"],
                                   "sampler": None, "nfe": None, "samples": None, "quick": False, "repeats": None,
                                   "spread": None, "fid": math.nan, "precision": math.nan, "recall": math.nan,
                                   "nll_bpd": math.nan, "nll_images": None, "nll_chain": None, "seconds": 0.0,
                                   "time": g["time"]})
        rec["seconds"] += g.get("seconds", 0.0) or 0.0
        if g["kind"] == "fid":
            rec.update(sampler=g["sampler"], nfe=g["nfe"], samples=g["samples"], repeats=g["repeats"],
                       spread=g["spread"], quick=bool(g["protocol"].get("quick")))
            for m in ("fid", "precision", "recall"):
                if m in g:
                    rec[m] = g[m]
        else:
            rec.update(nll_bpd=g.get("nll_bpd", math.nan), nll_images=g["nll_images"], nll_chain=g["sampler"])
    return sorted(out.values(), key=lambda r: (r["time"] or 0))


def curve_records(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The few-step curve of the newest evaluated step (per covariance and step count), in playbook order."""
    curve = [g for g in groups if g["kind"] == "curve"]
    if not curve:
        return []
    newest = max(g["time"] or 0 for g in curve)
    job = next(g["job_id"] for g in curve if (g["time"] or 0) == newest)
    rows = [g for g in curve if g["job_id"] == job]
    return sorted(rows, key=lambda g: (g["protocol"].get("variance", ""), g["protocol"].get("steps", 0)))


def best_values(records: list[dict[str, Any]], metrics=tuple(BEST)) -> dict[str, float]:
    """The best finite value of each metric over `records` (min FID/NLL, max precision/recall)."""
    best = {}
    for m in metrics:
        values = [r[m] for r in records if isinstance(r.get(m), (int, float)) and math.isfinite(r[m])]
        if values:
            best[m] = BEST[m](values)
    return best
