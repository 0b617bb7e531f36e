"""Training checkpoints in runs/<id>/checkpoints/ckpt-<step>.pt: written atomically, loaded safely, the last few kept.

A checkpoint holds everything a resume needs to continue the same run bit for bit: model, EMA, optimizer, step,
kimg, the objective's state (e.g. importance-sampling history), the batch stream's position and, per rank, the
torch / CUDA / Python / NumPy RNG states and the partial logging interval. Every value is a tensor or a plain
container of numbers and strings, so files are loaded with `weights_only=True`: a replaced ckpt-*.pt cannot run code.

Guarantees: a reader sees a whole file or none (temp file, fsync, rename); temp files left by an interrupted write are
removed when an engine takes the run (`remove_stale_temps`); a full disk is reported as such (`DiskFull`), before the
write when the free space is visibly too small; an unreadable file raises `CheckpointError` naming it and the reason,
and `load_newest` falls back to the next older file that loads.
"""

from __future__ import annotations

import errno
import random
import re
import shutil
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch

from difftui.engine.atomic import atomic_write

__all__ = ["CheckpointError", "DiskFull", "save_checkpoint", "latest_checkpoint", "load_checkpoint", "load_newest",
           "list_checkpoints", "remove_stale_temps", "rng_state", "set_rng_state", "state_nbytes", "REQUIRED_KEYS"]

_NAME = re.compile(r"^ckpt-(\d+)\.pt$")
_TEMP = ".ckpt-*.tmp"                               # atomic_write's temp files for ckpt-*.pt
REQUIRED_KEYS = ("step", "model", "optimizer", "ema", "stream")
# Checkpoints of the first release kept NumPy's RNG state as an array: allow exactly the globals that rebuild a
# plain ndarray (an object array would need more, and is refused).
LEGACY_NUMPY_GLOBALS = [np.ndarray, np.dtype, np.dtypes.UInt32DType, np._core.multiarray._reconstruct]
HEADROOM = 1.05                                     # the estimate of a file's size is its tensors' bytes


class CheckpointError(RuntimeError):
    """A checkpoint cannot be written or read; one line naming the file and the reason."""


class DiskFull(CheckpointError):
    """No space left on the device that holds the checkpoints."""


#----------------------------------------------------------------------------
# RNG states as tensors and plain values (so that weights_only loading accepts them).

def rng_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    if isinstance(n, tuple):                        # the first release's layout: np.random.get_state() itself
        np.random.set_state(n)
    else:
        np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))


#----------------------------------------------------------------------------
# Files.

def list_checkpoints(folder: str | Path) -> list[tuple[int, Path]]:
    """(step, path) of every complete checkpoint in `folder`, oldest first (temp and quarantined files ignored)."""
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


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Delete temp files of checkpoint writes that never finished (call only while owning the run)."""
    folder = Path(folder)
    removed = []
    if folder.is_dir():
        for p in folder.glob(_TEMP):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def state_nbytes(state: Any) -> int:
    """Bytes of the tensors in a (nested) state: what torch.save will write, give or take the metadata."""
    if isinstance(state, torch.Tensor):
        return state.numel() * state.element_size()
    if isinstance(state, dict):
        return sum(state_nbytes(v) for v in state.values())
    if isinstance(state, (list, tuple)):
        return sum(state_nbytes(v) for v in state)
    return 0


def _free_bytes(folder: Path) -> int:
    return shutil.disk_usage(folder).free


def _disk_full(path: Path, need: int) -> DiskFull:
    free = _free_bytes(path.parent)
    return DiskFull(f"disk full: cannot write {path} (needs about {need / 2**20:.0f} MB, "
                    f"{free / 2**20:.0f} MB free on that device)")


def save_checkpoint(folder: str | Path, step: int, state: dict[str, Any], *, keep: int = 3) -> Path:
    """Write ckpt-<step>.pt (temp file, fsync, rename), then delete all but the newest `keep` checkpoints."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"ckpt-{step:07d}.pt"
    need = int(state_nbytes(state) * HEADROOM) + 2**20
    if _free_bytes(folder) < need:
        raise _disk_full(path, need)
    try:
        atomic_write(path, lambda f: torch.save(state, f))
    except (OSError, RuntimeError) as e:
        # torch's zip writer reports a short write as "unexpected pos ..." (RuntimeError), not as ENOSPC.
        if getattr(e, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or _free_bytes(folder) < need:
            raise _disk_full(path, need) from None
        raise CheckpointError(f"cannot write {path}: {' '.join(str(e).split())[:200]}") from None
    for _, old in list_checkpoints(folder)[:-max(1, keep)]:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | Path, map_location: torch.device | str = "cpu",
                    required: Iterable[str] = ()) -> dict[str, Any]:
    """Load one checkpoint with `weights_only=True`; CheckpointError (one line naming the file) when it does not load
    or lacks one of the `required` keys."""
    path = Path(path)
    try:
        with torch.serialization.safe_globals(LEGACY_NUMPY_GLOBALS):
            state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:                          # truncated zip, foreign pickle, a disallowed global, ...
        reason = " ".join(str(e).split())
        if "Weights only load failed" in reason:
            reason = "it holds objects other than tensors and plain values (refused: weights_only)"
        raise CheckpointError(f"{path.name} is unreadable ({type(e).__name__}: {reason[:160]})") from None
    missing = [k for k in required if not isinstance(state, dict) or k not in state]
    if not isinstance(state, dict) or missing:
        raise CheckpointError(f"{path.name} is not a difftui training checkpoint (missing {', '.join(missing)})")
    return state


def load_newest(folder: str | Path, map_location: torch.device | str = "cpu", *,
                on_bad: Callable[[Path, str], None] = lambda path, reason: None,
                candidates: Iterable[tuple[int, Path]] | None = None) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint that loads, as (path, state). A file that does not load is reported through
    `on_bad(path, reason)` and renamed to <name>.bad (kept for inspection, out of the rotation); the next older one
    is tried. None when there is no checkpoint; CheckpointError when there are some and none loads."""
    found = list(candidates if candidates is not None else list_checkpoints(folder))
    reasons = []
    for _, path in reversed(found):
        try:
            return path, load_checkpoint(path, map_location, required=REQUIRED_KEYS)
        except CheckpointError as e:
            reasons.append(str(e))
            on_bad(path, str(e))
            try:
                path.rename(path.with_name(path.name + ".bad"))
            except OSError:
                pass
    if reasons:
        raise CheckpointError("no checkpoint loads: " + "; ".join(reasons))
    return None
