"""The held-out split: a fixed, seeded subset of a data set that training never sees (playbook 1.0 (4): the test
split is only for evaluation and never mixed into training).

Each item is assigned by a hash of (split_seed, its name), not by a shuffle of the whole list: an item keeps its side
when files are added or removed elsewhere, and the assignment is the same on every machine. The name is the file's
path relative to the data set's root (image folders, zip archives) or the item's index (the built-in digits).

    test  = heldout_mask(names, fraction, seed)        # bool [N]; True = held out (split "test")
    train = ~test

CIFAR-10 and ImageNet-64 have their own test/val files and do not use this; an image folder with `test_root` uses
that folder as its test split instead.
"""

from __future__ import annotations

import hashlib
from typing import Iterable

import numpy as np

__all__ = ["heldout_mask", "split_indices"]


def _unit(seed: int, name: str) -> float:
    digest = hashlib.blake2b(f"{seed}\x00{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2.0 ** 64


def heldout_mask(names: Iterable[str], fraction: float, seed: int) -> np.ndarray:
    """True for the items of the held-out (test) split: hash(seed, name) / 2^64 < fraction."""
    names = list(names)
    if fraction <= 0:
        return np.zeros(len(names), dtype=bool)
    return np.fromiter((_unit(seed, n) < fraction for n in names), dtype=bool, count=len(names))


def split_indices(names: Iterable[str], fraction: float, seed: int, split: str) -> np.ndarray:
    """The indices (into `names`) of the items of `split` ("train" or "test")."""
    mask = heldout_mask(names, fraction, seed)
    return np.flatnonzero(mask if split == "test" else ~mask)
