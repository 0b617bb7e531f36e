"""What one logging interval of training measured: loss means, skipped steps, throughput (no database here).

Per step, each logged scalar is added on the device (no host sync; a step whose loss or gradient was not finite adds
nothing and counts as skipped); every `log_every` steps `close()` reduces the interval over all ranks with one
collective and one host sync, and gives the means over the finite steps, the number of skipped steps, the longest run
of consecutive non-finite steps and which terms were non-finite. The partial interval is part of a checkpoint, so a
resumed run logs the same means at the same steps as an uninterrupted one.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import Tensor

from difftui.engine.run.distributed import World

__all__ = ["Meter", "Interval", "Clock", "throughput"]


@dataclass
class Interval:
    means: dict[str, float]                         # over the interval's finite steps, all ranks; NaN if none
    steps: int                                      # optimizer steps in the interval
    skipped: int                                    # of which skipped as non-finite
    streak: int                                     # consecutive non-finite steps up to the interval's end
    nonfinite_terms: list[str] = field(default_factory=list)


class Meter:
    def __init__(self, device: torch.device):
        self.device = device
        self.reset()
        self.streak = torch.zeros((), device=device)

    def reset(self) -> None:
        self.sums: dict[str, Tensor] = {}
        self.bad: dict[str, Tensor] = {}
        self.finite = torch.zeros((), device=self.device)
        self.steps = 0

    def accumulate(self, values: dict[str, Tensor], ok: Tensor) -> None:
        """Add one step's scalar tensors; `ok` (bool tensor) is False for a step that was skipped."""
        okf = ok.float()
        for name, v in values.items():
            v = v.detach().float()
            s = self.sums.get(name)
            add = torch.where(ok, v, torch.zeros_like(v))
            self.sums[name] = add if s is None else s + add
            b = (~torch.isfinite(v)).float()
            self.bad[name] = b if name not in self.bad else self.bad[name] + b
        self.finite = self.finite + okf
        # consecutive non-finite steps: +1 on a skipped step, back to 0 on a good one
        self.streak = (self.streak + 1) * (1 - okf)
        self.steps += 1

    def close(self, world: World) -> Interval:
        names = sorted(self.sums)
        n = len(names)
        vec = torch.stack([*(self.sums[k] for k in names), self.finite, *(self.bad[k] for k in names)]) if names \
            else self.finite.reshape(1)
        world.all_reduce_(vec, "sum")
        streak = self.streak.reshape(1).clone()
        world.all_reduce_(streak, "max")
        host = torch.cat([vec, streak]).tolist()                # the interval's one host sync
        finite = host[n] / world.size                           # ok is the same on every rank
        means = {k: (host[i] / (finite * world.size) if finite else math.nan) for i, k in enumerate(names)}
        bad_terms = [k for i, k in enumerate(names) if host[n + 1 + i] > 0]
        interval = Interval(means=means, steps=self.steps, skipped=int(round(self.steps - finite)),
                            streak=int(host[-1]), nonfinite_terms=bad_terms)
        self.reset()
        return interval

    def state_dict(self) -> dict[str, Any]:
        return {"sums": {k: v.cpu() for k, v in self.sums.items()}, "bad": {k: v.cpu() for k, v in self.bad.items()},
                "finite": self.finite.cpu(), "steps": self.steps, "streak": self.streak.cpu()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "finite" not in state:                   # a checkpoint of the release before skipped steps existed
            self.sums = {k: v.to(self.device) for k, v in state["sums"].items()}
            self.bad = {k: torch.zeros((), device=self.device) for k in self.sums}
            self.steps = int(state["count"])
            self.finite = torch.full((), float(self.steps), device=self.device)
            return
        self.sums = {k: v.to(self.device) for k, v in state["sums"].items()}
        self.bad = {k: v.to(self.device) for k, v in state["bad"].items()}
        self.finite = state["finite"].to(self.device)
        self.steps = int(state["steps"])
        self.streak = state["streak"].to(self.device)


class Clock:
    """Training time between two interval ends, excluding pauses that are not training (grids, checkpoints, the
    first compiled steps). Read only after a host sync, so that CUDA work is counted when it has happened."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.restart()

    def restart(self) -> None:
        self.start = self.clock()
        self.steps = 0

    def tick(self) -> None:
        self.steps += 1

    def lap(self) -> tuple[float, int]:
        """(seconds, steps) since the last restart or lap; starts the next lap."""
        now = self.clock()
        out = (now - self.start, self.steps)
        self.start, self.steps = now, 0
        return out


def throughput(images: int, seconds: float, flops_per_image: float | None, peak_tflops: float | None,
               devices: int) -> dict[str, float]:
    """The interval's speed: img_per_s (all ranks: the global batch), tflops (achieved by all devices together) and
    mfu = tflops / (devices x one device's peak). `peak_tflops` is one card's dense peak, so MFU divides by the
    number of cards that did the work: 30% on each of 8 GPUs reads 30%, not 240%."""
    values = {"img_per_s": images / seconds}
    if flops_per_image is not None:
        values["tflops"] = values["img_per_s"] * flops_per_image / 1e12
        if peak_tflops is not None:
            values["mfu"] = values["tflops"] / (peak_tflops * devices)
    return values
