"""Exponential moving average of the network weights; grids and evaluations use the EMA copy (playbook 4.0-4.1).

Two ways to state the strength, both from the papers:
- P1 fixed decay (playbook 4.0: 0.9999). A 0.9999 average is still ~97% the initial weights after 300 steps, so the
  decay is warmed up as `min(decay, (1 + t) / (10 + t))` with t the number of updates so far: the `num_updates`
  form of TensorFlow's `ExponentialMovingAverage`, used by the DDPM authors' TF code and by latent-diffusion's
  `LitEma`. It reaches 0.99 at t ~ 900 and 0.999 at t ~ 9,000, so long runs are the paper's EMA and a 300-step demo
  averages its last few dozen steps.
- P3 half-life (playbook A.4: 0.5 Mimg on CIFAR-10). Per step `decay = 0.5 ** (batch / (halflife_kimg * 1000))`,
  with EDM's ramp-up: the half-life is at most `ema_rampup_ratio` (0.05) of the images seen so far
  (NVlabs/edm training_loop.py).
Buffers (e.g. norm statistics) are copied, not averaged. The update count lives on the weights' device and a step
skipped as non-finite does not advance it, so an update never waits for the host.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

__all__ = ["EMA", "EMA_RAMPUP_RATIO"]

EMA_RAMPUP_RATIO = 0.05                             # NVlabs/edm default `ema_rampup_ratio`


class EMA:
    """EMA(net, decay=0.9999) is P1's form; EMA(net, halflife_kimg=500, batch_size=512) is P3's (the half-life
    overrides the decay). The run's recipe becomes these numbers in engine/run/builders.py (`build_ema`)."""

    def __init__(self, net: nn.Module, decay: float = 0.9999, *, halflife_kimg: float | None = None,
                 batch_size: int | None = None, rampup_ratio: float = EMA_RAMPUP_RATIO):
        if halflife_kimg is not None and batch_size is None:
            raise ValueError(f"EMA half-life {halflife_kimg} kimg: the decay per step needs the batch size")
        self.net = copy.deepcopy(net).eval().requires_grad_(False)
        self.decay = decay                                  # playbook 4.0: 0.9999
        self.halflife_kimg = halflife_kimg                  # playbook A.4: 500 kimg (P3 CIFAR-10)
        self.batch_size = batch_size
        self.rampup_ratio = rampup_ratio
        self.updates = 0

    @property
    def updates(self) -> int:
        """EMA updates made so far (a step skipped as non-finite is none): the warm-up counter t of the decay."""
        return int(self._updates)

    @updates.setter
    def updates(self, value: int) -> None:
        self._updates = torch.tensor(int(value), dtype=torch.int64)

    def decay_of(self, updates: torch.Tensor) -> torch.Tensor:
        """The decay (float64 tensor) for update number `updates` (0-based): a tensor, so that the device computes it
        without the host reading the counter."""
        u = updates.to(torch.float64)
        if self.halflife_kimg is not None:
            seen = (u + 1) * self.batch_size
            halflife = torch.clamp(seen * self.rampup_ratio, max=self.halflife_kimg * 1000)
            return 0.5 ** (self.batch_size / torch.clamp(halflife, min=1e-8))
        return torch.clamp((1 + u) / (10 + u), max=self.decay)

    def decay_at(self, updates: int) -> float:
        """The decay used for update number `updates` (0-based)."""
        return float(self.decay_of(torch.tensor(updates)))

    @torch.no_grad()
    def update(self, net: nn.Module, ok: torch.Tensor | None = None) -> torch.Tensor:
        """One EMA step toward `net`'s weights; returns the decay used (a 0-dim tensor). `ok` (a bool tensor on the
        weights' device) False makes it a no-op that does not count as an update (the warm-up does not advance), with
        no host sync: a step skipped as non-finite moves neither the weights nor their average."""
        ema_p = [p for p in self.net.parameters()]
        src_p = [p.detach() for p in net.parameters()]
        self._updates = self._updates.to(ema_p[0].device)
        beta = self.decay_of(self._updates)
        weight = (1.0 - beta) if ok is None else ok.to(torch.float64) * (1.0 - beta)
        # ema = beta * ema + (1 - beta) * p. A tensor weight goes in the list form: the scalar form would read it on
        # the host (.item(), a sync per step).
        weight = weight.to(ema_p[0].dtype)
        torch._foreach_lerp_(ema_p, src_p, [weight] * len(ema_p))
        for b_ema, b in zip(self.net.buffers(), net.buffers(), strict=False):
            b_ema.copy_(b)
        self._updates += 1 if ok is None else ok.to(torch.int64)
        return beta

    def state_dict(self) -> dict[str, Any]:
        return {"net": self.net.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.updates = int(state["updates"])
