"""What the rules may read of one run, through the `Store` API only (no SQL here), each read bounded and done once.

    cfg("recipe.loss")        a key of the run's resolved config (a JSON dict)
    names                     the run's metric names (a skip-scan of the index)
    tail(name)                the newest TAIL_ROWS logged values of a series, oldest first
    overview(name)            the whole series in at most OVERVIEW_BUCKETS step buckets (an indexed aggregate)
    evals(kind)               evaluation rows (FID, NLL, curve, panel, consistency), protocol decoded
    grids(n)                  the newest n grids' statistics (metric rows logged with each grid)
    gpu                       the newest GPU_ROWS GPU samples
    quality()                 the data check's cached table of the run's data set (never computed here)
    preset(kind, name)        the preset a run was made from, as the catalog holds it now

Reads are bounded (tails, buckets, the newest GPU rows), so judging a run costs about the same at a thousand metric
rows as at a million (bench/doctor.py). No torch.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from difftui.engine.doctor.thresholds import GPU_ROWS, OVERVIEW_BUCKETS, TAIL_ROWS
from difftui.engine.eval.diagnostics import GRID_METRICS
from difftui.engine.store import decode_value

__all__ = ["RunView", "Series", "Overview"]


@dataclass(frozen=True)
class Series:
    steps: np.ndarray                               # int64, ascending
    values: np.ndarray                              # float64 (NaN and inf as logged)

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def span(self) -> tuple[int, int] | None:
        return (int(self.steps[0]), int(self.steps[-1])) if len(self.steps) else None

    def after(self, step: int) -> "Series":
        keep = self.steps >= step
        return Series(self.steps[keep], self.values[keep])

    def last(self, n: int) -> "Series":
        return Series(self.steps[-n:], self.values[-n:])


@dataclass(frozen=True)
class Overview:
    """A series in step buckets: each bucket's first and last step, mean of its finite values, row count and
    non-finite count."""
    first: np.ndarray
    last: np.ndarray
    mean: np.ndarray
    rows: np.ndarray
    nonfinite: np.ndarray
    total: float                                    # sum of every finite value of the series

    def __len__(self) -> int:
        return len(self.first)

    @property
    def span(self) -> tuple[int, int] | None:
        return (int(self.first[0]), int(self.last[-1])) if len(self.first) else None


class RunView:
    def __init__(self, store: Any, run_id: int, run: dict[str, Any] | None = None, preset_dirs: tuple = ()):
        self.store = store
        self.preset_dirs = tuple(preset_dirs)       # user preset folders (--presets), after $DIFFTUI_PRESETS
        self.run_id = run_id
        self.run = run if run is not None else store.get_run(run_id)
        if self.run is None:
            from difftui.engine.store import StoreError
            raise StoreError(f"{store.path}: no run {run_id}")
        self.config: dict[str, Any] = json.loads(self.run["config"])
        self._tails: dict[str, Series] = {}
        self._overviews: dict[str, Overview] = {}
        self._evals: list[dict[str, Any]] | None = None
        self._quality: Any = ()
        self._presets: dict[tuple[str, str], Any] = {}

    # -- the run and its config ---------------------------------------------------------------------------------

    def cfg(self, dotted: str, default: Any = None) -> Any:
        node: Any = self.config
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    @property
    def step(self) -> int:
        return int(self.run["step"] or 0)

    @property
    def first_step(self) -> int:
        """The step this run's own training began at: a fork's step (its metrics start there), else 0."""
        return int(self.run.get("fork_step") or 0)

    def early_end(self, fraction: float) -> int:
        """The first step past the early `fraction` of this run's own training (a fork's counted from its step)."""
        return self.first_step + math.ceil(fraction * max(self.step - self.first_step, 0))

    @property
    def device(self) -> str:
        return str(self.run.get("device") or self.cfg("device", "") or "")

    @property
    def on_gpu(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def precision(self) -> str:
        """The precision the run trained in: recipe.precision, with 'auto' resolved as the engine does (bf16
        autocast on a CUDA device, fp32 on the CPU; engine/run/device.resolve_precision)."""
        p = self.cfg("recipe.precision", "auto")
        if p == "auto":
            return "bf16" if self.on_gpu else "fp32"
        return p

    @property
    def loss_name(self) -> str:
        """The training loss every objective logs: L_edm for the EDM loss, else L_simple."""
        return "L_edm" if self.cfg("recipe.loss") == "edm" else "L_simple"

    @property
    def images_per_value(self) -> float:
        """Images behind one logged interval mean: batch_size * log_every (engine/run/meter.py)."""
        return float(self.cfg("recipe.batch_size", 1)) * float(self.cfg("recipe.log_every", 1))

    # -- metric series --------------------------------------------------------------------------------------------

    @cached_property
    def names(self) -> frozenset[str]:
        return frozenset(self.store.series_names(self.run_id))

    def tail(self, name: str, n: int = TAIL_ROWS) -> Series:
        """The newest `n` logged values of `name`, oldest first (an empty Series when it was never logged)."""
        key = f"{name}\0{n}"
        if key not in self._tails:
            rows = self.store.series_tail(self.run_id, name, n) if name in self.names else []
            rows.reverse()
            self._tails[key] = Series(np.array([r["step"] for r in rows], dtype=np.int64),
                                      np.array([_float(r["value"]) for r in rows], dtype=np.float64))
        return self._tails[key]

    def overview(self, name: str) -> Overview:
        if name not in self._overviews:
            buckets = self.store.series_buckets(self.run_id, name, OVERVIEW_BUCKETS)[1] if name in self.names else []
            self._overviews[name] = Overview(
                first=np.array([b["first_step"] for b in buckets], dtype=np.int64),
                last=np.array([b["last_step"] for b in buckets], dtype=np.int64),
                mean=np.array([b["total"] / b["n_finite"] if b["n_finite"] else math.nan for b in buckets],
                              dtype=np.float64),
                rows=np.array([b["n"] for b in buckets], dtype=np.int64),
                nonfinite=np.array([b["n"] - b["n_finite"] for b in buckets], dtype=np.int64),
                total=float(sum(b["total"] for b in buckets)))
        return self._overviews[name]

    # -- evaluations, images, GPU samples -------------------------------------------------------------------------

    def evals(self, kind: str | None = None) -> list[dict[str, Any]]:
        if self._evals is None:
            self._evals = self.store.eval_results(self.run_id)
        return [r for r in self._evals if kind is None or r.get("kind") == kind]

    def eval_series(self, kind: str, metric: str, *, by_snapshot: bool = False
                    ) -> list[list[tuple[int, float, dict[str, Any]]]]:
        """The `metric` rows of evaluation `kind`, one list per protocol (sampler, NFE, sample count), each a list of
        (step, value, row) in step order with the newest row of each step (or of each snapshot); longest first."""
        groups: dict[tuple, dict[int, tuple[int, float, dict[str, Any]]]] = {}
        for r in self.evals(kind):
            if r["metric"] != metric:
                continue
            at = r.get("snapshot") if by_snapshot else r["step"]
            if at is None:
                continue
            groups.setdefault((r.get("sampler"), r.get("nfe"), r.get("samples")), {})[int(at)] = (
                int(at), float(r["value"]), r)
        out = [sorted(g.values(), key=lambda x: x[0]) for g in groups.values()]
        return sorted(out, key=len, reverse=True)

    def grids(self, n: int = 2) -> list[tuple[int, dict[str, float]]]:
        """The newest `n` grids' statistics (metric rows GRID_METRICS, engine/eval/diagnostics.py), oldest first:
        (step, {metric: value})."""
        by_step: dict[int, dict[str, float]] = {}
        for name in GRID_METRICS:
            s = self.tail(name, n)
            for step, value in zip(s.steps.tolist(), s.values.tolist(), strict=True):
                by_step.setdefault(int(step), {})[name] = float(value)
        return sorted(by_step.items())[-n:]

    def loss_level_at(self, step: int, name: str | None = None) -> float:
        """The training loss's level around `step`: the median of the overview's bucket means within 2.5% of the
        run's span on either side (at least the nearest bucket)."""
        o = self.overview(name or self.loss_name)
        if not len(o):
            return math.nan
        half = 0.025 * max(int(o.last[-1]) - int(o.first[0]), 1)
        near = (o.last >= step - half) & (o.first <= step + half) & np.isfinite(o.mean)
        if not near.any():
            mid = (o.first + o.last) / 2
            ok = np.isfinite(o.mean)
            if not ok.any():
                return math.nan
            return float(o.mean[ok][np.argmin(np.abs(mid[ok] - step))])
        return float(np.median(o.mean[near]))

    @cached_property
    def gpu(self) -> list[dict[str, Any]]:
        return self.store.gpu_recent(self.run_id, GPU_ROWS)

    # -- outside runs.db: the data check's cache and the presets ------------------------------------------------

    def quality(self) -> dict[str, Any] | None:
        """The data check's cached table of this run's data set (engine/data/quality.py), None when the data set
        was never checked (or its files are gone). Never computes it."""
        if self._quality == ():
            self._quality = None
            try:
                from difftui.engine.config.model import DatasetProfile, from_mapping
                from difftui.engine.data.cache import cache_root
                profile = from_mapping(DatasetProfile, self.config["dataset"], f"run {self.run_id} dataset")
                # No table of this data set at all (the usual case): say so without keying its contents, which
                # for some array data sets imports their loaders (engine/data/imagenet64.py imports torch).
                if any((cache_root(profile) / "quality").glob(f"{profile.name}-*.json")):
                    from difftui.engine.data.quality import cached_quality
                    self._quality = cached_quality(profile)
            except Exception:                       # a data set this machine cannot see: nothing to read
                self._quality = None
        return self._quality

    def preset(self, kind: str, name: str | None) -> Any:
        """The preset `name` of `kind` ("recipes", "backbones") as the catalog holds it now; None when gone."""
        if not name:
            return None
        if (kind, name) not in self._presets:
            try:
                from difftui.engine.config.catalog import Catalog
                self._presets[(kind, name)] = Catalog(self.preset_dirs).get(kind, name)
            except Exception:                       # renamed, deleted or malformed: the rule says what it lacks
                self._presets[(kind, name)] = None
        return self._presets[(kind, name)]


def _float(value: Any) -> float:
    v = decode_value(value)
    return math.nan if v is None else float(v)
