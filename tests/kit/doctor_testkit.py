"""Recorded runs for the doctor's tests: a config resolved from the real presets and runs.db rows written through the
Store API as the engine writes them (metrics as interval means every log_every steps, evals rows with a protocol,
GPU samples)."""

from __future__ import annotations

import math
import time
from typing import Any, Iterable

import numpy as np

from difftui.engine.config.catalog import Catalog, config_to_dict
from difftui.engine.doctor import diagnose
from difftui.engine.store import Store

__all__ = ["config", "record", "steps_of", "judge", "finding", "needs", "decaying", "with_cv"]


def config(*sets: str, dataset: str | None = None, backbone: str | None = None, sampler: str | None = None,
           recipe: str | None = None, device: str = "cpu", off_tier: bool = False) -> dict[str, Any]:
    """A resolved config (the real presets and `--set` overrides) as the dict a run stores."""
    return config_to_dict(Catalog().resolve(dataset=dataset, backbone=backbone, sampler=sampler, recipe=recipe,
                                            overrides=list(sets), device=device, off_tier=off_tier))


def steps_of(cfg: dict[str, Any], n: int, start: int = 0) -> list[int]:
    every = cfg["recipe"]["log_every"]
    return [start + every * (k + 1) for k in range(n)]


def record(store: Store, cfg: dict[str, Any], *, series: dict[str, Any] = (), evals: Iterable[dict] = (),
           gpu: Iterable[tuple] = (), grids: Iterable[tuple[int, dict]] = (), step: int | None = None,
           status: str = "completed", device: str = "cpu", name: str = "recorded") -> int:
    """A finished (or `status`) run with `series` {name: values at log_every steps, or (steps, values)}, evals rows
    (dicts for Store.add_eval_results), GPU rows (time, idx, util, mem_used, mem_total, temp, power, name) and grid
    statistics [(step, {grid_* metric: value})] logged as the engine logs them with each grid."""
    run_id = store.create_run(cfg, name=name, total_steps=cfg["recipe"]["total_steps"], device=device)
    batch = cfg["recipe"]["batch_size"]
    rows, last = [], 0
    for metric, data in dict(series).items():
        steps, values = data if isinstance(data, tuple) else (steps_of(cfg, len(data)), data)
        for s, v in zip(steps, values, strict=True):
            rows.append((int(s), s * batch / 1000, metric, float(v), time.time()))
            last = max(last, int(s))
    for s, numbers in grids:
        rows += [(int(s), s * batch / 1000, metric, float(v), time.time()) for metric, v in numbers.items()]
        last = max(last, int(s))
    store.write_batch(run_id, metrics=rows, gpu=list(gpu),
                      run_fields={"status": status, "step": step if step is not None else last,
                                  "ended": time.time() if status not in ("running", "queued") else None})
    evals = list(evals)
    if evals:
        store.add_eval_results(run_id, evals)
    return run_id


def judge(db, run_id: int):
    with Store(db, create=False) as store:
        return diagnose(store, run_id)


def finding(diagnosis, rule: str):
    found = [f for f in diagnosis.findings if f.rule == rule]
    return found[0] if found else None


def needs(diagnosis, rule: str):
    found = [n for n in diagnosis.needs if n.rule == rule]
    return found[0] if found else None


def decaying(n: int, start: float = 1.0, end: float = 0.1, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """A loss curve falling from `start` to about `end`, with relative Gaussian noise."""
    rng = np.random.default_rng(seed)
    k = np.arange(n)
    base = end + (start - end) * np.exp(-k / max(n / 6, 1))
    return base * (1 + noise * rng.standard_normal(n))


def with_cv(n: int, mean: float, cv: float, images: float, seed: int = 0) -> np.ndarray:
    """n interval means of `images` independent terms of mean `mean` and coefficient of variation `cv`."""
    rng = np.random.default_rng(seed)
    return mean + mean * cv / math.sqrt(images) * rng.standard_normal(n)
