"""The real images' side of FID and precision/recall, computed once per data set and protocol and cached.

The reference is the data set's whole training split (P3 and P1 compare 50,000 samples against all real training
images), with no x-flips whatever the training did (playbook 5.5: no augmentation on the real side). Its cache key
hashes the images' bytes (after the same uint8 quantisation the generated side gets) together with the protocol (the
feature network's name, the split, no flips, the quantisation), so a changed data set or a different network never
reuses stale statistics. The cache file `<cache>/fid-refs/<key>.npz` holds mu and sigma (float64) and, for
precision/recall, the features of up to `PR_REAL_MAX` real images (a fixed subset when there are more).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from difftui.engine.atomic import atomic_write

from .features import feature_net_name, features_of, to_uint8_rgb
from .fid import feature_statistics
from .weights import cache_dir

__all__ = ["PR_REAL_MAX", "REFERENCE_VERSION", "Reference", "reference_key", "reference_statistics",
           "reference_path"]

PR_REAL_MAX = 50_000                                # real rows kept for precision/recall (playbook 5.5: 50K)
REFERENCE_VERSION = 1
HASH_CHUNK = 8_192


@dataclass
class Reference:
    key: str
    mu: np.ndarray
    sigma: np.ndarray
    pr_features: torch.Tensor                       # [min(N, PR_REAL_MAX), D] float32
    count: int                                      # real images in the statistics
    cached: bool                                    # read from the cache (True) or computed now (False)
    path: Path

    @property
    def stats(self) -> dict[str, np.ndarray]:
        return {"mu": self.mu, "sigma": self.sigma}

    def pr_subset(self, n: int, seed: int = 0) -> torch.Tensor:
        """A fixed subset of n real rows (all of them when n >= what is stored): P/R on equal-size sets."""
        rows = self.pr_features
        if n >= len(rows):
            return rows
        g = torch.Generator().manual_seed(seed)
        return rows[torch.randperm(len(rows), generator=g)[:n]]


def _protocol(feature_name: str, split: str, count: int, shape: tuple[int, ...]) -> dict:
    return {"version": REFERENCE_VERSION, "feature_net": feature_name, "split": split, "x_flip": False,
            "quantise": "uint8 round((x + 1) * 127.5)", "images": count, "shape": list(shape)}


def _chunks(images: torch.Tensor, n: int = HASH_CHUNK):
    for i in range(0, len(images), n):
        yield images[i:i + n]


def _as_unit(chunk: torch.Tensor) -> torch.Tensor:
    """An ImageSet's storage (uint8 0..255 or float in [-1, 1]) as float in [-1, 1] (playbook 1.0)."""
    return chunk.float().div(127.5).sub(1.0) if chunk.dtype == torch.uint8 else chunk.float()


def reference_key(images: torch.Tensor, feature_name: str, split: str = "train") -> str:
    """sha256 over the protocol and the uint8 bytes of every image (first 32 hex digits)."""
    h = hashlib.sha256()
    h.update(json.dumps(_protocol(feature_name, split, len(images), tuple(images.shape[1:])), sort_keys=True).encode())
    for chunk in _chunks(images):
        h.update(to_uint8_rgb(_as_unit(chunk)).contiguous().numpy().tobytes())
    return h.hexdigest()[:32]


def reference_path(key: str) -> Path:
    return cache_dir() / "fid-refs" / f"{key}.npz"


def _load(path: Path, key: str) -> Reference | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key:
                return None
            return Reference(key, z["mu"], z["sigma"], torch.from_numpy(z["pr_features"]), int(z["count"]), True,
                             path)
    except (OSError, KeyError, ValueError):         # a damaged cache file is recomputed, never trusted
        return None


def reference_statistics(images: torch.Tensor, feature_net, *, batch: int = 256, split: str = "train",
                         on_batch: Callable[[int, int], None] | None = None) -> Reference:
    """The reference for `images` ([N, C, H, W] as an ImageSet stores them): from the cache, else computed (features
    in batches on the feature network's device; `on_batch(done, total)` after each) and cached atomically."""
    name = feature_net_name(feature_net)
    key = reference_key(images, name, split)
    path = reference_path(key)
    if path.exists():
        ref = _load(path, key)
        if ref is not None:
            return ref
    rows = []
    for i in range(0, len(images), batch):
        rows.append(features_of(feature_net, _as_unit(images[i:i + batch])))
        if on_batch is not None:
            on_batch(min(i + batch, len(images)), len(images))
    feats = torch.cat(rows)
    stats = feature_statistics(feats)
    keep = feats
    if len(feats) > PR_REAL_MAX:
        keep = feats[torch.randperm(len(feats), generator=torch.Generator().manual_seed(0))[:PR_REAL_MAX]]

    atomic_write(path, lambda f: np.savez(f, key=np.array(key), mu=stats["mu"], sigma=stats["sigma"],
                                          pr_features=keep.numpy(), count=np.array(len(images))))
    return Reference(key, stats["mu"], stats["sigma"], keep, len(images), False, path)
