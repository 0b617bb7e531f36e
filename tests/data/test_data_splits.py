"""The held-out split (playbook 1.0 (4)): seeded, disjoint from training, stable, and what split "test" returns."""

import dataclasses

import numpy as np
import torch
from datakit import png_bytes, smooth_image

from difftui.engine.config.catalog import Catalog
from difftui.engine.data import build_dataset
from difftui.engine.data.split import heldout_mask, split_indices


def profile(name, **changes):
    return dataclasses.replace(Catalog().get("datasets", name), **changes)


def test_heldout_mask_is_a_seeded_fraction_that_other_items_do_not_move():
    names = [f"img{i:05d}.png" for i in range(20_000)]
    mask = heldout_mask(names, 0.1, seed=0)
    assert 0.09 < mask.mean() < 0.11
    assert np.array_equal(mask, heldout_mask(names, 0.1, seed=0))                  # stable
    assert not np.array_equal(mask, heldout_mask(names, 0.1, seed=1))              # seeded
    fewer = heldout_mask(names[::2], 0.1, seed=0)                                   # drop half of the files
    assert np.array_equal(fewer, mask[::2])                                         # the rest keep their side
    train, test = split_indices(names, 0.1, 0, "train"), split_indices(names, 0.1, 0, "test")
    assert set(train).isdisjoint(test) and len(train) + len(test) == len(names)


def test_digits_splits_are_disjoint_and_stable():
    a_train, a_test = build_dataset(profile("digits")), build_dataset(profile("digits", split="test"))
    b_test = build_dataset(profile("digits", split="test"))
    assert torch.equal(a_test.images, b_test.images)
    full = build_dataset(profile("digits", heldout=0.0))
    mask = torch.as_tensor(heldout_mask([str(i) for i in range(1797)], 0.1, 0))
    assert torch.equal(a_train.images, full.images[~mask]) and torch.equal(a_test.images, full.images[mask])
    other_seed = build_dataset(profile("digits", split="test", split_seed=7))
    assert not torch.equal(other_seed.images[:50], a_test.images[:50])


def test_image_folder_test_split_is_the_held_out_files_and_training_never_sees_them(tmp_path):
    root = tmp_path / "pics"
    root.mkdir()
    for i in range(60):
        (root / f"{i:03d}.png").write_bytes(png_bytes(smooth_image(i, (16, 16))))
    p = profile("image-folder", root=str(root), resolution=8, heldout=0.25)
    train, test = build_dataset(p), build_dataset(dataclasses.replace(p, split="test"))
    names = [f"{i:03d}.png" for i in range(60)]
    mask = heldout_mask(names, 0.25, 0)
    assert (len(train), len(test)) == ((~mask).sum(), mask.sum())
    train_rows = {bytes(r.numpy().tobytes()) for r in train.images}
    test_rows = {bytes(r.numpy().tobytes()) for r in test.images}
    assert train_rows.isdisjoint(test_rows)
    # Stable: the same files, the same split, from the cache or from a fresh build.
    again = build_dataset(dataclasses.replace(p, split="test", cache_dir=str(tmp_path / "other-cache")))
    assert torch.equal(again.images, test.images)


def test_cifar10_test_split_is_its_own_test_batch(tmp_path, monkeypatch):
    import hashlib

    from datakit import write_tiny_cifar10

    from difftui.engine.data import cifar
    write_tiny_cifar10(tmp_path, per_batch=3)
    folder = tmp_path / "cifar-10-batches-py"
    monkeypatch.setattr(cifar, "CIFAR10_MD5", {f.name: hashlib.md5(f.read_bytes()).hexdigest() for f in folder.iterdir()})
    test = build_dataset(profile("cifar10", root=str(tmp_path), split="test"))
    assert len(test) == 3 and len(build_dataset(profile("cifar10", root=str(tmp_path)))) == 15
