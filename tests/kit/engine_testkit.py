"""Shared helpers for the engine tests: tiny run configs, on-disk tiny data sets, waiting on a run's status."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from waiting import wait_for  # noqa: F401  (the one wait_for: tests/kit/waiting.py)

from difftui.engine.config.catalog import Catalog

# A tiny U-Net (16 channels), batch 8, a 10-step DDIM grid: a CPU step takes milliseconds.
TINY = ["recipe.batch_size=8", "backbone.arch.model_channels=16", "sampler.grid.steps=10"]


def tiny_config(steps: int, *extra: str, dataset: str | None = None, device: str = "cpu"):
    return Catalog().resolve(dataset=dataset, overrides=[*TINY, *extra], max_steps=steps, device=device)


def tiny_cifar10_md5(root: Path) -> str:
    """`--set dataset.md5={...}`: the tiny files' own md5s, which the profile vouches for (the published CIFAR-10
    checksums are still checked for every file the profile does not name)."""
    import hashlib
    folder = root / "cifar-10-batches-py"
    pairs = ", ".join(f"{p.name}: {hashlib.md5(p.read_bytes()).hexdigest()}" for p in sorted(folder.iterdir()))
    return f"dataset.md5={{{pairs}}}"


def write_tiny_cifar10(root: Path, per_batch: int = 4, seed: int = 0) -> np.ndarray:
    """CIFAR-10's python-version layout under root/cifar-10-batches-py, in the real pickle format (uint8 rows of
    3072 = 3x32x32 channel-major values, 'labels', 'batches.meta' with 'label_names'). Returns the training rows."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rows = []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=per_batch)]
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": name, "labels": labels, "data": data,
                         "filenames": [f"{name}_{i}.png" for i in range(per_batch)]}, f)
        if name != "test_batch":
            rows.append(data)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": names, "num_cases_per_batch": per_batch, "num_vis": 3072}, f)
    return np.concatenate(rows)
