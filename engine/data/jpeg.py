"""JPEG quality estimated from a file's quantisation tables (playbook 1.2: "JPEG quality / file size distribution").

An encoder that follows the IJG library (libjpeg, and so PIL, ImageMagick, most cameras' software) scales the two
standard tables of the JPEG spec (Annex K) by the quality q:

    scale = 5000 / q  if q < 50  else  200 - 2 q,        Q_i = clamp(floor((T_i * scale + 50) / 100), 1, 255)

ImageMagick's `identify -format %Q` estimates q by comparing the file's tables with these scaled tables (through
their sums and a hash). We do the same comparison directly: the estimate is the q in 1..100 whose scaled tables are
nearest (L1 distance of the sorted entries, so the zig-zag or natural order of the stored table does not matter) to
the file's luminance and chrominance tables. For an IJG-encoded file the match is exact (distance 0); a file with
custom tables gets the nearest q and `exact=False`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["estimate_quality", "ijg_tables", "STD_LUMINANCE", "STD_CHROMINANCE"]

# JPEG spec Annex K, tables K.1 and K.2 (natural order).
STD_LUMINANCE = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], dtype=np.int64)
STD_CHROMINANCE = np.array([
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99] + [99] * 32, dtype=np.int64)


def ijg_tables(q: int) -> tuple[np.ndarray, np.ndarray]:
    """The IJG library's luminance and chrominance tables at quality q (libjpeg's jpeg_quality_scaling)."""
    scale = 5000 // q if q < 50 else 200 - 2 * q
    lum = np.clip((STD_LUMINANCE * scale + 50) // 100, 1, 255)
    chrom = np.clip((STD_CHROMINANCE * scale + 50) // 100, 1, 255)
    return lum, chrom


_Q = np.arange(1, 101)
_LUM = np.stack([np.sort(ijg_tables(int(q))[0]) for q in _Q])          # [100, 64], each row sorted
_CHROM = np.stack([np.sort(ijg_tables(int(q))[1]) for q in _Q])


def estimate_quality(tables: dict[int, list[int]] | None) -> tuple[int, bool] | None:
    """(q, exact) for a PIL JpegImageFile's `quantization` dict; None when the file carries no tables."""
    if not tables or 0 not in tables:
        return None
    distance = np.abs(_LUM - np.sort(np.asarray(tables[0], dtype=np.int64))).sum(axis=1)
    if 1 in tables:
        distance = distance + np.abs(_CHROM - np.sort(np.asarray(tables[1], dtype=np.int64))).sum(axis=1)
    best = int(np.argmin(distance))                                         # the lowest q among ties
    return int(_Q[best]), bool(distance[best] == 0)
