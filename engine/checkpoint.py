"""Training checkpoints in runs/<id>/checkpoints/ckpt-<step>.pt, written atomically; the last few are kept.

A checkpoint holds everything a resume needs to continue the same run bit for bit on the same device: model, EMA,
optimizer, step, kimg, the torch / CUDA / Python / NumPy RNG states, the batch stream's position, the objective's
state (e.g. importance-sampling history) and the partial logging interval. The file is our own, so it is loaded
with `weights_only=False` (it holds NumPy RNG arrays and Python tuples).
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from difftui.engine.atomic import atomic_write

__all__ = ["save_checkpoint", "latest_checkpoint", "load_checkpoint", "list_checkpoints", "rng_state",
           "set_rng_state"]

_NAME = re.compile(r"^ckpt-(\d+)\.pt$")


def rng_state() -> dict[str, Any]:
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": np.random.get_state(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])


def list_checkpoints(folder: str | Path) -> list[tuple[int, Path]]:
    """(step, path) of every complete checkpoint in `folder`, oldest first (temp files are ignored)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for p in folder.iterdir():
        m = _NAME.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def latest_checkpoint(folder: str | Path) -> Path | None:
    found = list_checkpoints(folder)
    return found[-1][1] if found else None


def save_checkpoint(folder: str | Path, step: int, state: dict[str, Any], *, keep: int = 3) -> Path:
    """Write ckpt-<step>.pt (temp file, fsync, rename), then delete all but the newest `keep` checkpoints."""
    folder = Path(folder)
    path = atomic_write(folder / f"ckpt-{step:07d}.pt", lambda f: torch.save(state, f))
    for _, old in list_checkpoints(folder)[:-max(1, keep)]:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | Path, map_location: torch.device | str = "cpu") -> dict[str, Any]:
    return torch.load(path, map_location=map_location, weights_only=False)
