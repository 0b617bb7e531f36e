"""Image folders and zip archives (playbook 1.1): center crop to a square, area downsample to the resolution, [-1,1].

One loader serves every file-based profile: `image-folder`, LSUN categories, FFHQ, AFHQ, CelebA (`source: celeba`
finds `img_align_celeba/` or `img_align_celeba.zip` under `root` and applies P2's crop). The images are decoded once
in a process pool into the preprocessed cache (cache.py) and memory-mapped from then on, so a start takes
milliseconds after the first and memory stays flat; a file that does not decode is skipped and listed (never fatal).

Splits: `test_root` (the data set's own val folder, e.g. AFHQ's val/) is the test split when set; otherwise a
`heldout` fraction of the files, chosen by a seeded hash of each name (split.py), is the test split and training never
sees it. Labels (`labels: subfolders`): the class is the first path component below the files' common folder, classes
numbered in sorted order (torchvision's ImageFolder convention; DiT's ImageNet labels).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from difftui.engine.config.model import DatasetProfile

from .cache import CacheWriter, Progress, cache_dir_for
from .decode import load_chunk
from .errors import DataError
from .mapped import MappedImageSet, open_cached
from .pool import map_chunks
from .sources import ImageSource, open_source
from .split import split_indices

__all__ = ["load_image_folder_set", "find_images", "folder_items", "data_root", "class_of", "FolderItems"]

WHAT = {"celeba": "CelebA"}


def data_root(profile: DatasetProfile, split: str | None = None) -> Path:
    """The folder or zip that holds the split's files (CelebA: the img_align_celeba folder or zip under root)."""
    split = split or profile.split
    root = Path((profile.test_root if split == "test" and profile.test_root else profile.root) or ".").expanduser()
    if profile.source == "celeba":
        for cand in (root / "img_align_celeba", root / "img_align_celeba.zip"):
            if cand.exists():
                return cand
    return root


def _hint(profile: DatasetProfile) -> str:
    if profile.files_hint:
        return f"put {profile.files_hint} there, or pass --set dataset.root=DIR_OR_ZIP"
    return "pass --set dataset.root=DIR_OR_ZIP"


def find_images(profile: DatasetProfile, split: str | None = None) -> ImageSource:
    """The split's source (folder or zip); DataError with the one-line "put these files there" when missing."""
    what = f"{WHAT.get(profile.source, 'image folder')} ({profile.name})" if profile.source != "image_folder" \
        else "image folder"
    return open_source(data_root(profile, split), what=what, hint=_hint(profile))


def class_of(names: list[str]) -> tuple[list[str], np.ndarray]:
    """(class names, label per name): the first path component below the names' common folder."""
    parts = [n.split("/") for n in names]
    common = os.path.commonprefix([p[:-1] for p in parts])
    depth = len(common)
    tops = []
    for n, p in zip(names, parts, strict=False):
        if len(p) <= depth + 1:
            raise DataError(f"labels: subfolders, but {n} is not inside a class folder")
        tops.append(p[depth])
    classes = sorted(set(tops))
    index = {c: i for i, c in enumerate(classes)}
    return classes, np.array([index[t] for t in tops], dtype=np.int64)


class FolderItems:
    """The files of one split: the source, their names (in order), labels or None, and the class names."""

    def __init__(self, profile: DatasetProfile, split: str | None = None, source: ImageSource | None = None):
        split = split or profile.split
        self.source = source if source is not None else find_images(profile, split)
        names = [e.name for e in self.source.entries]
        labels = None
        self.classes: list[str] = []
        if profile.labels == "subfolders":
            self.classes, labels = class_of(names)
            if profile.num_classes != len(self.classes):
                raise DataError(f"dataset '{profile.name}': {len(self.classes)} class folders under "
                                f"{self.source.path} ({', '.join(self.classes[:4])}{', ...' if len(self.classes) > 4 else ''}), "
                                f"but num_classes is {profile.num_classes}")
        if not (split == "test" and profile.test_root):
            keep = split_indices(names, profile.heldout, profile.split_seed, split)
            names = [names[i] for i in keep]
            labels = labels[keep] if labels is not None else None
            if not names:
                raise DataError(f"dataset '{profile.name}': the {split} split of {self.source.path} is empty "
                                f"(heldout {profile.heldout:g})")
        self.names = names
        self.labels = labels
        self.split = split


def folder_items(profile: DatasetProfile, split: str | None = None) -> FolderItems:
    return FolderItems(profile, split)


def load_image_folder_set(profile: DatasetProfile, progress: Progress | None = None,
                          workers: int | None = None) -> MappedImageSet:
    """The split's images, preprocessed once into the cache and memory-mapped (see the module docstring)."""
    items = FolderItems(profile)
    target = cache_dir_for(profile, items.source.content_key())
    if not (target / "meta.json").exists():
        index = {n: i for i, n in enumerate(items.names)}
        shape = (profile.channels, profile.resolution, profile.resolution)
        fn = functools.partial(load_chunk, items.source.spec, profile.resolution, profile.channels, profile.crop)
        with CacheWriter(target, len(items.names), shape) as writer:
            for results in map_chunks(fn, items.names, workers=workers, progress=progress,
                                      what=f"preprocessing {profile.name} ({profile.resolution}px)"):
                good = [(n, a) for n, a, _ in results if a is not None]
                for n, a, reason in results:
                    if a is None:
                        writer.skip(n, reason)
                if good:
                    labels = (items.labels[[index[n] for n, _ in good]] if items.labels is not None else None)
                    writer.append(np.stack([a for _, a in good]), labels)
            writer.commit({"dataset": profile.name, "source": items.source.spec.path, "split": items.split,
                           "classes": items.classes})
    return open_cached(target, name=profile.name, num_classes=profile.num_classes if items.labels is not None else 0)
