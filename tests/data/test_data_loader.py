"""The worker loader for cached data sets yields exactly BatchStream's batches, with the same resumable state, and
shards each global batch over DDP ranks."""

import dataclasses
import inspect

import pytest
import torch
from datakit import png_bytes, smooth_image

from difftui.engine.config.catalog import Catalog
from difftui.engine.data import DataError, build_dataset
from difftui.engine.data import loader as loader_module
from difftui.engine.data.loader import CachedBatchLoader, make_batch_source
from difftui.engine.data.stream import BatchStream


@pytest.fixture
def cached(tmp_path):
    root = tmp_path / "pics"
    for i in range(45):
        (root / f"c{i % 3}").mkdir(parents=True, exist_ok=True)
        (root / f"c{i % 3}" / f"{i:02d}.png").write_bytes(png_bytes(smooth_image(i, (12, 12))))
    p = dataclasses.replace(Catalog().get("datasets", "image-folder"), root=str(root), resolution=8, heldout=0.0,
                            labels="subfolders", num_classes=3)
    return build_dataset(p)


@pytest.mark.parametrize("workers", [0, 2])
def test_loader_batches_equal_batch_stream_across_epochs_with_flips_and_labels(cached, workers):
    stream = BatchStream(cached, 8, seed=5, x_flip=True)
    loader = CachedBatchLoader(cached, 8, seed=5, x_flip=True, num_workers=workers)
    for step in range(17):                                      # 5 batches per epoch: more than three epochs
        (xs, ys), (xl, yl) = stream.next(), loader.next()
        assert torch.equal(xs, xl) and torch.equal(ys, yl), step
        assert loader.state_dict()["epoch"] == stream.epoch and loader.state_dict()["position"] == stream.position
    assert stream.epoch == 3
    loader.close()


def test_state_is_interchangeable_with_batch_stream(cached):
    stream = BatchStream(cached, 8, seed=1, x_flip=True)
    for _ in range(7):
        stream.next()
    loader = CachedBatchLoader(cached, 8, seed=1, x_flip=True, num_workers=0)
    loader.load_state_dict(stream.state_dict())
    for _ in range(6):
        assert torch.equal(stream.next()[0], loader.next()[0])
    back = BatchStream(cached, 8, seed=1, x_flip=True)
    back.load_state_dict(loader.state_dict())
    for _ in range(4):
        assert torch.equal(stream.next()[0], back.next()[0])


def test_ranks_take_contiguous_slices_of_every_global_batch(cached):
    whole = CachedBatchLoader(cached, 12, seed=2, x_flip=True, num_workers=0)
    ranks = [CachedBatchLoader(cached, 12, seed=2, x_flip=True, rank=r, world_size=3, num_workers=0) for r in range(3)]
    for _ in range(8):
        x, y = whole.next()
        parts = [r.next() for r in ranks]
        assert all(p[0].shape[0] == 4 for p in parts)
        assert torch.equal(torch.cat([p[0] for p in parts]), x) and torch.equal(torch.cat([p[1] for p in parts]), y)
    if "world_size" in inspect.signature(BatchStream).parameters:      # the lead's sharded BatchStream
        streams = [BatchStream(cached, 12, seed=2, x_flip=True, rank=r, world_size=3) for r in range(3)]
        ranks = [CachedBatchLoader(cached, 12, seed=2, x_flip=True, rank=r, world_size=3, num_workers=0)
                 for r in range(3)]
        for _ in range(8):
            for s, r in zip(streams, ranks, strict=False):
                assert torch.equal(s.next()[0], r.next()[0])


def test_loader_refuses_what_it_cannot_serve(cached):
    with pytest.raises(DataError, match="fewer than the batch size"):
        CachedBatchLoader(cached, 64)
    with pytest.raises(DataError, match=r"recipe.batch_size 12 does not split over 5 processes .* e.g. 10 or 15\)"):
        CachedBatchLoader(cached, 12, world_size=5)
    digits = build_dataset(Catalog().get("datasets", "digits"))
    with pytest.raises(DataError, match="not a cached data set"):
        CachedBatchLoader(digits, 8)


def test_make_batch_source_picks_the_loader_for_large_cached_sets_only(cached, monkeypatch):
    assert isinstance(make_batch_source(cached, 8), BatchStream)                   # 45 images of 8 px
    monkeypatch.setattr(loader_module, "LOADER_MIN_ITEMS", 40)
    assert isinstance(make_batch_source(cached, 8, num_workers=0), CachedBatchLoader)
    digits = build_dataset(Catalog().get("datasets", "digits"))
    assert isinstance(make_batch_source(digits, 8), BatchStream)                   # held in memory
