"""A resumable stream of training batches: a seeded permutation per epoch, optional x-flips, exact resume.

The state is (epoch, position, flip generator state): the permutation of epoch e is drawn from a generator seeded
with (seed, e), so a resumed run sees exactly the batches it would have seen without the interruption, and its loss
curve continues without a seam. Batches never straddle an epoch (the tail of each permutation is dropped).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .images import DataError, ImageSet

__all__ = ["BatchStream"]


class BatchStream:
    def __init__(self, data: ImageSet, batch_size: int, *, seed: int = 0, x_flip: bool = False):
        if batch_size > len(data):
            raise DataError(f"dataset '{data.name}' has {len(data)} images, fewer than the batch size {batch_size}")
        self.data = data
        self.batch_size = batch_size
        self.seed = seed
        self.x_flip = x_flip
        self.epoch = 0
        self.position = 0
        self.flip_gen = torch.Generator().manual_seed(seed + 1)
        self._perm: Tensor | None = None

    def _permutation(self) -> Tensor:
        if self._perm is None:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            self._perm = torch.randperm(len(self.data), generator=g)
        return self._perm

    def next(self) -> tuple[Tensor, Tensor | None]:
        if self.position + self.batch_size > len(self.data):
            self.epoch += 1
            self.position = 0
            self._perm = None
        idx = self._permutation()[self.position:self.position + self.batch_size]
        self.position += self.batch_size
        x, y = self.data.batch(idx)
        if self.x_flip:
            flip = torch.rand(x.shape[0], generator=self.flip_gen) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
        return x, y

    def __iter__(self):
        while True:
            yield self.next()

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "position": self.position, "flip_gen": self.flip_gen.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])
        self.flip_gen.set_state(state["flip_gen"])
        self._perm = None
