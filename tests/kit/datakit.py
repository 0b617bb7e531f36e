"""Small data sets in their real on-disk formats, for the data tests: an image folder with a corrupt file, a
duplicate and a near-duplicate, a zip archive of it, the downsampled-ImageNet npz batches."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image


def smooth_image(seed: int, size=(48, 40)) -> Image.Image:
    """A smooth random RGB image (bicubic upsampling of 6x6 noise): distinct seeds give distinct pHashes."""
    rng = np.random.default_rng(seed)
    small = (rng.random((6, 6, 3)) * 255).astype(np.uint8)
    return Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def jpeg_bytes(img: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


# What `write_messy_folder` puts on disk, and what the quality table must count.
MESSY = {
    "files": 13,                 # image-named files
    "readable": 10,
    "corrupt": {"truncated": 1, "zero size": 1, "unsupported format": 1},
    "exact_groups": 1, "exact_redundant": 1,
    "near_clusters": 1, "near_redundant": 1,
    "jpeg_qualities": [75, 90, 90],
    "classes": {"cat": 8, "dog": 5},
}


def write_messy_folder(root: Path) -> dict[str, bytes]:
    """Two class folders. 10 readable images: 6 distinct PNGs (seeds 0..5), a byte-identical copy of one, a 7th
    image saved as JPEG q90 twice at two sizes (a near-duplicate pair), and one more JPEG q75 image; plus a truncated
    PNG, an empty file and a text file named .png. Returns name -> bytes."""
    files: dict[str, bytes] = {}
    for i in range(4):
        files[f"cat/img{i}.png"] = png_bytes(smooth_image(i))
    for i in (4, 5):
        files[f"dog/img{i}.png"] = png_bytes(smooth_image(i))
    files["dog/copy_of_img0.png"] = files["cat/img0.png"]                   # exact duplicate
    files["cat/near_a.jpg"] = jpeg_bytes(smooth_image(6, (64, 64)), 90)
    files["dog/near_b.jpg"] = jpeg_bytes(smooth_image(6, (64, 64)).resize((56, 56), Image.Resampling.LANCZOS), 90)
    files["cat/other.jpg"] = jpeg_bytes(smooth_image(7, (30, 50)), 75)
    whole = png_bytes(smooth_image(8))
    files["cat/broken.png"] = whole[: len(whole) // 2]                        # truncated
    files["cat/empty.jpg"] = b""                                            # zero size
    files["dog/notes.png"] = b"these are notes, not an image\n" * 4         # unsupported format
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / "README.txt").write_text("not an image, not listed")
    return files


def zip_folder(folder: Path, archive: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, prefix + path.relative_to(folder).as_posix())
    return archive


def write_imagenet64_npz(root: Path, per_batch: int = 3, val: int = 4, seed: int = 0):
    """train_data_batch_1..10.npz and val_data.npz: 'data' uint8 [N, 12288] channel-major, 'labels' 1-based."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    train_rows, train_labels = [], []
    for i in range(1, 11):
        data = rng.integers(0, 256, size=(per_batch, 12288), dtype=np.uint8)
        labels = rng.integers(1, 1001, size=per_batch).tolist()
        np.savez(root / f"train_data_batch_{i}.npz", data=data, labels=labels, mean=data.mean(0))
        train_rows.append(data)
        train_labels += labels
    vdata = rng.integers(0, 256, size=(val, 12288), dtype=np.uint8)
    vlabels = rng.integers(1, 1001, size=val).tolist()
    np.savez(root / "val_data.npz", data=vdata, labels=vlabels)
    return np.concatenate(train_rows), np.array(train_labels), vdata, np.array(vlabels)


def write_tiny_cifar10(root: Path, per_batch: int = 4, seed: int = 0) -> np.ndarray:
    """tests/kit/engine_testkit.py's tiny CIFAR-10 (one writer for the whole suite)."""
    import importlib.util
    import sys
    module = sys.modules.get("engine_testkit")
    if module is None:
        path = Path(__file__).parents[1] / "engine" / "engine_testkit.py"
        spec = importlib.util.spec_from_file_location("engine_testkit", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules["engine_testkit"] = module
        spec.loader.exec_module(module)
    return module.write_tiny_cifar10(root, per_batch=per_batch, seed=seed)
