"""A batch loader for large, memory-mapped data sets: DataLoader workers read the batches ahead of the training step
(pinned memory, prefetch), and the batches are exactly those of `BatchStream` (stream.py).

    source = make_batch_source(data, batch_size, seed=..., x_flip=..., rank=0, world_size=1)
    x, y = source.next()                 # [B/world, C, H, W] float in [-1, 1] (on `device` when next(device=...))
    state = source.state_dict()          # {"epoch", "position", "flip_gen"}: BatchStream's state, interchangeable

Same batches as BatchStream: epoch e's order is `randperm(N)` from a generator seeded with seed * 1_000_003 + e, a
batch never straddles an epoch (the tail is dropped), x-flips are drawn from a generator seeded with seed + 1, one
`rand(B)` per global batch. DDP: the global batch is the recipe's; rank r of w takes the contiguous slice
[r B/w, (r+1) B/w) of each global batch and of its flip draws, so every rank's flip generator stays in step.

What the workers do: each worker reads one batch's rows from the cache's memory map (a sorted gather, then back to
the permutation's order) and returns uint8 in pinned memory; the main process turns it into [-1, 1] floats (on the
GPU when `device` is given, after a non-blocking copy) and applies the flips. Memory stays flat: the rows are read
from the page cache, and at most `num_workers * prefetch_factor` batches are in flight. The loader's position is what
the training step consumed, never what the workers prefetched, so a checkpoint resumes exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from difftui.engine.config.batch import batch_split_error

from .images import DataError, ImageSet
from .stream import BatchStream, random_x_flip

__all__ = ["CachedBatchLoader", "make_batch_source", "LOADER_MIN_ITEMS", "LOADER_MIN_RESOLUTION"]

# Playbook-free engineering thresholds (issue 10): a data set of 100k+ images, or of 256 px, goes through the loader;
# smaller ones are faster served straight from memory by BatchStream.
LOADER_MIN_ITEMS = 100_000
LOADER_MIN_RESOLUTION = 256


def _perm(n: int, seed: int, epoch: int) -> Tensor:
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)               # as BatchStream._permutation
    return torch.randperm(n, generator=g)


class _BatchIndices:
    """The index tensors of this rank's batches from (epoch, position) on, forever (a DataLoader sampler)."""

    def __init__(self, n: int, batch_size: int, seed: int, epoch: int, position: int, lo: int, hi: int):
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.epoch, self.position, self.lo, self.hi = epoch, position, lo, hi

    def __iter__(self) -> Iterator[Tensor]:
        epoch, position = self.epoch, self.position
        perm = None
        while True:
            if position + self.batch_size > self.n:
                epoch, position, perm = epoch + 1, 0, None
            if perm is None:
                perm = _perm(self.n, self.seed, epoch)
            yield perm[position + self.lo:position + self.hi]
            position += self.batch_size


class _MappedRows(Dataset):
    """Worker side: rows of images.npy (and labels) by index tensor; the map is opened once per process."""

    def __init__(self, folder: Path, count: int, labelled: bool):
        self.folder, self.count, self.labelled = folder, count, labelled
        self._images = self._labels = None

    def _open(self) -> None:
        if self._images is None:
            self._images = np.load(self.folder / "images.npy", mmap_mode="r")
            self._labels = np.load(self.folder / "labels.npy") if self.labelled else None

    def __getitem__(self, idx: Tensor) -> tuple[Tensor, Tensor]:
        self._open()
        idx = idx.numpy()
        order = np.argsort(idx, kind="stable")
        rows = np.empty((len(idx), *self._images.shape[1:]), dtype=self._images.dtype)
        rows[order] = self._images[idx[order]]                 # a sorted gather reads the map front to back
        labels = self._labels[idx] if self._labels is not None else np.zeros(0, dtype=np.int64)
        return torch.from_numpy(rows), torch.from_numpy(np.asarray(labels, dtype=np.int64))

    def __len__(self) -> int:                                  # unused by the sampler; DataLoader asks for it
        return self.count


class CachedBatchLoader:
    """BatchStream's batches and state, read by DataLoader workers from a cached (memory-mapped) data set."""

    def __init__(self, data: ImageSet, batch_size: int, *, seed: int = 0, x_flip: bool = False, rank: int = 0,
                 world_size: int = 1, num_workers: int = 4, prefetch_factor: int = 4,
                 pin_memory: bool | None = None):
        folder = getattr(data, "cache_dir", None)
        if folder is None:
            raise DataError(f"dataset '{data.name}' is not a cached data set; use BatchStream")
        if batch_size > len(data):
            raise DataError(f"dataset '{data.name}' has {len(data)} images, fewer than the batch size {batch_size}")
        if (problem := batch_split_error(batch_size, world_size)) is not None:
            raise DataError(problem)
        if not 0 <= rank < world_size:
            raise DataError(f"rank {rank} is not in 0..{world_size - 1}")
        self.data = data
        self.batch_size = batch_size
        self.seed = seed
        self.x_flip = x_flip
        self.rank, self.world_size = rank, world_size
        per = batch_size // world_size
        self.lo, self.hi = rank * per, (rank + 1) * per
        self.num_workers = num_workers
        self.prefetch_factor = prefetch_factor
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else pin_memory
        self.epoch = 0
        self.position = 0
        self.flip_gen = torch.Generator().manual_seed(seed + 1)
        self._rows = _MappedRows(Path(folder), len(data), data.labels is not None)
        self._iter: Iterator | None = None

    def _loader(self) -> Iterator:
        sampler = _BatchIndices(len(self.data), self.batch_size, self.seed, self.epoch, self.position, self.lo,
                                self.hi)
        kw: dict[str, Any] = dict(batch_size=None, sampler=sampler, num_workers=self.num_workers,
                                  pin_memory=self.pin_memory)
        if self.num_workers > 0:
            kw.update(prefetch_factor=self.prefetch_factor, persistent_workers=False)
        return iter(DataLoader(self._rows, **kw))

    def next(self, device: torch.device | str | None = None) -> tuple[Tensor, Tensor | None]:
        if self._iter is None:
            self._iter = self._loader()
        raw, labels = next(self._iter)
        # Mirror the sampler's (epoch, position) arithmetic: the state is what has been consumed.
        if self.position + self.batch_size > len(self.data):
            self.epoch += 1
            self.position = 0
        self.position += self.batch_size
        if device is not None:
            raw = raw.to(device, non_blocking=True)
            labels = labels.to(device, non_blocking=True)
        x = raw.float().div_(127.5).sub_(1.0) if raw.dtype == torch.uint8 else raw.float()    # as ImageSet
        if self.x_flip:
            x = random_x_flip(x, self.flip_gen, self.batch_size, slice(self.lo, self.hi))
        return x, (labels if self.data.labels is not None else None)

    def __iter__(self):
        while True:
            yield self.next()

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "position": self.position, "flip_gen": self.flip_gen.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])
        self.flip_gen.set_state(state["flip_gen"])
        self.close()

    def close(self) -> None:
        """Stop the workers (a resume or the end of training); the next `next()` starts them again."""
        self._iter = None


def uses_loader(data: ImageSet) -> bool:
    """A cached data set of 100k+ images or of 256 px goes through the worker loader."""
    if getattr(data, "cache_dir", None) is None:
        return False
    return len(data) >= LOADER_MIN_ITEMS or data.shape[-1] >= LOADER_MIN_RESOLUTION


def make_batch_source(data: ImageSet, batch_size: int, *, seed: int = 0, x_flip: bool = False, rank: int = 0,
                      world_size: int = 1, num_workers: int = 4):
    """The loader for `data`: CachedBatchLoader for large cached sets (`uses_loader`), else the in-memory
    BatchStream. Both yield the same batches and have the same state_dict."""
    if uses_loader(data):
        return CachedBatchLoader(data, batch_size, seed=seed, x_flip=x_flip, rank=rank, world_size=world_size,
                                 num_workers=num_workers)
    shard = {"rank": rank, "world_size": world_size} if world_size > 1 else {}
    return BatchStream(data, batch_size, seed=seed, x_flip=x_flip, **shard)
