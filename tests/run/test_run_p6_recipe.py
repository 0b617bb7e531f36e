"""The P6 (OCM) recipe that ships (issue 16 item 11): named alone it gets the few-step covariance panel, trains a few
steps on the CPU through the real engine with its OCM head, and its few-step panel (OCM against the heuristic beta /
beta_tilde at 5/10/15/20 steps, playbook 5.8) is evaluated from the run's checkpoint."""

import math

import pytest
from engine_testkit import wait_for

from difftui.engine.config.catalog import Catalog
from difftui.engine.eval.evaluator import evaluate
from difftui.engine.eval.panel import panel_samplers
from difftui.engine.eval.protocol import EvalOptions
from difftui.engine.launch import runs as launch
from difftui.engine.store import ACTIVE_STATUSES, Store

pytestmark = pytest.mark.usefixtures("engine_hygiene")     # tests/conftest.py

TINY_P6 = ["recipe.batch_size=8", "backbone.arch.model_channels=16", "recipe.diffusion_steps=50",
           "recipe.log_every=2", "recipe.grid_every=100000", "recipe.snapshot_every=100000", "sampler.grid.steps=5"]


def test_the_p6_recipe_trains_its_ocm_head_on_the_cpu_and_its_few_step_panel_runs(tmp_path):
    config = Catalog().resolve(recipe="p6-ocm", overrides=TINY_P6, max_steps=4, device="cpu")
    assert config.recipe.variance == "ocm" and config.sampler.name == "covariance-ocm"
    assert config.out_channels == 2 * config.dataset.model_shape[0]          # eps and the OCM head
    db = tmp_path / "runs.db"
    run_id = launch.new_run(db, config).run_id
    run = wait_for(db, run_id, lambda r: r["status"] not in ACTIVE_STATUSES, timeout=300)
    assert run["status"] == "completed" and run["step"] == 4
    with Store(db) as store:
        names = set(store.metric_names(run_id))
    assert {"L_simple", "L_ocm"} <= names                   # the head is trained on the OCM target (playbook 3.7)
    evaluate(db, run_id, EvalOptions(panel=True, nll=True, nll_images=8, batch=8, device="cpu"))
    specs = [spec for _, spec in panel_samplers(config.sampler)]
    with Store(db) as store:
        grids = store.samples_index(run_id, kind="panel")
        rows = [e for e in store.eval_results(run_id) if e["kind"] == "panel" and e["metric"] == "nll_bpd"]
    assert [g["sampler"] for g in grids] == [spec.describe() for spec in specs]
    assert {(s.variance, s.steps) for s in specs} == {(v, n) for v in ("ocm", "fixed_large", "fixed_small")
                                                      for n in (5, 10, 15, 20)}
    assert sorted(g["nfe"] for g in grids) == sorted([5, 10, 15, 20] * 3)
    assert len(rows) == len(specs) and all(math.isfinite(r["value"]) and r["value"] > 0 and r["samples"] == 8
                                           for r in rows)
