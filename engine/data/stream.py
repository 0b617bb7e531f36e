"""A resumable stream of training batches: a seeded permutation per epoch, optional x-flips, exact resume.

The state is (epoch, position, flip generator state): the permutation of epoch e is drawn from a generator seeded
with (seed, e), so a resumed run sees exactly the batches it would have seen without the interruption, and its loss
curve continues without a seam. Batches never straddle an epoch (the tail of each permutation is dropped).

Under DDP every rank walks the same global stream and takes its contiguous 1/world slice of each global batch (the
recipe's batch is the global batch), flips included, so the global batches, and the resume state, do not depend on
how many processes share them.

On CUDA nothing here waits for the GPU: the permutation is drawn on the host (the same on every device) and moved to a
data set held in GPU memory once per epoch, and the flips are drawn on the host and copied without blocking
(`to_device`), so a step never stalls the host on a copy.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from difftui.engine.config.batch import batch_split_error

from .images import DataError, ImageSet

__all__ = ["BatchStream", "random_x_flip", "to_device"]


def to_device(t: Tensor, device: torch.device) -> Tensor:
    """A host tensor on `device` without making the host wait: on CUDA through pinned memory and a non-blocking copy
    (the caching host allocator keeps the pinned block until the copy is done); elsewhere the plain `.to`."""
    if torch.device(device).type == "cuda" and t.device.type == "cpu":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def random_x_flip(x: torch.Tensor, generator: torch.Generator, batch_size: int, part: slice) -> torch.Tensor:
    """Each image of the global batch mirrored with probability 1/2: one draw of `batch_size` per batch from the
    stream's own generator (so every rank, and a resume, draws the same), of which this rank's images take `part`."""
    flip = to_device((torch.rand(batch_size, generator=generator) < 0.5)[part], x.device)
    return torch.where(flip[:, None, None, None], x.flip(3), x)


class BatchStream:
    def __init__(self, data: ImageSet, batch_size: int, *, seed: int = 0, x_flip: bool = False, rank: int = 0,
                 world_size: int = 1):
        if batch_size > len(data):
            raise DataError(f"dataset '{data.name}' has {len(data)} images, fewer than the batch size {batch_size}")
        if (problem := batch_split_error(batch_size, world_size)) is not None:
            raise DataError(problem)
        self.data = data
        self.batch_size = batch_size
        self.shard = slice(rank * batch_size // world_size, (rank + 1) * batch_size // world_size)
        self.seed = seed
        self.x_flip = x_flip
        self.epoch = 0
        self.position = 0
        self.flip_gen = torch.Generator().manual_seed(seed + 1)
        self._perm: Tensor | None = None

    def _permutation(self) -> Tensor:
        """Epoch e's order, on the device that holds the images (a GPU-resident data set is gathered there)."""
        if self._perm is None:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            self._perm = to_device(torch.randperm(len(self.data), generator=g), self.data.images.device)
        return self._perm

    def next(self) -> tuple[Tensor, Tensor | None]:
        if self.position + self.batch_size > len(self.data):
            self.epoch += 1
            self.position = 0
            self._perm = None
        idx = self._permutation()[self.position:self.position + self.batch_size]
        self.position += self.batch_size
        x, y = self.data.batch(idx[self.shard])
        if self.x_flip:
            x = random_x_flip(x, self.flip_gen, self.batch_size, self.shard)
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
