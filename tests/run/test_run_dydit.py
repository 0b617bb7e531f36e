"""DyDiT through the real engine: the FLOPs term, its logged ratio and target, and the complete-model warm-up."""

import pytest
from engine_testkit import wait_for

from difftui.engine.config.catalog import Catalog
from difftui.engine.config.model import PresetError
from difftui.engine.launch import runs as launch
from difftui.engine.store import ACTIVE_STATUSES, Store

# DyDiT-S/2 cut down to 2 blocks of width 48 on the 8x8 digits (an explicit off-tier run).
TINY_DYDIT = ["recipe.batch_size=8", "sampler.grid.steps=4", "backbone.arch.depth=2", "backbone.arch.hidden_size=48",
              "recipe.log_every=5", "recipe.grid_every=100000", "recipe.snapshot_every=100000"]


pytestmark = pytest.mark.usefixtures("engine_hygiene")     # tests/conftest.py


def test_dynamic_backbone_without_a_target_lambda_is_refused_naming_the_grid():
    with pytest.raises(PresetError, match=r"'dydit-s-2' is dynamic: set recipe.flops_lambda \(playbook A.2 grid: 0.9"):
        Catalog().resolve(backbone="dydit-s-2", overrides=TINY_DYDIT, off_tier=True, max_steps=10)


def test_dydit_run_logs_flops_ratio_and_target_and_keeps_the_complete_loss_during_warmup(tmp_path):
    db = tmp_path / "runs.db"
    config = Catalog().resolve(backbone="dydit-s-2", overrides=[*TINY_DYDIT, "recipe.flops_lambda=0.5",
                                                                "backbone.arch.warmup_steps=5"],
                               off_tier=True, max_steps=15, device="cpu")
    run_id = launch.new_run(db, config).run_id
    run = wait_for(db, run_id, lambda r: r["status"] not in ACTIVE_STATUSES)
    assert run["status"] == "completed", run["error"]
    assert run["off_tier"] == 1
    with Store(db) as store:
        ratio = store.series(run_id, "flops_ratio")
        target = store.series(run_id, "flops_target")
        complete = store.series(run_id, "L_complete")
    assert [s for s, _ in ratio] == [5, 10, 15]
    assert all(0.0 < r <= 1.01 for _, r in ratio)           # routers start fully on: ratio ~1 (router overhead 0.5%)
    assert target == [(5, 0.5), (10, 0.5), (15, 0.5)]
    assert [s for s, _ in complete] == [5]                  # steps 0..4 are the warm-up (logged at step 5)
