"""An image set held in memory: images as a tensor, labels, and the conversion to [-1,1] (playbook 1.0)."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import Dataset

from .errors import DataError

__all__ = ["DataError", "ImageSet", "area_resize"]


class ImageSet(Dataset):
    """`images` [N,C,H,W] as uint8 (0..255) or float already in [-1,1]; `labels` [N] long or None.

    `batch(idx)` is the fast path the training loop uses; `__getitem__` keeps it a plain torch Dataset.
    """

    def __init__(self, images: Tensor, labels: Tensor | None, *, name: str, num_classes: int = 0):
        if images.ndim != 4:
            raise ValueError(f"images must be [N,C,H,W], got {tuple(images.shape)}")
        self.images = images.contiguous()
        self.labels = labels
        self.name = name
        self.num_classes = num_classes

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.images.shape[1:])

    def _to_unit(self, x: Tensor) -> Tensor:
        if x.dtype == torch.uint8:
            return x.float().div_(127.5).sub_(1.0)      # playbook 1.0: x = (x/255 - 0.5) / 0.5
        return x.float()

    def batch(self, idx: Tensor) -> tuple[Tensor, Tensor | None]:
        x = self._to_unit(self.images[idx])
        y = self.labels[idx] if self.labels is not None else None
        return x, y

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        x = self._to_unit(self.images[i])
        y = int(self.labels[i]) if self.labels is not None else -1
        return x, y


def area_resize(images: Tensor, resolution: int) -> Tensor:
    """Area-downsample uint8/float images [N,C,H,W] to resolution x resolution (identity when already there)."""
    if images.shape[-1] == resolution and images.shape[-2] == resolution:
        return images
    dtype = images.dtype
    out = torch.nn.functional.interpolate(images.float(), size=(resolution, resolution), mode="area")
    return out.round().clamp(0, 255).to(dtype) if dtype == torch.uint8 else out
