"""What two ranks (torchrun, gloo on the CPU) must get right that one rank cannot show (issue 19): MFU is per card,
and a data set's cache is built by rank 0 alone. Each rank runs tests/run/two_ranks.py."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from two_ranks import FLOPS_PER_IMAGE, PEAK_TFLOPS, PER_RANK_BATCH, SECONDS, STEPS, interval_metrics

from difftui.engine.config.catalog import Catalog, config_to_dict
from difftui.engine.run.distributed import World

HELPER = Path(__file__).with_name("two_ranks.py")
ROOT = Path(__file__).resolve().parents[2]


def two_ranks(tmp_path, *args) -> list:
    out = tmp_path / "two_ranks.json"
    env = {**os.environ, "DIFFTUI_CPU_THREADS": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(HELPER.parent), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           str(HELPER), args[0], str(out), *args[1:]], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out.read_text())


def test_mfu_under_two_ranks_equals_one_rank_at_the_same_per_rank_throughput(tmp_path):
    """Item 3: the peak is one card's and the throughput counts the global batch, so MFU divides by the cards."""
    one = interval_metrics(World())
    two = two_ranks(tmp_path, "mfu")[0]
    per_rank_img_s = PER_RANK_BATCH * STEPS / SECONDS                          # 40 img/s on each card
    assert one["img_per_s"] == pytest.approx(per_rank_img_s) and two["img_per_s"] == pytest.approx(2 * per_rank_img_s)
    assert two["tflops"] == pytest.approx(2 * one["tflops"])                  # the cards together do twice the work
    assert one["mfu"] == pytest.approx(per_rank_img_s * FLOPS_PER_IMAGE / 1e12 / PEAK_TFLOPS)
    assert two["mfu"] == pytest.approx(one["mfu"])
    assert two["L_simple"] == one["L_simple"] == 0.5


def test_rank_0_alone_builds_a_data_sets_cache_and_the_other_rank_opens_it(tmp_path):
    """Item 9: on a first start under DDP every rank used to decode (or VAE-encode) the whole data set into its own
    temporary copy of the same cache; now rank 0 builds it while the other waits, then opens it."""
    from PIL import Image
    pics = tmp_path / "pics"
    pics.mkdir()
    for i in range(24):
        Image.new("RGB", (20, 20), (10 * i, 255 - 10 * i, 7 * i)).save(pics / f"{i}.png")
    config = Catalog().resolve(dataset="image-folder", overrides=[
        f"dataset.root={pics}", "dataset.resolution=8", "dataset.heldout=0.0", f"dataset.cache_dir={tmp_path / 'cache'}",
        "recipe.batch_size=4", "backbone.arch.model_channels=16"], max_steps=10, device="cpu")
    (tmp_path / "config.json").write_text(json.dumps(config_to_dict(config)))
    ranks = two_ranks(tmp_path, "data", str(tmp_path / "config.json"))
    builds = [(tmp_path / f"two_ranks.json.{r}.builds").read_text().split() for r in (0, 1)]
    assert len(builds[0]) == 1 and builds[1] == []                           # one build, by rank 0
    assert [r["images"] for r in ranks] == [[24], [24]]
    assert ranks[0]["cache_dir"] == ranks[1]["cache_dir"] == str(tmp_path / "cache" / builds[0][0])
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == builds[0]  # no temporary copy left behind
