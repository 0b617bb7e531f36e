"""How long a sweep will take, from the throughput that earlier runs of the same backbone measured on the same data.

The rate of a member is the median img/s logged by earlier runs in runs.db with the same backbone preset, the same
network (`backbone.arch`), the same data set and precision, on the same kind of device (cpu or cuda); where there is
none, the estimate says it is unknown rather than guessing. Members that share a device share its throughput (a
device running k members gives each 1/k of the measured rate); the wall time is then the finish time of the slots
filled in queue order as they free up, which is what the supervisor does.
"""

from __future__ import annotations

import heapq
import json
import statistics
from dataclasses import dataclass
from typing import Any

from difftui.engine.config.model import RunConfig
from difftui.engine.numbers import format_number
from difftui.engine.sweeps.slots import Slots

__all__ = ["Estimate", "Throughput", "measured_throughput", "estimate_sweep", "schedule_makespan"]


@dataclass(frozen=True)
class Throughput:
    img_per_s: float | None                         # median of the matching runs' recent img/s; None: unknown
    runs: int                                       # how many earlier runs matched
    what: str                                       # "unet-demo on digits (cpu)"

    def describe(self) -> str:
        if self.img_per_s is None:
            return f"unknown: no earlier run of {self.what} in runs.db"
        return (f"{format_number(self.img_per_s)} img/s (median of {self.runs} earlier run{'s' * (self.runs != 1)} of "
                f"{self.what})")


@dataclass(frozen=True)
class Estimate:
    runs: int
    total_steps: int
    total_kimg: float
    wall_s: float | None                            # None when a member's throughput is unknown
    throughput: list[Throughput]                    # one per distinct network in the sweep


def _device_kind(device: str | None) -> str:
    return "cuda" if (device or "").startswith("cuda") else "cpu"


def _signature(config: dict[str, Any]) -> str:
    return json.dumps([config["backbone"].get("arch"), config["dataset"].get("resolution"),
                       config["recipe"].get("precision", "fp32")], sort_keys=True, default=str)


def measured_throughput(store: Any, config: RunConfig, device_kind: str) -> Throughput:
    from difftui.engine.config.catalog import config_to_dict
    want = config_to_dict(config)
    what = f"{config.backbone.name} on {config.dataset.name} ({device_kind})"
    rates = []
    for run in store.throughput_samples(config.backbone.name, config.dataset.name):
        if _device_kind(run["device"]) != device_kind or not run["img_per_s"]:
            continue
        try:
            if _signature(json.loads(run["config"])) != _signature(want):
                continue
        except (KeyError, TypeError, ValueError):
            continue
        rates.append(statistics.median(run["img_per_s"]))
    if not rates:
        return Throughput(None, 0, what)
    return Throughput(statistics.median(rates), len(rates), what)


def schedule_makespan(durations: list[float], slots: int) -> float:
    """Finish time of jobs started in order on `slots` parallel slots, each on the first slot to free up."""
    free = [0.0] * max(1, slots)
    end = 0.0
    for d in durations:
        start = heapq.heappop(free)
        heapq.heappush(free, start + d)
        end = max(end, start + d)
    return end


def estimate_sweep(store: Any, configs: list[RunConfig], slots: Slots) -> Estimate:
    kind = "cpu" if slots.on_cpu else "cuda"
    cache: dict[str, Throughput] = {}
    durations: list[float | None] = []
    for config in configs:
        key = config.backbone.name + config.dataset.name + _signature(
            {"backbone": {"arch": config.backbone.arch}, "dataset": {"resolution": config.dataset.resolution},
             "recipe": {"precision": config.recipe.precision}})
        if key not in cache:
            cache[key] = measured_throughput(store, config, kind)
        rate = cache[key].img_per_s
        images = config.recipe.total_steps * config.recipe.batch_size
        # Members on one device share it: each of the k at once gets 1/k of the measured rate.
        durations.append(images / (rate / slots.runs_per_device) if rate else None)
    wall = None if any(d is None for d in durations) else schedule_makespan(durations, slots.count)
    return Estimate(runs=len(configs), total_steps=sum(c.recipe.total_steps for c in configs),
                    total_kimg=sum(c.recipe.total_steps * c.recipe.batch_size for c in configs) / 1000.0,
                    wall_s=wall, throughput=list(cache.values()))
