"""ImageNet-64 from the downsampled-ImageNet npz batches (Chrabaszcz et al. 2017; P1's and P3's ImageNet-64).

    <root>/train_data_batch_1.npz ... train_data_batch_10.npz    ~128K images each, 1,281,167 in all
    <root>/val_data.npz                                           50,000 images: the test split
    each npz: 'data' uint8 [N, 12288] = 3 x 64 x 64 channel-major rows, 'labels' 1..1000 (1-based), 'mean'

At 64x64 no resize is needed (playbook 1.1); labels become 0-based. 1.28M images are 15.7 GB, more than a start
should load, so the batches are copied once (one at a time) into the preprocessed cache and memory-mapped from then
on (cache.py). A missing file raises the one-line "put these files there" DataError.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from difftui.engine.config.model import DatasetProfile

from .cache import CacheWriter, Progress, cache_dir_for
from .images import DataError, area_resize
from .mapped import MappedImageSet, open_cached

__all__ = ["load_imagenet64_set", "check_imagenet64", "imagenet64_files", "TRAIN_FILES", "VAL_FILE"]

TRAIN_FILES = tuple(f"train_data_batch_{i}.npz" for i in range(1, 11))
VAL_FILE = "val_data.npz"
SIDE = 64


def imagenet64_files(profile: DatasetProfile, split: str | None = None) -> list[Path]:
    root = Path(profile.root or ".").expanduser()
    names = TRAIN_FILES if (split or profile.split) == "train" else (VAL_FILE,)
    return [root / n for n in names]


def _missing_message(profile: DatasetProfile, missing: list[Path]) -> str:
    root = Path(profile.root or ".").expanduser()
    return (f"ImageNet-64 not found: {missing[0].name}{' and others' if len(missing) > 1 else ''} missing in {root}/ "
            f"(expected train_data_batch_1..10.npz and val_data.npz of the downsampled ImageNet 64x64, "
            f"Imagenet64_train_part1/2_npz and Imagenet64_val_npz); put these files there, or pass "
            f"--set dataset.root=DIR")


def check_imagenet64(profile: DatasetProfile, split: str | None = None) -> list[Path]:
    files = imagenet64_files(profile, split)
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise DataError(_missing_message(profile, missing))
    return files


def _content_key(files: list[Path]) -> str:
    import hashlib
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f.resolve()}\t{st.st_size}\t{st.st_mtime:.3f}\n".encode())
    return h.hexdigest()


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path) as z:
            data, labels = z["data"], np.asarray(z["labels"], dtype=np.int64)
    except (OSError, ValueError, KeyError) as e:
        raise DataError(f"ImageNet-64 file {path} is unreadable ({type(e).__name__}: {e})") from None
    if data.ndim != 2 or data.shape[1] != 3 * SIDE * SIDE or data.dtype != np.uint8 or len(labels) != len(data):
        raise DataError(f"ImageNet-64 file {path}: expected 'data' uint8 [N, 12288] and N 'labels', got "
                        f"{data.dtype} {list(data.shape)} and {len(labels)} labels")
    if labels.min() < 1 or labels.max() > 1000:
        raise DataError(f"ImageNet-64 file {path}: labels must be 1..1000 (1-based), got {labels.min()}..{labels.max()}")
    return data.reshape(-1, 3, SIDE, SIDE), labels - 1


def batch_sizes(files: list[Path]) -> list[int]:
    """Rows per file, from the small 'labels' member only (the images are not decompressed)."""
    sizes = []
    for f in files:
        try:
            with np.load(f) as z:
                sizes.append(len(z["labels"]))
        except (OSError, ValueError, KeyError) as e:
            raise DataError(f"ImageNet-64 file {f} is unreadable ({type(e).__name__}: {e})") from None
    return sizes


def load_imagenet64_set(profile: DatasetProfile, progress: Progress | None = None) -> MappedImageSet:
    if profile.channels != 3:
        raise DataError(f"dataset '{profile.name}': ImageNet-64 is RGB; set channels 3 (got {profile.channels})")
    files = check_imagenet64(profile)
    target = cache_dir_for(profile, _content_key(files))
    if not (target / "meta.json").exists():
        total = sum(batch_sizes(files))
        shape = (3, profile.resolution, profile.resolution)
        done = 0
        if progress:
            progress(0, total, f"copying ImageNet-64 {profile.split} batches into the cache")
        with CacheWriter(target, total, shape) as writer:
            for f in files:
                images, labels = _read_batch(f)
                for start in range(0, len(images), 8192):
                    part = images[start:start + 8192]
                    if profile.resolution != SIDE:
                        import torch
                        part = area_resize(torch.from_numpy(part), profile.resolution).numpy()
                    writer.append(part, labels[start:start + 8192])
                    done += len(part)
                    if progress:
                        progress(done, total, f"copying ImageNet-64 {profile.split} batches into the cache")
            writer.commit({"dataset": profile.name, "source": str(Path(profile.root or ".").expanduser()),
                           "split": profile.split, "files": [f.name for f in files]})
    return open_cached(target, name=profile.name, num_classes=profile.num_classes)
