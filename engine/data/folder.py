"""Any folder of images (playbook 1.1): center crop to a square, area downsample to the resolution, [-1,1].

Images (png, jpg, jpeg, webp; searched recursively, sorted by path so the order is reproducible) are decoded once
into memory as uint8, resolution^2 * channels bytes each. The area downsample is PIL's BOX filter, which averages
each output pixel's footprint; an image smaller than the resolution is upsampled with BICUBIC instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from difftui.engine.config import DatasetProfile

from .images import DataError, ImageSet

__all__ = ["load_image_folder_set", "find_images", "preprocess", "EXTENSIONS"]

EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")
_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def find_images(profile: DatasetProfile) -> list[Path]:
    root = Path(profile.root or ".").expanduser()
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist; pass --set dataset.root=DIR")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file())
    if not files:
        raise DataError(f"image folder {root} has no {'/'.join(e[1:] for e in EXTENSIONS)} images")
    return files


def preprocess(img, resolution: int, channels: int, crop: str):
    """PIL image -> PIL image of resolution x resolution in the profile's mode (playbook 1.1)."""
    from PIL import Image
    img = img.convert(_MODES[channels])
    if crop == "center":
        w, h = img.size
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        img = img.crop((left, top, left + s, top + s))
    smaller = min(img.size) < resolution
    resample = Image.Resampling.BICUBIC if smaller else Image.Resampling.BOX
    return img.resize((resolution, resolution), resample=resample)


def load_image_folder_set(profile: DatasetProfile) -> ImageSet:
    from PIL import Image, UnidentifiedImageError
    files = find_images(profile)
    out = np.empty((len(files), profile.resolution, profile.resolution, profile.channels), dtype=np.uint8)
    for i, path in enumerate(files):
        try:
            with Image.open(path) as img:
                arr = np.asarray(preprocess(img, profile.resolution, profile.channels, profile.crop))
        except (OSError, UnidentifiedImageError) as e:
            raise DataError(f"image folder: cannot read {path} ({e})") from None
        out[i] = arr.reshape(profile.resolution, profile.resolution, profile.channels)
    images = torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()
    return ImageSet(images, None, name=profile.name, num_classes=0)
