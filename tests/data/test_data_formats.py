"""The anchor data sets from their usual on-disk forms, and the one-line "put these files there" when missing."""

import dataclasses

import numpy as np
import pytest
import torch
from datakit import png_bytes, smooth_image, write_imagenet64_npz, write_messy_folder, zip_folder
from PIL import Image

from difftui.engine.config.catalog import Catalog
from difftui.engine.data import DataError, build_dataset, check_available


def profile(name, **changes):
    return dataclasses.replace(Catalog().get("datasets", name), **changes)


def test_imagenet64_npz_batches_load_channel_major_with_zero_based_labels(tmp_path):
    rows, labels, vrows, vlabels = write_imagenet64_npz(tmp_path / "in64", per_batch=3, val=4)
    p = profile("imagenet64", root=str(tmp_path / "in64"))
    check_available(p)
    ds = build_dataset(p)
    assert len(ds) == 30 and ds.shape == (3, 64, 64) and ds.num_classes == 1000
    assert torch.equal(ds.images, torch.from_numpy(rows.reshape(30, 3, 64, 64)))
    x, y = ds.batch(torch.arange(30))
    assert torch.equal(y, torch.from_numpy(labels - 1)) and x.min() >= -1 and x.max() <= 1
    val = build_dataset(dataclasses.replace(p, split="test"))
    assert torch.equal(val.images, torch.from_numpy(vrows.reshape(4, 3, 64, 64)))
    assert val.labels.tolist() == (vlabels - 1).tolist()


def test_missing_imagenet64_file_is_one_line_naming_it_and_the_root(tmp_path):
    write_imagenet64_npz(tmp_path / "in64")
    (tmp_path / "in64" / "train_data_batch_7.npz").unlink()
    with pytest.raises(DataError) as e:
        check_available(profile("imagenet64", root=str(tmp_path / "in64")))
    message = str(e.value)
    assert "\n" not in message and "train_data_batch_7.npz" in message and str(tmp_path / "in64") in message
    assert "put these files there" in message


@pytest.mark.parametrize("name,hint", [("ffhq64", "images1024x1024"), ("afhq64", "cat/, dog/, wild/"),
                                       ("lsun-bedroom", "bedroom_train_lmdb"), ("celeba64", "img_align_celeba"),
                                       ("imagenet256-latents", "n01440764")])
def test_missing_anchor_folders_say_which_files_go_where(tmp_path, name, hint):
    with pytest.raises(DataError) as e:
        check_available(profile(name, root=str(tmp_path / "none"), vae=str(tmp_path)))
    message = str(e.value)
    assert "\n" not in message and hint in message and str(tmp_path / "none") in message


def test_celeba_finds_img_align_celeba_and_applies_p2s_crop(tmp_path):
    # 178x218 images: the P2 / DDIM crop is the 128x128 box x 25..153, y 57..185; paint inside and outside it.
    folder = tmp_path / "celeba" / "img_align_celeba"
    folder.mkdir(parents=True)
    img = np.zeros((218, 178, 3), np.uint8)
    img[57:185, 25:153] = (200, 100, 50)
    for i in range(3):
        Image.fromarray(img).save(folder / f"{i:06d}.jpg", quality=100)
    ds = build_dataset(profile("celeba64", root=str(tmp_path / "celeba"), heldout=0.0))
    assert len(ds) == 3 and ds.shape == (3, 64, 64)
    mean = ds.images.float().mean(dim=(0, 2, 3))
    torch.testing.assert_close(mean, torch.tensor([200.0, 100.0, 50.0]), atol=2.0, rtol=0)


def test_a_zip_archive_loads_the_same_pixels_as_the_folder(tmp_path):
    root = tmp_path / "pics"
    for i in range(6):
        (root / "sub").mkdir(parents=True, exist_ok=True)
        (root / "sub" / f"{i}.png").write_bytes(png_bytes(smooth_image(i)))
    archive = zip_folder(root, tmp_path / "pics.zip")
    a = build_dataset(profile("image-folder", root=str(root), resolution=16, heldout=0.0))
    b = build_dataset(profile("image-folder", root=str(archive), resolution=16, heldout=0.0))
    assert len(a) == 6 and torch.equal(a.images, b.images)


def test_unreadable_files_are_skipped_and_listed_at_training_time_never_fatal(tmp_path):
    write_messy_folder(tmp_path / "messy")
    ds = build_dataset(profile("image-folder", root=str(tmp_path / "messy"), resolution=16, heldout=0.0,
                               labels="subfolders", num_classes=2))
    assert len(ds) == 10 and ds.shape == (3, 16, 16)
    assert sorted(n for n, _ in ds.skipped) == ["cat/broken.png", "cat/empty.jpg", "dog/notes.png"]
    assert sorted(ds.labels.tolist()) == [0] * 6 + [1] * 4        # cat: 8 files, 2 unreadable; dog: 5, 1
    assert dict(ds.skipped)["cat/empty.jpg"] == "zero size"


def test_labels_from_subfolders_must_match_num_classes(tmp_path):
    write_messy_folder(tmp_path / "messy")
    with pytest.raises(DataError, match=r"2 class folders under .* \(cat, dog\), but num_classes is 3"):
        build_dataset(profile("image-folder", root=str(tmp_path / "messy"), labels="subfolders", num_classes=3))


def test_a_folder_of_only_unreadable_files_is_one_line_and_leaves_no_cache(tmp_path, data_cache):
    root = tmp_path / "bad"
    root.mkdir()
    (root / "a.png").write_bytes(b"")
    (root / "b.png").write_bytes(b"nope")
    with pytest.raises(DataError, match="no readable image among 2 files"):
        build_dataset(profile("image-folder", root=str(root), heldout=0.0))
    assert not any(data_cache.iterdir()) if data_cache.exists() else True
