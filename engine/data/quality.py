"""The data-quality table (playbook 1.2 (2), 1.5, 1.6): what a data set is made of, measured before a large run.

    table = check_dataset(profile, sample=50_000, workers=None, progress=None)      # a JSON-able dict
    text  = quality_markdown(table)                                                  # the table for people

On a sample of K = 50,000 items of the training split (playbook 1.2: the order of P3's FID sample; all of them, K = |D|,
when there are fewer), drawn with a fixed seed:

    count, modality, scale tier   |D| of the splits; unconditional or class-conditional; 5e4 / 1e6 / 1e9 (1.2 (1))
    class balance                 items per class over the whole training split
    corrupt / unreadable          every sampled file fully decoded; each failure listed with its reason
                                  (zero size, unsupported format, truncated, decode error). Training skips them.
    bit depth                     files of more than 8 bits per channel (16-bit PNGs), listed: they train scaled
                                  to 8 bits by the high byte (decode.py); float pixels are refused as unreadable
    width, height, short side     Q1 / median / Q3 / p95 (numpy's linear percentiles), min, max
    file size, JPEG quality       the same quantiles; quality estimated from each JPEG's quantisation tables (jpeg.py)
    exact duplicates              equal BLAKE2b-128 digests of the file bytes (of the decoded pixels for the
                                  array data sets: digits, CIFAR-10, ImageNet-64)
    near-duplicates               pHash (phash.py) Hamming distance <= 8 of 64 bits, among byte-distinct images;
                                  clusters by single linkage
    train/test overlap            test items (sampled the same way) with an exact or near copy in the train sample

Decoding runs in a process pool (pool.py); the table is cached under the cache root by a key of the data set's
contents (every file's name, size and mtime, or the array files' sizes and mtimes), the split protocol, K and the
algorithm version, so checking an unchanged data set again is instant.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from difftui.engine.atomic import atomic_write_text
from difftui.engine.config.model import DatasetProfile
from difftui.engine.numbers import format_number

from .cache import Progress, cache_root
from .decode import REASONS, Unreadable, decode
from .errors import DataError
from .jpeg import estimate_quality
from .phash import NEAR_DUP_BITS, PHASH_ALGORITHM, near_pairs, phash, phash_array
from .pool import map_chunks
from .sources import read_entry

__all__ = ["check_dataset", "cached_quality", "quality_markdown", "scale_tier", "QUALITY_VERSION", "SAMPLE_K",
           "BYTE_HASH"]

QUALITY_VERSION = 2                                 # 2: the bit depth of each file
SAMPLE_K = 50_000                                   # playbook 1.2 (2): K = 50,000, or K = |D| when smaller
SAMPLE_SEED = 0
BYTE_HASH = "BLAKE2b-128 of the file bytes"
PIXEL_HASH = "BLAKE2b-128 of the stored pixels"
EXAMPLES = 10
DRAFT = 64                                          # JPEGs decode at 1/2..1/8 scale (>= 64 px): the pHash needs 32


def scale_tier(n: int) -> str:
    """Playbook 1.2 (1): the nearest of 5e4 (CIFAR-10), 1e6 (ImageNet), 1e9 (text-image pairs), in log scale."""
    tiers = (("5e4", 5e4), ("1e6", 1e6), ("1e9", 1e9))
    return min(tiers, key=lambda t: abs(np.log10(max(n, 1)) - np.log10(t[1])))[0]


SCALE_NOTE = {"5e4": "CIFAR-10 level", "1e6": "ImageNet level", "1e9": "text-to-image level (billions of pairs)"}


#----------------------------------------------------------------------------
# Per-item records.

def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _inspect_chunk(spec, names) -> list[dict[str, Any]]:
    """Worker: decode each file fully and measure it."""
    out = []
    for name in names:
        rec: dict[str, Any] = {"name": name}
        try:
            data = read_entry(spec, name)
        except OSError as e:
            rec.update(ok=False, reason="decode error", detail=f"read failed: {e}", size=0)
            out.append(rec)
            continue
        rec["size"] = len(data)
        rec["hash"] = _digest(data)
        try:
            img = decode(data, draft=DRAFT)
        except Unreadable as e:
            rec.update(ok=False, reason=e.reason, detail=e.detail)
            out.append(rec)
            continue
        w, h = img.info["full_size"]
        rec.update(ok=True, w=w, h=h, mode=img.mode, format=img.format or "", depth=img.info.get("bit_depth", 8))
        if img.format == "JPEG":
            q = estimate_quality(getattr(img, "quantization", None))
            if q is not None:
                rec["q"], rec["q_exact"] = q
        rec["phash"] = phash(img)
        out.append(rec)
    return out


def _array_records(images: np.ndarray, prefix: str) -> list[dict[str, Any]]:
    """Records for uint8 images [N, C, H, W] of an array data set (names are the item indices)."""
    hashes = phash_array(images)
    n, _, h, w = images.shape
    return [{"name": f"{prefix}{i}", "ok": True, "w": w, "h": h, "hash": _digest(images[i].tobytes()),
             "phash": int(hashes[i])} for i in range(n)]


#----------------------------------------------------------------------------
# What the check reads.

class _Items:
    """The train and test items of a profile, as file names (with their source) or as uint8 arrays."""

    def __init__(self, profile: DatasetProfile, progress: Progress | None):
        self.profile = profile
        self.kind = "files" if profile.source in ("image_folder", "celeba") else "arrays"
        self.labels: np.ndarray | None = None
        self.classes: list[str] = []
        self.test_what = ""
        if self.kind == "files":
            import dataclasses

            from .folder import FolderItems
            train = FolderItems(dataclasses.replace(profile, split="train"))
            self.train_source, self.train_names = train.source, train.names
            self.labels, self.classes = train.labels, train.classes
            self.test_source, self.test_names = None, []
            if profile.test_root or profile.heldout > 0:
                same = None if profile.test_root else self.train_source           # one listing of the folder
                test = FolderItems(dataclasses.replace(profile, split="test"), source=same)
                self.test_source, self.test_names = test.source, test.names
                self.test_what = (f"test_root {test.source.path}" if profile.test_root else
                                  f"held-out {profile.heldout:.0%} (split_seed {profile.split_seed})")
            self.where = f"{self.train_source.spec.kind} {self.train_source.path}"
            self.content = [self.train_source.content_key()] + (
                [self.test_source.content_key()] if self.test_source is not None else [])
            self.n_train, self.n_test = len(self.train_names), len(self.test_names)
        else:
            self.where, self.content = _array_where_and_key(profile)
            self._progress = progress
            self._train = self._test = None
            self.n_train = self.n_test = -1                  # known once loaded

    # Arrays are loaded on demand (the key of a cached table needs only the file stats).
    def load_arrays(self) -> None:
        import dataclasses

        from . import build_pixels
        p = self.profile
        train = build_pixels(dataclasses.replace(p, split="train", latents=False), self._progress)
        self._train = _as_uint8(train)
        self.labels = train.labels.numpy() if train.labels is not None else None
        self.n_train = len(self._train)
        has_test = p.source in ("cifar10", "imagenet64") or p.heldout > 0
        if has_test:
            test = build_pixels(dataclasses.replace(p, split="test", latents=False), self._progress)
            self._test = _as_uint8(test)
            self.test_what = {"cifar10": "test_batch", "imagenet64": "val_data.npz"}.get(
                p.source, f"held-out {p.heldout:.0%} (split_seed {p.split_seed})")
        self.n_test = 0 if self._test is None else len(self._test)


def _as_uint8(data) -> np.ndarray:
    import torch
    x = data.images
    if x.dtype != torch.uint8:
        x = ((x.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return x.numpy()


def _array_where_and_key(profile: DatasetProfile) -> tuple[str, list[str]]:
    if profile.source == "digits":
        import sklearn
        return "scikit-learn's bundled digits", [f"sklearn-digits-{sklearn.__version__}"]
    if profile.source == "cifar10":
        from .cifar import FOLDER, check_cifar10, cifar_root
        check_cifar10(profile)
        folder = cifar_root(profile) / FOLDER
        files = sorted(folder.iterdir())
    elif profile.source == "imagenet64":
        from .imagenet64 import check_imagenet64
        files = check_imagenet64(profile, "train") + check_imagenet64(profile, "test")
        folder = files[0].parent
    else:
        raise DataError(f"dataset '{profile.name}': unknown source {profile.source!r}")
    key = hashlib.sha256()
    for f in files:
        st = f.stat()
        key.update(f"{f.name}\t{st.st_size}\t{st.st_mtime:.3f}\n".encode())
    return f"{profile.source} files under {folder}", [key.hexdigest()]


def _sample(n: int, k: int) -> np.ndarray:
    if n <= k:
        return np.arange(n)
    return np.sort(np.random.default_rng(SAMPLE_SEED).choice(n, size=k, replace=False))


#----------------------------------------------------------------------------
# Statistics.

def _quantiles(values) -> dict[str, float] | None:
    v = np.asarray(list(values), dtype=np.float64)
    if v.size == 0:
        return None
    q1, med, q3, p95 = np.percentile(v, [25, 50, 75, 95])
    return {"n": int(v.size), "min": float(v.min()), "q1": float(q1), "median": float(med), "q3": float(q3),
            "p95": float(p95), "max": float(v.max())}


class _UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _duplicates(recs: list[dict[str, Any]], algorithm: str) -> tuple[dict[str, Any], dict[str, Any], list[int]]:
    """(exact, near, representative record indices) among readable records."""
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(recs):
        groups.setdefault(r["hash"], []).append(i)
    exact_groups = [g for g in groups.values() if len(g) > 1]
    reps = [g[0] for g in groups.values()]
    exact = {"algorithm": algorithm, "groups": len(exact_groups),
             "redundant": sum(len(g) - 1 for g in exact_groups),
             "examples": [[recs[i]["name"] for i in g] for g in exact_groups[:EXAMPLES]]}
    # Near-duplicates among byte-distinct images: equal pHashes, then pairs within the threshold.
    hashes = np.array([recs[i]["phash"] for i in reps], dtype=np.uint64)
    uniq, inverse = np.unique(hashes, return_inverse=True)
    uf = _UnionFind(len(reps))
    first_of: dict[int, int] = {}
    for k, u in enumerate(inverse.tolist()):
        if u in first_of:
            uf.union(first_of[u], k)
        else:
            first_of[u] = k
    for a, b in near_pairs(uniq, NEAR_DUP_BITS):
        uf.union(first_of[int(a)], first_of[int(b)])
    clusters: dict[int, list[int]] = {}
    for k in range(len(reps)):
        clusters.setdefault(uf.find(k), []).append(k)
    near_clusters = [c for c in clusters.values() if len(c) > 1]
    near = {"algorithm": PHASH_ALGORITHM, "threshold": f"Hamming distance <= {NEAR_DUP_BITS} of 64 bits",
            "clusters": len(near_clusters), "redundant": sum(len(c) - 1 for c in near_clusters),
            "among": len(reps),
            "examples": [[recs[reps[k]]["name"] for k in c] for c in near_clusters[:EXAMPLES]]}
    return exact, near, reps


def _overlap(train: list[dict[str, Any]], test: list[dict[str, Any]]) -> dict[str, Any]:
    train_hashes = {r["hash"]: r["name"] for r in train}
    exact = [(t["name"], train_hashes[t["hash"]]) for t in test if t["hash"] in train_hashes]
    exact_names = {a for a, _ in exact}
    rest = [t for t in test if t["name"] not in exact_names]
    near = []
    if rest and train:
        tr = np.array([r["phash"] for r in train], dtype=np.uint64)
        te = np.array([t["phash"] for t in rest], dtype=np.uint64)
        pairs = near_pairs(te, NEAR_DUP_BITS, other=tr)
        seen = set()
        for a, b in pairs.tolist():
            if a not in seen:
                seen.add(a)
                near.append((rest[a]["name"], train[b]["name"]))
    return {"test_checked": len(test), "exact": len(exact), "near": len(near),
            "examples": [list(p) for p in (exact + near)[:EXAMPLES]]}


def _class_balance(labels: np.ndarray | None, classes: list[str], num_classes: int) -> dict[str, Any] | None:
    if labels is None or num_classes == 0:
        return None
    counts = np.bincount(labels, minlength=num_classes)
    names = classes or [str(i) for i in range(num_classes)]
    order = np.argsort(counts, kind="stable")
    return {"classes": int(num_classes), "min": int(counts.min()), "median": float(np.median(counts)),
            "max": int(counts.max()), "empty": int((counts == 0).sum()),
            "imbalance": float(counts.max() / max(counts.min(), 1)),
            "smallest": [[names[i], int(counts[i])] for i in order[:3]],
            "largest": [[names[i], int(counts[i])] for i in order[::-1][:3]],
            "counts": [int(c) for c in counts]}


#----------------------------------------------------------------------------
# The check.

def _key(profile: DatasetProfile, content: list[str], sample: int) -> str:
    blob = json.dumps({"version": QUALITY_VERSION, "content": content, "sample": sample, "seed": SAMPLE_SEED,
                       "near_bits": NEAR_DUP_BITS, "source": profile.source, "heldout": profile.heldout,
                       "split_seed": profile.split_seed, "labels": profile.labels, "num_classes": profile.num_classes,
                       "test_root": profile.test_root}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _cache_file(profile: DatasetProfile, key: str) -> Path:
    return cache_root(profile) / "quality" / f"{profile.name}-{key[:16]}.json"


def cached_quality(profile: DatasetProfile, sample: int = SAMPLE_K, *, missing_ok: bool = True
                   ) -> dict[str, Any] | None:
    """The cached table of this data set's current contents, or None (never computes; lists the files only).
    Missing files: None, or the DataError itself with `missing_ok=False`."""
    try:
        items = _Items(profile, None)
    except DataError:
        if missing_ok:
            return None
        raise
    path = _cache_file(profile, _key(profile, items.content, sample))
    if path.is_file():
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None
    return None


def check_dataset(profile: DatasetProfile, sample: int = SAMPLE_K, *, workers: int | None = None,
                  progress: Progress | None = None, use_cache: bool = True) -> dict[str, Any]:
    """The quality table of `profile`'s data set (see the module docstring); cached by contents."""
    started = time.time()
    if sample < 1:
        raise DataError(f"data check: the sample size K must be >= 1 (got {sample})")
    items = _Items(profile, progress)
    key = _key(profile, items.content, sample)
    path = _cache_file(profile, key)
    if use_cache and path.is_file():
        try:
            table = json.loads(path.read_text())
            table["from_cache"] = True
            return table
        except (OSError, ValueError):
            pass

    if items.kind == "files":
        train_idx = _sample(items.n_train, sample)
        test_idx = _sample(items.n_test, sample)
        train_recs = _inspect(items.train_source.spec, [items.train_names[i] for i in train_idx], workers, progress,
                              f"checking {profile.name}: decoding the train sample")
        test_recs = (_inspect(items.test_source.spec, [items.test_names[i] for i in test_idx], workers, progress,
                              f"checking {profile.name}: decoding the test sample") if len(test_idx) else [])
    else:
        items.load_arrays()
        train_idx = _sample(items.n_train, sample)
        test_idx = _sample(items.n_test, sample)
        if progress:
            progress(0, len(train_idx) + len(test_idx), f"checking {profile.name}: hashing")
        train_recs = _array_records(items._train[train_idx], "train[")
        test_recs = _array_records(items._test[test_idx], "test[") if len(test_idx) else []
        for r in train_recs + test_recs:
            r["name"] += "]"
        if progress:
            progress(len(train_idx) + len(test_idx), len(train_idx) + len(test_idx), f"checking {profile.name}")

    ok = [r for r in train_recs if r["ok"]]
    bad = [r for r in train_recs if not r["ok"]]
    if progress:
        progress(0, 1, f"checking {profile.name}: duplicates")
    exact, near, _ = _duplicates(ok, BYTE_HASH if items.kind == "files" else PIXEL_HASH) if ok else ({"algorithm": BYTE_HASH, "groups": 0, "redundant": 0,
                                                   "examples": []}, {"algorithm": PHASH_ALGORITHM, "threshold":
                                                   f"Hamming distance <= {NEAR_DUP_BITS} of 64 bits", "clusters": 0,
                                                   "redundant": 0, "among": 0, "examples": []}, [])
    K = len(train_recs)
    reasons = {r: 0 for r in REASONS}
    for r in bad:
        reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    modality = (f"class-conditional ({profile.num_classes} classes)" if profile.num_classes > 0
                and items.labels is not None else "unconditional")
    tier = scale_tier(items.n_train + max(items.n_test, 0))
    table: dict[str, Any] = {
        "version": QUALITY_VERSION,
        "dataset": profile.name,
        "where": items.where,
        "items": {"train": items.n_train, "test": items.n_test, "test_split": items.test_what or "none"},
        "sample": {"K": K, "all": K == items.n_train, "requested": sample, "seed": SAMPLE_SEED},
        "modality": modality,
        "scale_tier": tier,
        "class_balance": _class_balance(items.labels, items.classes, profile.num_classes
                                        if items.labels is not None else 0),
        "corrupt": {"count": len(bad), "ratio": len(bad) / max(K, 1),
                    "reasons": {k: v for k, v in reasons.items() if v},
                    "files": [[r["name"], r["reason"], r.get("detail", "")] for r in bad]},
        "high_bit_depth": _high_bit_depth(ok),
        "width": _quantiles(r["w"] for r in ok),
        "height": _quantiles(r["h"] for r in ok),
        "short_side": _quantiles(min(r["w"], r["h"]) for r in ok),
        "file_size": _quantiles(r["size"] for r in train_recs if "size" in r and r["ok"]),
        "jpeg": None,
        "exact_duplicates": {**exact, "ratio": exact["redundant"] / max(len(ok), 1)},
        "near_duplicates": {**near, "ratio": near["redundant"] / max(len(ok), 1)},
        "train_test_overlap": (_overlap(ok, [t for t in test_recs if t["ok"]]) if test_recs else None),
        "seconds": 0.0,
        "key": key,
        "created": time.time(),
    }
    jpegs = [r for r in ok if r.get("format") == "JPEG"]
    if jpegs:
        qs = [r["q"] for r in jpegs if "q" in r]
        table["jpeg"] = {"count": len(jpegs), "quality": _quantiles(qs),
                         "not_ijg": sum(1 for r in jpegs if "q" in r and not r["q_exact"]),
                         "method": "nearest IJG-scaled standard tables (as ImageMagick's %Q)"}
    if table["train_test_overlap"] is not None:
        table["train_test_overlap"]["test_unreadable"] = sum(1 for t in test_recs if not t["ok"])
    table["seconds"] = round(time.time() - started, 3)
    table["images_per_s"] = round((len(train_recs) + len(test_recs)) / max(table["seconds"], 1e-9), 1)
    atomic_write_text(path, json.dumps(table))
    table["from_cache"] = False
    return table


def _high_bit_depth(ok: list[dict[str, Any]]) -> dict[str, Any]:
    """Readable files of more than 8 bits per channel: what training makes of them (decode.py scales them)."""
    deep = [r for r in ok if r.get("depth", 8) > 8]
    return {"count": len(deep), "bits": sorted({r["depth"] for r in deep}),
            "handling": "scaled to 8 bits by the high byte (v >> 8), not clipped",
            "files": [[r["name"], r["depth"]] for r in deep[:EXAMPLES * 5]]}


def _inspect(spec, names: list[str], workers: int | None, progress: Progress | None, what: str):
    fn = functools.partial(_inspect_chunk, spec)
    out: list[dict[str, Any]] = []
    for part in map_chunks(fn, names, workers=workers, progress=progress, what=what):
        out.extend(part)
    return out


#----------------------------------------------------------------------------
# The table for people (markdown: the CLI prints it with rich, the TUI shows it, the data card embeds it).

def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count:,} {one if count == 1 else (many or one + 's')}"


def quality_markdown(t: dict[str, Any], heading: str = "###") -> str:
    items, s = t["items"], t["sample"]
    K = s["K"]
    lines = [f"{heading} Data-quality table: {t['dataset']} (playbook 1.2, 1.5)", "",
             "| | |", "|---|---|",
             f"| source | {t['where']} |",
             f"| items | train {items['train']:,}; test {max(items['test'], 0):,} ({items['test_split']}) |",
             f"| sample | K = {K:,}" + (" = \\|D\\| (all of the train split)" if s["all"] else
                                      f" of {items['train']:,} (seed {s['seed']})") + " |",
             f"| modality | {t['modality']} |",
             f"| scale tier | {t['scale_tier']} ({SCALE_NOTE[t['scale_tier']]}; playbook 1.2) |"]
    cb = t.get("class_balance")
    if cb:
        lines.append(f"| class balance | {cb['classes']} classes; per class min {cb['min']:,}, median "
                     f"{cb['median']:,.0f}, max {cb['max']:,} (max/min {cb['imbalance']:.2f}); smallest "
                     + ", ".join(f"{n} {c:,}" for n, c in cb["smallest"]) + " |")
    c = t["corrupt"]
    reasons = ", ".join(f"{k} {v}" for k, v in c["reasons"].items()) or "none"
    lines.append(f"| corrupt / unreadable | {c['count']:,} of {K:,} ({_pct(c['ratio'])}): {reasons} |")
    deep = t.get("high_bit_depth")
    if deep and deep["count"]:
        lines.append(f"| bit depth | {deep['count']:,} of {K:,} files have "
                     + "/".join(str(b) for b in deep["bits"]) + f" bits per channel: {deep['handling']} |")
    else:
        lines.append("| bit depth | 8 bits per channel (no 16-bit files) |")
    e, n = t["exact_duplicates"], t["near_duplicates"]
    lines.append(f"| exact duplicates | {_n(e['groups'], 'group')}, {_n(e['redundant'], 'redundant copy', 'redundant copies')} "
                 f"({_pct(e['ratio'])} of readable); {e['algorithm']} |")
    lines.append(f"| near-duplicates | {_n(n['clusters'], 'cluster')}, {_n(n['redundant'], 'redundant image')} "
                 f"({_pct(n['ratio'])} of readable); {n['algorithm']}, {n['threshold']}, among byte-distinct "
                 f"images, single linkage |")
    o = t.get("train_test_overlap")
    if o is None:
        lines.append("| train/test overlap | no test split |")
    else:
        lines.append(f"| train/test overlap | of {o['test_checked']:,} test items: {o['exact']:,} exact and "
                     f"{o['near']:,} near copies of train-sample items"
                     + (f"; {o['test_unreadable']:,} unreadable" if o.get("test_unreadable") else "") + " |")
    j = t.get("jpeg")
    if j:
        lines.append(f"| JPEG | {j['count']:,} files; quality by {j['method']}"
                     + (f"; {j['not_ijg']:,} with non-IJG tables" if j["not_ijg"] else "") + " |")
    lines.append(f"| checked in | {t['seconds']:.1f} s ({format_number(t.get('images_per_s', 0))} images/s) |")
    lines += ["", "| distribution | Q1 | median | Q3 | p95 | min | max |", "|---|---:|---:|---:|---:|---:|---:|"]
    rows = [("width (px)", t["width"], 1), ("height (px)", t["height"], 1), ("short side (px)", t["short_side"], 1),
            ("file size (KiB)", t["file_size"], 1024), ("JPEG quality", (j or {}).get("quality"), 1)]
    for label, q, div in rows:
        if q is None:
            continue
        vals = [q[k] / div for k in ("q1", "median", "q3", "p95", "min", "max")]
        lines.append(f"| {label} | " + " | ".join(format_number(v) for v in vals) + " |")
    if c["files"]:
        lines += ["", f"Unreadable files ({len(c['files']):,}; skipped at training time):", ""]
        lines += [f"- `{name}`: {reason}" + (f" ({detail})" if detail else "") for name, reason, detail in
                  c["files"][:50]]
        if len(c["files"]) > 50:
            lines.append(f"- ... and {len(c['files']) - 50:,} more (`difftui data check --json`)")
    if deep and deep["files"]:
        lines += ["", f"Files of more than 8 bits per channel ({deep['count']:,}; trained {deep['handling']}):", ""]
        lines += [f"- `{name}`: {bits}-bit" for name, bits in deep["files"]]
        if deep["count"] > len(deep["files"]):
            lines.append(f"- ... and {deep['count'] - len(deep['files']):,} more (`difftui data check --json`)")
    def group(g: list[str]) -> str:
        shown = ", ".join(f"`{x}`" for x in g[:6])
        return f"- {shown}" + (f" and {len(g) - 6:,} more" if len(g) > 6 else "")

    if e["examples"]:
        lines += ["", "Exact duplicate groups (first ones):", ""]
        lines += [group(g) for g in e["examples"]]
    if n["examples"]:
        lines += ["", "Near-duplicate clusters (first ones):", ""]
        lines += [group(g) for g in n["examples"]]
    if o and o["examples"]:
        lines += ["", "Train/test overlap (test item, train item):", ""]
        lines += [f"- `{a}` ~ `{b}`" for a, b in o["examples"]]
    return "\n".join(lines) + "\n"
