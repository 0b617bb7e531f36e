"""Perceptual hashes and near-duplicate search (playbook 1.2: near-duplicates by a perceptual hash, with the algorithm
and the threshold written next to the ratio).

pHash (the DCT hash of Zauner 2010, as the `imagehash` package computes it):
    1. grey levels (ITU-R 601 luma), area-resized to 32 x 32
    2. 2-D DCT-II (orthonormal) of the 32 x 32 block
    3. the 8 x 8 lowest frequencies (DC included), each bit = coefficient > their median
    -> 64 bits, stored as a uint64

Two images are near-duplicates when the Hamming distance of their hashes is <= NEAR_DUP_BITS. The search is exact
(every pair within the threshold is found) without comparing all pairs: split the 64 bits into NEAR_DUP_BITS + 1
bands; two hashes within the threshold agree exactly on at least one band (pigeonhole), so only hashes that share a
band value are compared.
"""

from __future__ import annotations

import numpy as np

__all__ = ["phash", "phash_array", "hamming", "near_pairs", "NEAR_DUP_BITS", "PHASH_ALGORITHM"]

NEAR_DUP_BITS = 8                                   # Hamming distance <= 8 of 64 bits (12.5%)
PHASH_ALGORITHM = "pHash: 32x32 grey area resize, 2-D DCT-II, 8x8 low band > median (64 bits)"


def _dct_basis(n: int = 32, keep: int = 8) -> np.ndarray:
    """The first `keep` rows of the orthonormal DCT-II matrix of size n (scipy.fft.dct(..., norm="ortho"))."""
    k, i = np.arange(keep)[:, None], np.arange(n)[None, :]
    basis = np.sqrt(2 / n) * np.cos(np.pi * (2 * i + 1) * k / (2 * n))
    basis[0] /= np.sqrt(2)
    return basis


_BASIS = _dct_basis()


def _dct_bits(grey32: np.ndarray) -> np.ndarray:
    """[N, 32, 32] float -> [N] uint64 hashes (bit 63 = coefficient (0, 0), row-major over the 8 x 8 band)."""
    # The 8 x 8 low band of the 2-D DCT-II: B X B^T with B the first 8 rows of the DCT matrix.
    coeffs = (_BASIS @ grey32 @ _BASIS.T).reshape(len(grey32), 64)
    ordered = np.sort(coeffs, axis=1)
    median = (ordered[:, 31] + ordered[:, 32]) / 2
    bits = np.packbits(coeffs > median[:, None], axis=1)                     # [N, 8] bytes, big-endian bits
    return bits.view(">u8").reshape(-1).astype(np.uint64)


def phash(img) -> int:
    """The 64-bit pHash of a PIL image."""
    from PIL import Image
    grey = np.asarray(img.convert("L").resize((32, 32), Image.Resampling.BOX), dtype=np.float64)
    return int(_dct_bits(grey[None])[0])


def phash_array(images: np.ndarray) -> np.ndarray:
    """pHashes of uint8 images [N, C, H, W] (C 1 or 3; the array data sets), computed as `phash` does."""
    from PIL import Image
    out = np.empty(len(images), dtype=np.uint64)
    for start in range(0, len(images), 4096):
        chunk = images[start:start + 4096]
        greys = np.empty((len(chunk), 32, 32), dtype=np.float64)
        for i, a in enumerate(chunk):
            pil = Image.fromarray(a[0] if a.shape[0] == 1 else np.ascontiguousarray(a.transpose(1, 2, 0)))
            greys[i] = np.asarray(pil.convert("L").resize((32, 32), Image.Resampling.BOX), dtype=np.float64)
        out[start:start + len(chunk)] = _dct_bits(greys)
    return out


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.bitwise_count(np.bitwise_xor(a, b)).astype(np.int64)


def near_pairs(hashes: np.ndarray, threshold: int = NEAR_DUP_BITS, other: np.ndarray | None = None):
    """Index pairs (i, j) with Hamming(h_i, h_j) <= threshold.

    Within one set (other None): i < j over `hashes`. Across two sets: i indexes `hashes`, j indexes `other`.
    Returns an int64 array [P, 2], sorted.
    """
    h = np.asarray(hashes, dtype=np.uint64)
    g = h if other is None else np.asarray(other, dtype=np.uint64)
    bands = threshold + 1
    edges = np.linspace(0, 64, bands + 1).round().astype(int)
    found = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=False):
        mask = np.uint64((1 << (hi - lo)) - 1)
        ka = (h >> np.uint64(lo)) & mask
        kb = ka if other is None else (g >> np.uint64(lo)) & mask
        order_b = np.argsort(kb, kind="stable")
        sorted_b = kb[order_b]
        start = np.searchsorted(sorted_b, ka, side="left")
        stop = np.searchsorted(sorted_b, ka, side="right")
        counts = stop - start
        if counts.sum() == 0:
            continue
        i = np.repeat(np.arange(len(h)), counts)
        offs = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        j = order_b[np.repeat(start, counts) + offs]
        keep = (i < j) if other is None else np.ones(len(i), bool)
        i, j = i[keep], j[keep]
        close = hamming(h[i], g[j]) <= threshold
        found.append(np.stack([i[close], j[close]], axis=1))
    if not found:
        return np.zeros((0, 2), dtype=np.int64)
    pairs = np.unique(np.concatenate(found), axis=0)
    return pairs.astype(np.int64)
