"""Dataset profiles on real files: the bundled digits, a tiny CIFAR-10 in torchvision's on-disk format (md5-checked),
an image folder (center crop + area downsample), and the resumable batch stream."""

import dataclasses
import hashlib

import numpy as np
import pytest
import torch
from engine_testkit import write_tiny_cifar10
from PIL import Image

from difftui.engine.config.catalog import Catalog
from difftui.engine.data import DataError, build_dataset, check_available
from difftui.engine.data.images import ImageSet
from difftui.engine.data.stream import BatchStream


@pytest.fixture(autouse=True)
def data_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFTUI_DATA_CACHE", str(tmp_path / "cache"))


def profile(name, **changes):
    return dataclasses.replace(Catalog().get("datasets", name), **changes)


def test_digits_are_the_sklearn_images_scaled_to_minus_one_one():
    from sklearn.datasets import load_digits
    ds = build_dataset(profile("digits", heldout=0.0))
    assert len(ds) == 1797 and ds.shape == (1, 8, 8)
    x, y = ds.batch(torch.arange(len(ds)))
    ref = torch.as_tensor(load_digits().images, dtype=torch.float32) / 8.0 - 1.0
    torch.testing.assert_close(x[:, 0], ref)
    assert x.min() == -1.0 and x.max() == 1.0
    assert y.tolist() == load_digits().target.tolist()


def test_digits_train_split_leaves_out_the_held_out_tenth():
    from sklearn.datasets import load_digits
    train, test = build_dataset(profile("digits")), build_dataset(profile("digits", split="test"))
    assert len(train) + len(test) == 1797 and 120 < len(test) < 240          # 10% by hash: 174
    ref = torch.as_tensor(load_digits().images, dtype=torch.float32) / 8.0 - 1.0
    from difftui.engine.data.split import heldout_mask
    mask = torch.as_tensor(heldout_mask([str(i) for i in range(1797)], 0.1, 0))
    torch.testing.assert_close(train.images[:, 0], ref[~mask])
    torch.testing.assert_close(test.images[:, 0], ref[mask])


def test_digits_refuse_a_resolution_they_do_not_have():
    with pytest.raises(DataError, match="8x8"):
        build_dataset(profile("digits", resolution=16))


def md5_of_tiny_files(monkeypatch, root):
    """torchvision's md5 check, fed with the tiny files' own checksums (the published ones are those of the real
    180 MB batches): the check itself runs unchanged."""
    from difftui.engine.data import cifar
    folder = root / "cifar-10-batches-py"
    table = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    monkeypatch.setattr(cifar, "CIFAR10_MD5", table)
    return table


def test_cifar10_md5_table_is_torchvision_published_checksums():
    from torchvision.datasets import CIFAR10

    from difftui.engine.data.cifar import _published_md5
    table = _published_md5()
    assert table["data_batch_1"] == "c99cafc152244af753f735de768cd75f" == dict(CIFAR10.train_list)["data_batch_1"]
    assert table["test_batch"] == "40351d587109b95175f43aff81a1287e" and len(table) == 7


def test_tiny_cifar10_loads_through_torchvision_in_channel_major_order(tmp_path, monkeypatch):
    rows = write_tiny_cifar10(tmp_path, per_batch=4)
    md5_of_tiny_files(monkeypatch, tmp_path)
    ds = build_dataset(profile("cifar10", root=str(tmp_path)))
    assert len(ds) == 20 and ds.shape == (3, 32, 32)
    x, y = ds.batch(torch.arange(20))
    expect = torch.from_numpy(rows.reshape(20, 3, 32, 32)).float() / 127.5 - 1.0
    torch.testing.assert_close(x, expect)
    assert x.min() >= -1.0 and x.max() <= 1.0 and y.dtype == torch.long
    test = build_dataset(profile("cifar10", root=str(tmp_path), split="test"))
    assert len(test) == 4


def test_a_cifar10_file_that_fails_its_md5_is_one_line_naming_it(tmp_path, monkeypatch):
    write_tiny_cifar10(tmp_path, per_batch=4)
    table = md5_of_tiny_files(monkeypatch, tmp_path)
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    data = bytearray(batch.read_bytes())
    data[-5] ^= 0xFF                                      # one flipped byte inside the pixel rows
    batch.write_bytes(bytes(data))
    with pytest.raises(DataError) as e:
        build_dataset(profile("cifar10", root=str(tmp_path)))
    message = str(e.value)
    assert "\n" not in message and str(batch) in message and "md5" in message and table["data_batch_3"] in message


def test_missing_cifar10_is_one_line_naming_the_root_and_folder(tmp_path):
    p = profile("cifar10", root=str(tmp_path / "nowhere"))
    for call in (check_available, build_dataset):
        with pytest.raises(DataError) as e:
            call(p)
        message = str(e.value)
        assert "\n" not in message
        assert str(tmp_path / "nowhere" / "cifar-10-batches-py") in message
        assert "download" in message


def _save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_image_folder_center_crops_then_area_downsamples(tmp_path):
    # 6 wide x 4 high: the center square is columns 1..4; its 2x2 area means are the four quadrant values.
    img = np.zeros((4, 6, 3), np.uint8)
    img[:, 0] = img[:, 5] = 255                          # cropped away
    img[:2, 1:3], img[:2, 3:5], img[2:, 1:3], img[2:, 3:5] = 10, 50, 90, 130
    img[0, 1] = 30                                       # quadrant mean (30 + 10*3) / 4 = 15
    _save(tmp_path / "a" / "one.png", img)
    _save(tmp_path / "b" / "deeper" / "two.webp", np.full((8, 8, 3), 200, np.uint8))
    Image.fromarray(np.full((5, 5, 3), 100, np.uint8)).save(tmp_path / "three.JPG", quality=100)
    (tmp_path / "notes.txt").write_text("not an image")
    p = profile("image-folder", root=str(tmp_path), resolution=2, heldout=0.0)
    check_available(p)
    ds = build_dataset(p)
    assert len(ds) == 3 and ds.shape == (3, 2, 2)
    first = ds.images[0]                                 # a/one.png sorts first
    assert first[0].tolist() == [[15, 50], [90, 130]]
    assert ds.images[1].float().mean().item() == pytest.approx(200, abs=1)
    x, y = ds.batch(torch.arange(3))
    assert y is None and x.min() >= -1 and x.max() <= 1


def test_image_folder_errors_name_the_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        build_dataset(profile("image-folder", root=str(tmp_path / "missing")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="has no png/jpg/jpeg/webp images"):
        check_available(profile("image-folder", root=str(tmp_path / "empty")))


def _set(n=50):
    return ImageSet(torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, 2, 2).clone(),
                    torch.arange(n), name="ramp")


def test_stream_visits_every_image_once_per_epoch_and_drops_the_tail():
    s = BatchStream(_set(50), 8, seed=3)
    seen = torch.cat([s.next()[1] for _ in range(6)])    # 6 * 8 = 48 of 50
    assert len(set(seen.tolist())) == 48 and s.epoch == 0
    s.next()
    assert s.epoch == 1 and s.position == 8


def test_stream_resumes_exactly_mid_epoch_with_flips():
    data = ImageSet(torch.randn(40, 1, 4, 4), None, name="noise")
    a = BatchStream(data, 8, seed=1, x_flip=True)
    for _ in range(7):
        a.next()
    state = a.state_dict()
    expect = [a.next()[0] for _ in range(6)]
    b = BatchStream(data, 8, seed=1, x_flip=True)
    b.load_state_dict(state)
    for e in expect:
        torch.testing.assert_close(b.next()[0], e)


def test_stream_flips_only_when_asked():
    data = ImageSet(torch.randn(16, 1, 4, 4), None, name="noise")
    plain = BatchStream(data, 16, seed=0)
    x, _ = plain.next()
    idx = plain._permutation()
    torch.testing.assert_close(x, data.images[idx])
    flipping = BatchStream(data, 16, seed=0, x_flip=True)
    xf, _ = flipping.next()
    flipped = [not torch.equal(xf[i], x[i]) for i in range(16)]
    assert any(flipped) and not all(flipped)
    for i in range(16):
        assert torch.equal(xf[i], x[i]) or torch.equal(xf[i], x[i].flip(2))


def test_stream_refuses_a_batch_larger_than_the_data():
    with pytest.raises(DataError, match="fewer than the batch size"):
        BatchStream(_set(5), 8)


def test_a_profile_vouches_for_its_own_cifar10_copy_file_by_file_and_the_rest_stay_published(tmp_path):
    from engine_testkit import tiny_cifar10_md5

    from difftui.engine.data import DataError, build_dataset
    root = tmp_path / "data"
    write_tiny_cifar10(root)
    base = ["recipe.batch_size=4", f"dataset.root={root}"]
    with pytest.raises(DataError, match=r"data_batch_1 fails its md5 check \(expected c99cafc152244af753f735de7"):
        build_dataset(Catalog().resolve(dataset="cifar10", overrides=base, device="cpu").dataset)
    vouched = Catalog().resolve(dataset="cifar10", overrides=[*base, tiny_cifar10_md5(root)], device="cpu").dataset
    assert len(build_dataset(vouched)) == 20
    # One file the profile does not name is still checked against the published checksums.
    partial = {k: v for k, v in vouched.md5.items() if k != "test_batch"}
    with pytest.raises(DataError, match=r"test_batch fails its md5 check"):
        build_dataset(dataclasses.replace(vouched, md5=partial, split="test"))
