"""The preprocessed-data cache: a data set decoded once at its target resolution, then memory-mapped at every start.

As EDM's dataset_tool turns a folder into an archive of ready images, we turn a folder, a zip or a set of npz batches
into one folder per (data set contents, preprocessing protocol):

    <cache root>/<name>-<split>-<kind>-<resolution>-<key>/
        images.npy    [N, C, H, W] uint8 (pixels) or float32 (latents), channel-major, read with mmap
        labels.npy    [N] int64 (-1 where unlabelled)
        meta.json     count, skipped files with their reasons, the protocol and where it came from

The key is a sha256 of the source's contents (every file's name, size and mtime), the protocol (resolution,
channels, crop, split, held-out fraction and seed, labels) and the cache format version, so a changed file or a changed
protocol builds a new cache and an unchanged one opens in milliseconds. The folder is written under a temporary name
and renamed into place when complete (a killed build leaves no half cache; its temporary folder is removed by the next
build). The cache root is `dataset.cache_dir`, else $DIFFTUI_DATA_CACHE, else data/ in
difftui's cache (engine/user_dirs.py: $DIFFTUI_CACHE, $XDG_CACHE_HOME/difftui or ~/.cache/difftui).

A file that does not decode is skipped and listed in meta.json (never fatal); the engine reports the count.
Reading a cache back as an image set is mapped.py (this module stays torch-free for the decoding workers).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import numpy as np

from difftui.engine.atomic import atomic_write_text
from difftui.engine.config.model import DatasetProfile
from difftui.engine.user_dirs import cache_root as user_cache_root

from . import decode
from .errors import DataError

__all__ = ["CACHE_VERSION", "cache_root", "cache_dir_for", "CacheWriter", "Progress"]

CACHE_VERSION = 1
Progress = Callable[[int, int, str], None]          # progress(done, total, what)


def cache_root(profile: DatasetProfile) -> Path:
    root = profile.cache_dir or os.environ.get("DIFFTUI_DATA_CACHE", "").strip()
    return Path(root).expanduser() if root else user_cache_root() / "data"


def protocol(profile: DatasetProfile) -> dict[str, Any]:
    """The fields that change the cached bytes (playbook 1.1, 1.5 (4): the preprocessing protocol), and for image
    files the decoder's version (decode.DECODE_VERSION: a cache of 16-bit files clipped to white is not reused)."""
    fields = {"source": profile.source, "resolution": profile.resolution, "channels": profile.channels,
              "crop": profile.crop, "split": profile.split, "heldout": profile.heldout,
              "split_seed": profile.split_seed, "labels": profile.labels}
    if profile.source in ("image_folder", "celeba"):
        fields["decode"] = decode.DECODE_VERSION
    return fields


def cache_dir_for(profile: DatasetProfile, content_key: str, kind: str = "pixels",
                  extra: dict[str, Any] | None = None) -> Path:
    blob = json.dumps({"version": CACHE_VERSION, "content": content_key, "protocol": protocol(profile),
                       "kind": kind, **(extra or {})}, sort_keys=True)
    key = hashlib.sha256(blob.encode()).hexdigest()[:16]
    return cache_root(profile) / f"{profile.name}-{profile.split}-{kind}-{profile.resolution}-{key}"


def _remove_stale(target: Path) -> None:
    """Temporary folders of builds whose process is gone (killed half way) are removed."""
    for tmp in target.parent.glob(f"{target.name}.tmp-*"):
        try:
            pid = int(tmp.name.split(".tmp-")[1].split("-")[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(tmp, ignore_errors=True)
        except (ValueError, PermissionError, IndexError):
            pass


class CacheWriter:
    """Fill a cache folder row by row; `commit` renames it into place, `abort` (or an exception) removes it."""

    def __init__(self, target: Path, count: int, item_shape: tuple[int, ...], dtype=np.uint8):
        self.target = target
        target.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale(target)
        self.tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        self.tmp.mkdir()
        self.capacity = count
        self.images = np.lib.format.open_memmap(self.tmp / "images.npy", mode="w+", dtype=dtype,
                                                shape=(max(count, 1), *item_shape))
        self.labels = np.full(max(count, 1), -1, dtype=np.int64)
        self.count = 0
        self.skipped: list[list[str]] = []
        self.started = time.time()

    def append(self, arrays: np.ndarray, labels: np.ndarray | None = None) -> None:
        n = len(arrays)
        self.images[self.count:self.count + n] = arrays
        if labels is not None:
            self.labels[self.count:self.count + n] = labels
        self.count += n

    def skip(self, name: str, reason: str) -> None:
        self.skipped.append([name, reason])

    def commit(self, meta: dict[str, Any]) -> Path:
        if self.count == 0:
            self.abort()
            first = f" (first: {self.skipped[0][0]}: {self.skipped[0][1]})" if self.skipped else ""
            raise DataError(f"no readable image among {len(self.skipped)} files{first}")
        self.images.flush()
        del self.images
        np.save(self.tmp / "labels.npy", self.labels[:self.count])
        full = {**meta, "count": self.count, "skipped": self.skipped, "version": CACHE_VERSION,
                "seconds": round(time.time() - self.started, 3)}
        atomic_write_text(self.tmp / "meta.json", json.dumps(full, indent=1))
        try:
            os.rename(self.tmp, self.target)
        except OSError:
            if (self.target / "meta.json").exists():        # another process finished the same cache first
                shutil.rmtree(self.tmp, ignore_errors=True)
            else:
                raise
        return self.target

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> "CacheWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
