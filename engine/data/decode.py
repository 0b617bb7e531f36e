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

High bit depths (issue 16 item 4): PIL decodes a 16-bit grey PNG as mode I;16 (or I;16B, I), whose values
convert("L"/"RGB") clips at 255, so any image brighter than 1/256 of full scale would train as a white square. decode
scales such images to 8 bits by the high byte (v >> 8, what PIL itself does for 16-bit colour PNGs, so grey and
colour 16-bit files agree) and says so in `img.info["bit_depth"]` (16, or 32 for a 32-bit integer image within
0..65535); the data check lists them. Float pixels (mode F) and integers outside 0..65535 have no fixed range to
scale from: they are refused ("unsupported format") with that reason.

Downsampling is PIL's BOX filter (each output pixel the mean of its footprint: the area downsample of 1.1); an image
smaller than the resolution is upsampled with BICUBIC instead.
"""

from __future__ import annotations

import io

__all__ = ["Unreadable", "REASONS", "decode", "preprocess", "load_chunk", "MODES", "declared_bit_depth",
           "DECODE_VERSION"]

DECODE_VERSION = 2                                  # 2: 16-bit images scaled to 8 bits, not clipped (issue 16 item 4)

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
    depth = declared_bit_depth(img, data)
    if img.mode.startswith("I") or img.mode == "F":
        img = _to_8bit(img, depth)
    img.info["full_size"] = full
    img.info["bit_depth"] = depth
    return img


def declared_bit_depth(img, data: bytes) -> int:
    """Bits per channel the file declares: a PNG's IHDR bit depth, a TIFF's BitsPerSample, else the PIL mode's."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) > 24:
        return max(8, data[24])                           # 1/2/4-bit palettes and greys expand to 8 bits
    tags = getattr(img, "tag_v2", None)
    if tags is not None and 258 in tags:
        bits = tags[258]
        return max(8, int(bits[0] if isinstance(bits, tuple) else bits))
    return 16 if img.mode.startswith("I;16") else 32 if img.mode in ("I", "F") else 8


def _to_8bit(img, depth: int):
    """A grey image of 16- or 32-bit pixels -> mode L by the high byte of its 16-bit value (module docstring)."""
    import numpy as np
    from PIL import Image
    mode = img.mode
    if mode == "F":
        raise Unreadable("unsupported format", "32-bit float pixels (mode F) have no fixed range to scale to 8 bits; "
                                               "save the image as an 8- or 16-bit PNG")
    values = np.asarray(img).astype(np.int64)                 # I;16B and I;16L come out in native byte order
    low, high = (int(values.min()), int(values.max())) if values.size else (0, 0)
    if low < 0 or high > 65535:
        raise Unreadable("unsupported format", f"{depth}-bit integer pixels (mode {mode}) range {low}..{high}, "
                                               f"outside 0..65535: no fixed range to scale to 8 bits")
    if depth <= 8 and high <= 255:                            # 8-bit values held in a 32-bit image: kept as they are
        out = Image.fromarray(values.astype(np.uint8))
    else:
        out = Image.fromarray((values >> 8).astype(np.uint8))
    out.info.update(img.info)
    out.format = img.format
    return out


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
