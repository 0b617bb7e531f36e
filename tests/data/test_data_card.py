"""The data card (playbook 1.5, 1.6) and the nearest paper anchor of a profile (playbook 1.7)."""

import dataclasses

import pytest
from datakit import write_messy_folder

from difftui.engine.config.catalog import Catalog
from difftui.engine.data.anchors import nearest_anchor, rank_backbones
from difftui.engine.data.card import DATACARD_NAME, data_card, write_datacard
from difftui.engine.data.quality import check_dataset


def test_card_has_source_licence_protocol_and_says_when_the_table_is_missing():
    c = Catalog()
    card = data_card(c.get("datasets", "cifar10"), c.get("recipes", "p3-cifar10"))
    assert "# Data card: cifar10" in card and "cs.toronto.edu" in card and "| licence | no explicit licence" in card
    assert "| scale tier | 5e4 (CIFAR-10 level; playbook 1.2) |" in card
    assert "train 50,000; test 10,000 (the published split)" in card
    assert "| normalisation | x / 127.5 - 1 -> [-1, 1]" in card
    assert "non-leaky augmentation with p = 0.12" in card and "batch order seed 0" in card
    assert "CIFAR-10's test_batch" in card and "nearest paper anchor | CIFAR-10 32x32" in card
    assert "run `difftui data check cifar10`" in card


def test_unfilled_fields_ask_to_be_filled_in(tmp_path):
    card = data_card(dataclasses.replace(Catalog().get("datasets", "image-folder"), root=str(tmp_path)))
    assert "_fill in: set `licence` in the dataset preset_" in card and "_fill in: set `data_source`" in card
    assert "center crop to the largest centred square" in card and "area (PIL BOX filter" in card
    assert "held-out 5% chosen by a hash of (split_seed 0, file name)" in card


def test_card_written_with_a_run_embeds_the_checked_quality_table(tmp_path):
    write_messy_folder(tmp_path / "messy")
    config = Catalog().resolve(dataset="image-folder", overrides=[f"dataset.root={tmp_path / 'messy'}",
                                                                  "dataset.resolution=16"])
    check_dataset(config.dataset, workers=0)
    path = write_datacard(tmp_path / "runs" / "7", config)
    assert path == tmp_path / "runs" / "7" / DATACARD_NAME
    text = path.read_text()
    assert "## Data-quality table: image-folder" in text and "| corrupt / unreadable | 2 of 12 (16.67%): zero size 1, truncated 1 |" in text   # notes.png is held out
    assert "measured by the data check" in text


def test_card_of_a_data_set_that_cannot_be_read_says_so_instead_of_failing(tmp_path):
    config = Catalog().resolve(dataset="image-folder", overrides=[f"dataset.root={tmp_path / 'gone'}"])
    text = write_datacard(tmp_path / "run", config).read_text()
    assert "**not available when the card was written**" in text and "does not exist" in text
    assert "## Preprocessing protocol" in text


@pytest.mark.parametrize("dataset,task,first", [
    ("cifar10", "CIFAR-10 32x32", ["unet-cifar10", "ddpmpp-cifar10", "ncsnpp-cifar10"]),
    ("imagenet64", "ImageNet-64", ["unet-c64", "unet-c96", "unet-c128", "unet-c192", "adm-imagenet64"]),
    ("celeba64", "ImageNet-64", ["unet-c64", "unet-c96", "unet-c128", "unet-c192", "adm-imagenet64"]),
    ("imagenet256-latents", "ImageNet-256 latents (4x32x32)",
     ["dit-s-2", "dit-b-2", "dit-xl-2", "dydit-s-2", "dydit-b-2", "dydit-xl-2"]),
])
def test_the_anchor_tiers_come_first_small_to_large(dataset, task, first):
    c = Catalog()
    profile = c.get("datasets", dataset)
    assert nearest_anchor(profile).task == task
    ranked = rank_backbones(profile, [(f.name, f.preset) for f in c.all("backbones")])
    names = [n for n, _ in ranked]
    assert names[:len(first)] == first and [s for _, s in ranked[:len(first)]] == [True] * len(first)
    assert not any(s for _, s in ranked[len(first):]) and sorted(names) == sorted(c.names("backbones"))


@pytest.mark.parametrize("dataset,words", [("digits", "no paper anchor at 8x8"),
                                           ("lsun-bedroom", "set dataset.latents=true")])
def test_data_sets_without_an_anchor_keep_the_order_and_say_why(dataset, words):
    c = Catalog()
    profile = c.get("datasets", dataset)
    assert words in nearest_anchor(profile).note
    ranked = rank_backbones(profile, [(n, c.get("backbones", n)) for n in c.names("backbones")])
    assert [n for n, _ in ranked] == c.names("backbones") and not any(s for _, s in ranked)
