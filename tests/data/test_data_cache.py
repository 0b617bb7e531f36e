"""The preprocessed cache: built once, keyed by the files and the protocol, memory-mapped, written atomically."""

import dataclasses
import os
import subprocess
import sys

import numpy as np
import torch
from datakit import png_bytes, smooth_image

from difftui.engine.config.catalog import Catalog
from difftui.engine.data import build_dataset
from difftui.engine.data.cache import CacheWriter
from difftui.engine.data.mapped import MappedImageSet


def folder(tmp_path, n=8):
    root = tmp_path / "pics"
    root.mkdir(exist_ok=True)
    for i in range(n):
        (root / f"{i}.png").write_bytes(png_bytes(smooth_image(i)))
    return root


def profile(root, **changes):
    return dataclasses.replace(Catalog().get("datasets", "image-folder"),
                               **{"root": str(root), "resolution": 16, "heldout": 0.0, **changes})


def caches(data_cache):
    return sorted(p.name for p in data_cache.iterdir()) if data_cache.exists() else []


def test_second_start_opens_the_cache_without_decoding(tmp_path, data_cache, monkeypatch):
    p = profile(folder(tmp_path))
    first = build_dataset(p)
    assert isinstance(first, MappedImageSet) and caches(data_cache) == [first.cache_dir.name]
    from difftui.engine.data import folder as folder_module

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(folder_module, "load_chunk", no_decoding)
    second = build_dataset(p)
    assert torch.equal(first.images, second.images)
    stored = np.load(first.cache_dir / "images.npy", mmap_mode="r")
    assert stored.shape == (8, 3, 16, 16) and stored.dtype == np.uint8


def test_the_cache_is_memory_mapped_not_loaded(tmp_path):
    ds = build_dataset(profile(folder(tmp_path)))
    # The images tensor shares its memory with the mapped file: its storage is not an anonymous allocation.
    mapped = np.load(ds.cache_dir / "images.npy", mmap_mode="r")
    assert ds.images.untyped_storage().nbytes() == mapped.nbytes
    with open(f"/proc/{os.getpid()}/maps") as f:
        assert str(ds.cache_dir / "images.npy") in f.read()


def test_a_changed_file_or_protocol_builds_a_new_cache(tmp_path, data_cache):
    root = folder(tmp_path)
    a = build_dataset(profile(root))
    b = build_dataset(profile(root, resolution=8))
    assert a.cache_dir != b.cache_dir and b.shape == (3, 8, 8)
    (root / "3.png").write_bytes(png_bytes(smooth_image(99)))
    os.utime(root / "3.png", (1, 1))
    c = build_dataset(profile(root))
    assert c.cache_dir not in (a.cache_dir, b.cache_dir) and not torch.equal(c.images[3], a.images[3])
    assert len(caches(data_cache)) == 3


def test_a_killed_build_leaves_no_cache_and_its_leftovers_are_removed(tmp_path, data_cache):
    p = profile(folder(tmp_path))
    # A build killed half way (a child process that exits without committing) leaves only a temporary folder.
    code = ("import sys, numpy as np; from pathlib import Path; from difftui.engine.data.cache import CacheWriter; "
            "w = CacheWriter(Path(sys.argv[1]), 8, (3, 16, 16)); w.append(np.zeros((2, 3, 16, 16), np.uint8)); "
            "import os; os._exit(9)")
    target = data_cache / "victim"
    subprocess.run([sys.executable, "-c", code, str(target)], check=False)
    leftovers = [n for n in caches(data_cache) if n.startswith("victim.tmp-")]
    assert leftovers and not target.exists()
    writer = CacheWriter(target, 1, (3, 16, 16))                 # the next build of the same cache cleans up
    writer.abort()
    assert caches(data_cache) == []
    assert isinstance(build_dataset(p), MappedImageSet)
