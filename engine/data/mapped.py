"""A cache folder (cache.py) opened as an image set: the images tensor is a memory map of images.npy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .images import ImageSet

__all__ = ["MappedImageSet", "open_cached"]


class MappedImageSet(ImageSet):
    """An ImageSet whose images are a memory map of a cache folder: nothing is read until a batch asks for it, so
    memory stays flat however large the data set is."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | None, *, name: str, num_classes: int,
                 cache_dir: Path, meta: dict[str, Any]):
        super().__init__(images, labels, name=name, num_classes=num_classes)
        self.cache_dir = cache_dir
        self.meta = meta

    @property
    def skipped(self) -> list[list[str]]:
        return self.meta.get("skipped", [])


def open_cached(folder: Path, *, name: str, num_classes: int) -> MappedImageSet:
    meta = json.loads((folder / "meta.json").read_text())
    count = int(meta["count"])
    array = np.load(folder / "images.npy", mmap_mode="c")[:count]          # copy-on-write map: torch can wrap it
    labels = np.load(folder / "labels.npy")
    images = torch.from_numpy(array)
    y = torch.from_numpy(labels).long() if num_classes > 0 else None
    return MappedImageSet(images, y, name=name, num_classes=num_classes, cache_dir=folder, meta=meta)
