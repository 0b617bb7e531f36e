"""Decoding one image file, and the preprocessing protocol of playbook 1.1 (crop to a square, area downsample).

    decode(data) -> PIL image, fully loaded;  raises Unreadable(reason) with one of REASONS
    preprocess(img, resolution, channels, crop) -> PIL image of resolution x resolution

A file that does not decode is never fatal: the data check lists it with its reason, the cache builder skips it and
records it (playbook 1.2: "corrupt_count / K" with the distribution of reasons).

Crops:
    center   the largest centred square (playbook 1.1)
    celeba   the 128 x 128 box centred at (x 89, y 121) of the 178 x 218 aligned CelebA images (P2's, the DDIM
             code's CelebA-64 crop), scaled with the image when its size differs
    none     no crop: the whole image is resized to a square

Downsampling is PIL's BOX filter (each output pixel the mean of its footprint: the area downsample of 1.1); an image
smaller than the resolution is upsampled with BICUBIC instead.
"""

from __future__ import annotations

import io

__all__ = ["Unreadable", "REASONS", "decode", "preprocess", "load_chunk", "MODES"]

MODES = {1: "L", 3: "RGB", 4: "RGBA"}
REASONS = ("zero size", "unsupported format", "truncated", "decode error")
CELEBA_BOX = (89, 121, 128, 178, 218)               # centre x, centre y, side, on 178 x 218 (P2 / the DDIM code)


class Unreadable(Exception):
    """`reason` is one of REASONS; `detail` the decoder's own words."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def decode(data: bytes, draft: int | None = None):
    """Bytes -> a fully decoded PIL image (`.load()` runs, so truncation is found here, not at training time).

    `draft`: let a JPEG decode at a reduced scale (libjpeg's DCT scaling, down to 1/8) as long as both sides stay
    >= draft; every byte is still decoded (truncation is still found). The full size is `img.info["full_size"]`."""
    from PIL import Image, UnidentifiedImageError
    if len(data) == 0:
        raise Unreadable("zero size")
    try:
        img = Image.open(io.BytesIO(data))
        full = img.size
        if draft and img.format == "JPEG":
            img.draft(img.mode if img.mode in ("L", "RGB") else "RGB", (draft, draft))
    except UnidentifiedImageError as e:
        raise Unreadable("unsupported format", str(e).split(" <")[0]) from None
    except Exception as e:                                      # a header PIL chokes on
        raise Unreadable("decode error", f"{type(e).__name__}: {e}") from None
    try:
        img.load()
    except (OSError, SyntaxError, ValueError) as e:
        text = str(e)
        truncated = "truncated" in text or "broken data stream" in text or "unexpected end" in text.lower()
        raise Unreadable("truncated" if truncated else "decode error", text) from None
    except Exception as e:
        raise Unreadable("decode error", f"{type(e).__name__}: {e}") from None
    if img.width == 0 or img.height == 0:
        raise Unreadable("zero size", f"{img.width}x{img.height} pixels")
    img.info["full_size"] = full
    return img


def _crop_box(w: int, h: int, crop: str) -> tuple[int, int, int, int] | None:
    if crop == "center":
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        return (left, top, left + s, top + s)
    if crop == "celeba":
        cx, cy, side, W0, H0 = CELEBA_BOX
        sx, sy = w / W0, h / H0
        half = side / 2 * min(sx, sy)
        x0, y0 = round(cx * sx - half), round(cy * sy - half)
        s = round(2 * half)
        x0, y0 = max(0, min(x0, w - s)), max(0, min(y0, h - s))
        return (x0, y0, x0 + s, y0 + s)
    return None


def preprocess(img, resolution: int, channels: int, crop: str):
    """PIL image -> PIL image of resolution x resolution in the profile's mode (playbook 1.1)."""
    from PIL import Image
    if img.mode in ("P", "PA"):                                 # palette (with transparency): expand first
        img = img.convert("RGBA")
    img = img.convert(MODES[channels])
    box = _crop_box(*img.size, crop)
    if box is not None:
        img = img.crop(box)
    smaller = min(img.size) < resolution
    resample = Image.Resampling.BICUBIC if smaller else Image.Resampling.BOX
    return img.resize((resolution, resolution), resample=resample)


def load_chunk(spec, resolution: int, channels: int, crop: str, names) -> list[tuple[str, object, str]]:
    """Cache-builder worker: (name, uint8 [C, H, W] array or None, reason) for each name, in order."""
    import numpy as np

    from .sources import read_entry
    out = []
    for name in names:
        try:
            img = decode(read_entry(spec, name))
            arr = np.asarray(preprocess(img, resolution, channels, crop), dtype=np.uint8)
            arr = arr.reshape(resolution, resolution, channels).transpose(2, 0, 1)
            out.append((name, np.ascontiguousarray(arr), ""))
        except Unreadable as e:
            out.append((name, None, str(e)))
        except OSError as e:
            out.append((name, None, f"read error: {e}"))
    return out
