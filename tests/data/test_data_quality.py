"""The data-quality table (playbook 1.2, 1.5) on small data sets in their real on-disk formats: every count of a
folder with corrupt files, a duplicate and a near-duplicate is checked exactly, for a folder and for a zip of it."""

import dataclasses
import hashlib
import io
import json

import numpy as np
import pytest
from datakit import MESSY, jpeg_bytes, png_bytes, smooth_image, write_messy_folder, write_tiny_cifar10, zip_folder
from PIL import Image

from difftui.engine.config.catalog import Catalog
from difftui.engine.data.jpeg import estimate_quality, ijg_tables
from difftui.engine.data.phash import NEAR_DUP_BITS, hamming, near_pairs
from difftui.engine.data.quality import check_dataset, quality_markdown, scale_tier


def folder_profile(root, **changes):
    base = dict(root=str(root), labels="subfolders", num_classes=2, heldout=0.0)
    return dataclasses.replace(Catalog().get("datasets", "image-folder"), **{**base, **changes})


def assert_messy_counts(t):
    assert t["items"] == {"train": MESSY["files"], "test": 0, "test_split": "none"}
    assert t["sample"]["K"] == MESSY["files"] and t["sample"]["all"]
    c = t["corrupt"]
    assert c["count"] == 3 and c["reasons"] == MESSY["corrupt"]
    assert sorted((n.rsplit("/", 1)[-1], r) for n, r, _ in c["files"]) == [
        ("broken.png", "truncated"), ("empty.jpg", "zero size"), ("notes.png", "unsupported format")]
    assert c["ratio"] == pytest.approx(3 / 13)
    e, n = t["exact_duplicates"], t["near_duplicates"]
    assert (e["groups"], e["redundant"]) == (MESSY["exact_groups"], MESSY["exact_redundant"])
    assert sorted(x.rsplit("/", 1)[-1] for x in e["examples"][0]) == ["copy_of_img0.png", "img0.png"]
    assert (n["clusters"], n["redundant"]) == (MESSY["near_clusters"], MESSY["near_redundant"])
    assert sorted(x.rsplit("/", 1)[-1] for x in n["examples"][0]) == ["near_a.jpg", "near_b.jpg"]
    assert n["among"] == MESSY["readable"] - 1                      # byte-distinct readable images
    assert f"<= {NEAR_DUP_BITS} of 64 bits" in n["threshold"] and "DCT" in n["algorithm"]
    assert t["modality"] == "class-conditional (2 classes)"
    assert t["class_balance"]["counts"] == [MESSY["classes"]["cat"], MESSY["classes"]["dog"]]
    # Sizes of the 10 readable images: 7 at 48x40 (6 PNGs + the copy), 64x64, 56x56, 30x50.
    widths = [48] * 7 + [64, 56, 30]
    assert t["width"]["median"] == np.median(widths) and t["width"]["max"] == 64 and t["width"]["min"] == 30
    assert t["short_side"]["q1"] == np.percentile([40] * 7 + [64, 56, 30], 25)
    assert t["jpeg"]["count"] == 3 and t["jpeg"]["not_ijg"] == 0
    assert t["jpeg"]["quality"]["min"] == 75 and t["jpeg"]["quality"]["max"] == 90
    assert t["train_test_overlap"] is None
    assert t["scale_tier"] == "5e4"


def test_messy_folder_counts_are_exact(tmp_path):
    write_messy_folder(tmp_path / "messy")
    t = check_dataset(folder_profile(tmp_path / "messy"), workers=0)
    assert_messy_counts(t)
    text = quality_markdown(t)
    assert "| corrupt / unreadable | 3 of 13 (23.08%)" in text and "`cat/broken.png`: truncated" in text


def test_zip_archive_of_the_folder_gives_the_same_table(tmp_path):
    write_messy_folder(tmp_path / "messy")
    archive = zip_folder(tmp_path / "messy", tmp_path / "messy.zip", prefix="export/")
    t = check_dataset(folder_profile(archive), workers=0)
    assert_messy_counts(t)
    assert t["where"].startswith("zip ")


def test_check_in_a_process_pool_matches_the_in_process_check(tmp_path, monkeypatch):
    from difftui.engine.data import pool
    monkeypatch.setattr(pool, "IN_PROCESS_BELOW", 1)              # force the pool for 13 files
    monkeypatch.setattr(pool, "CHUNK", 4)
    write_messy_folder(tmp_path / "messy")
    t = check_dataset(folder_profile(tmp_path / "messy"), workers=2)
    assert_messy_counts(t)


def test_the_table_is_cached_by_contents_and_rechecked_when_a_file_changes(tmp_path):
    write_messy_folder(tmp_path / "messy")
    p = folder_profile(tmp_path / "messy")
    first = check_dataset(p, workers=0)
    again = check_dataset(p, workers=0)
    assert not first["from_cache"] and again["from_cache"] and again["key"] == first["key"]
    (tmp_path / "messy" / "dog" / "copy_of_img0.png").unlink()
    third = check_dataset(p, workers=0)
    assert not third["from_cache"] and third["exact_duplicates"]["groups"] == 0 and third["items"]["train"] == 12


def test_sample_of_k_items_is_seeded_and_stated(tmp_path):
    write_messy_folder(tmp_path / "messy")
    p = folder_profile(tmp_path / "messy")
    a, b = check_dataset(p, 5, workers=0), check_dataset(p, 5, workers=0, use_cache=False)
    assert a["sample"] == {"K": 5, "all": False, "requested": 5, "seed": 0}
    assert a["corrupt"]["files"] == b["corrupt"]["files"] and a["width"] == b["width"]
    assert "K = 5 of 13 (seed 0)" in quality_markdown(a)


def test_train_test_overlap_counts_exact_and_near_copies_in_the_test_folder(tmp_path):
    train, val = tmp_path / "train", tmp_path / "val"
    for i in range(5):
        (train / "a").mkdir(parents=True, exist_ok=True)
        (train / "a" / f"{i}.png").write_bytes(png_bytes(smooth_image(i)))
    (val / "a").mkdir(parents=True)
    (val / "a" / "same.png").write_bytes(png_bytes(smooth_image(1)))                       # exact copy
    near = smooth_image(3).resize((44, 36), Image.Resampling.LANCZOS)
    (val / "a" / "near.jpg").write_bytes(jpeg_bytes(near, 92))                              # near copy
    (val / "a" / "new.png").write_bytes(png_bytes(smooth_image(20)))                        # unrelated
    t = check_dataset(folder_profile(train, test_root=str(val), labels="none", num_classes=0), workers=0)
    o = t["train_test_overlap"]
    assert (o["test_checked"], o["exact"], o["near"]) == (3, 1, 1)
    assert sorted(a for a, _ in o["examples"]) == ["a/near.jpg", "a/same.png"]
    assert t["items"]["test"] == 3 and "test_root" in t["items"]["test_split"]


def test_array_data_set_table_cifar10_with_a_test_image_copied_from_train(tmp_path, monkeypatch):
    import pickle

    from difftui.engine.data import cifar
    rows = write_tiny_cifar10(tmp_path, per_batch=4)
    folder = tmp_path / "cifar-10-batches-py"
    with open(folder / "test_batch", "rb") as f:
        test = pickle.load(f)
    test["data"][2] = rows[5]                                     # a training image leaked into the test set
    with open(folder / "test_batch", "wb") as f:
        pickle.dump(test, f)
    monkeypatch.setattr(cifar, "CIFAR10_MD5", {p.name: hashlib.md5(p.read_bytes()).hexdigest()
                                               for p in folder.iterdir()})
    p = dataclasses.replace(Catalog().get("datasets", "cifar10"), root=str(tmp_path))
    t = check_dataset(p)
    assert t["items"]["train"] == 20 and t["items"]["test"] == 4 and t["items"]["test_split"] == "test_batch"
    assert t["train_test_overlap"]["exact"] == 1 and t["train_test_overlap"]["examples"][0] == ["test[2]", "train[5]"]
    assert t["corrupt"]["count"] == 0 and t["width"]["median"] == 32 and t["file_size"] is None
    assert sum(t["class_balance"]["counts"]) == 20 and t["class_balance"]["classes"] == 10
    assert "pixels" in t["exact_duplicates"]["algorithm"]


def test_digits_table_covers_both_splits():
    t = check_dataset(Catalog().get("datasets", "digits"))
    assert t["items"]["train"] + t["items"]["test"] == 1797
    assert t["sample"]["K"] == t["items"]["train"] and t["sample"]["all"]
    assert sum(t["class_balance"]["counts"]) == t["items"]["train"]
    json.dumps(t)                                                 # the --json output is plain JSON


@pytest.mark.parametrize("q", [10, 25, 50, 75, 90, 95, 100])
def test_jpeg_quality_is_recovered_from_the_quantisation_tables(q):
    img = Image.fromarray((np.random.default_rng(q).random((24, 40, 3)) * 255).astype(np.uint8))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=q)
    assert estimate_quality(Image.open(buf).quantization) == (q, True)


def test_jpeg_quality_of_custom_tables_is_the_nearest_and_not_exact():
    lum, chrom = ijg_tables(80)
    custom = {0: (lum + 1).tolist(), 1: chrom.tolist()}
    q, exact = estimate_quality(custom)
    assert abs(q - 80) <= 2 and not exact


def test_near_pairs_finds_exactly_the_pairs_of_brute_force():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2 ** 63, size=200, dtype=np.int64).astype(np.uint64)
    flips = [np.uint64(sum(1 << int(b) for b in rng.choice(64, size=k, replace=False))) for k in rng.integers(0, 12, 200)]
    hashes = np.unique(np.concatenate([base, base ^ np.array(flips, dtype=np.uint64)]))
    i, j = np.triu_indices(len(hashes), k=1)
    close = hamming(hashes[i], hashes[j]) <= NEAR_DUP_BITS
    brute = {(a, b) for a, b in zip(i[close].tolist(), j[close].tolist(), strict=False)}
    assert len(brute) > 50
    assert {tuple(p) for p in near_pairs(hashes).tolist()} == brute


@pytest.mark.parametrize("n,tier", [(1797, "5e4"), (50_000, "5e4"), (200_000, "5e4"), (300_000, "1e6"),
                                    (1_281_167, "1e6"), (5_000_000_000, "1e9")])
def test_scale_tier_is_the_nearest_of_the_three_in_log_scale(n, tier):
    assert scale_tier(n) == tier
