"""Several runs side by side: their last and best losses, NLL when evaluated, the DyDiT FLOPs ratio, and the keys
of their resolved configs that differ. What `difftui compare`, the compare screen and the sweep view read."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable

from difftui.engine.store import ACTIVE_STATUSES, Store, StoreError
from difftui.engine.sweeps.spec import config_diff, flatten

__all__ = ["COMPARE_METRICS", "PARTIAL_MARK", "RunSummary", "summarise_runs", "compare_runs", "as_trained",
           "runs_config_diff"]

# The loss terms of playbook 3.1-3.4 (L_edm for P3 runs) and DyDiT's measured F_dynamic/F_static (playbook 3.5).
COMPARE_METRICS = ("L_simple", "L_vlb", "L_hybrid", "L_edm", "flops_ratio")
PARTIAL_MARK = "†"                                   # beside a value of a run that ended before its last step


@dataclass
class RunSummary:
    run: dict[str, Any]
    last: dict[str, float] = field(default_factory=dict)
    best: dict[str, float] = field(default_factory=dict)
    nll: tuple[int, float] | None = None            # (step, bits/dim) at the latest evaluation

    @property
    def partial(self) -> str | None:
        """How a run that ended before its last step ended, e.g. 'stopped at 37/150': its losses are partial values,
        not results (issue 16 item 7). None for a completed run and for one still queued or training."""
        r = self.run
        if r["status"] in ACTIVE_STATUSES or r["status"] == "completed":
            return None
        return f"{r['status']} at {r['step']}/{r['total_steps']}"

    @property
    def axis_values(self) -> dict[str, Any]:
        return json.loads(self.run.get("axis_values") or "{}")

    def setting(self, key: str) -> Any:
        """The run's value of a dotted config key: its sweep axis value, else its resolved config's (a run of
        another sweep, or of none, still has a dropout; issue 16 item 10). None when its config lacks the key."""
        values = self.axis_values
        if key in values:
            return values[key]
        return flatten(as_trained(self.run)).get(key)


def summarise_runs(store: Store, runs: Iterable[dict[str, Any]], names: Iterable[str] = COMPARE_METRICS
                   ) -> list[RunSummary]:
    runs = list(runs)
    ids = [r["id"] for r in runs]
    values = store.last_and_best(ids, names)
    nll = store.latest_nll(ids)
    out = []
    for run in runs:
        s = RunSummary(run, nll=nll.get(run["id"]))
        for name, (last, best, _step) in values.get(run["id"], {}).items():
            s.last[name] = last if last is not None else math.nan
            s.best[name] = best if best is not None else math.nan
        out.append(s)
    return out


def as_trained(run: dict[str, Any]) -> dict[str, Any]:
    """The run's resolved config, its `device` the one it trained on (the run row's, e.g. "cpu" for a run asked
    to pick `auto`), so that two runs on the same device never differ by how it was asked for."""
    config = json.loads(run["config"])
    if run.get("device"):
        config["device"] = run["device"]
    return config


def runs_config_diff(runs: Iterable[dict[str, Any]]) -> list[tuple[str, list[Any]]]:
    """The config keys that differ between runs, as they trained (`as_trained`): what compare shows, CLI and TUI."""
    return config_diff([as_trained(r) for r in runs])


def compare_runs(db_path, run_ids: list[int]) -> tuple[list[RunSummary], list[tuple[str, list[Any]]]]:
    """(one summary per run, in the order given; the config keys that differ with each run's value)."""
    if len(run_ids) < 2:
        raise StoreError("compare needs at least two runs")
    with Store(db_path, create=False) as store:
        runs = []
        for run_id in run_ids:
            run = store.get_run(run_id)
            if run is None:
                raise StoreError(f"{store.path}: no run {run_id}")
            runs.append(run)
        summaries = summarise_runs(store, runs)
    return summaries, runs_config_diff(runs)
