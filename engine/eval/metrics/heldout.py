"""Held-out NLL in bits/dim (playbook 5.5; P1 Sec. 2): the variational bound over the whole chain, averaged over
images of the data set's test split that training never saw, with the number of images reported beside it.

The held-out images are `build_dataset(replace(profile, split="test"))`: CIFAR-10's test batch, and for the built-in
digits and image folders a fixed held-out subset that the training split leaves out (engine/data). `overlap` checks
that promise image by image, so a data set without a real held-out split cannot pass its training images off as one.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Callable

import torch

__all__ = ["heldout_set", "heldout_subset", "overlap", "heldout_nll"]


def heldout_set(profile):
    """The profile's test split as an ImageSet."""
    from difftui.engine.data import build_dataset
    return build_dataset(dataclasses.replace(profile, split="test"))


def heldout_subset(data, n: int | None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
    """All held-out images (n None or >= the split), else a fixed subset of n drawn with its own generator."""
    if n is None or n >= len(data):
        idx = torch.arange(len(data))
    else:
        idx = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n].sort().values
    return data.batch(idx)


def _digest(row: torch.Tensor) -> bytes:
    return hashlib.blake2b(row.contiguous().numpy().tobytes(), digest_size=16).digest()


def overlap(train_images: torch.Tensor, heldout_images: torch.Tensor) -> int:
    """How many held-out images are byte-identical to a training image (as the data sets store them)."""
    seen = {_digest(row) for row in train_images}
    return sum(_digest(row) in seen for row in heldout_images)


@torch.no_grad()
def heldout_nll(objective, net, images: torch.Tensor, labels: torch.Tensor | None, *, device: torch.device,
                batch: int, spec=None, seed: int = 0,
                on_batch: Callable[[int, int], None] | None = None) -> float:
    """Mean NLL bound in bits/dim over `images` ([-1, 1]), on the chain of an ancestral `spec` or, for None, the
    model's own full chain. Each batch's noise comes from a generator seeded with (seed, batch index)."""
    total, n = 0.0, len(images)
    for i, lo in enumerate(range(0, n, batch)):
        x = images[lo:lo + batch].to(device)
        y = labels[lo:lo + batch].to(device) if labels is not None else None
        g = torch.Generator(device=device).manual_seed(seed * 1_000_003 + i)
        bpd = objective.nll_bpd(net, x, spec=spec, y=y, generator=g)
        total += float(bpd.double().sum())
        if on_batch is not None:
            on_batch(min(lo + batch, n), n)
    return total / n
