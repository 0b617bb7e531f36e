"""The evaluation protocol end to end through the evaluator's real code path (playbook 5.5-5.8), with a small
feature network standing in for Inception (StandInFeatureNet: NOT Inception): generated images from the EMA
weights, cached reference statistics, FID repeats, precision/recall, the protocol recorded beside every number."""

import random

import numpy as np
import pytest
import torch
from eval_testkit import StandInFeatureNet

from difftui.engine.eval.evaluator import EvalError, EvalOptions, evaluate, selection_spec
from difftui.engine.eval.metrics.reference import reference_path
from difftui.engine.store import Store

FID = dict(fid=True, panel=False, nll=False, samples=64, batch=32, device="cpu")


def fid_rows(db, run_id, job_id=None):
    with Store(db) as store:
        rows = store.eval_results(run_id, kind="fid", job_id=job_id)
        jobs = store.jobs_for(run_id)
    return {r["metric"]: r for r in rows if job_id is None or r["job_id"] == job_id}, jobs


def test_fid_repeats_report_the_minimum_and_spread_with_the_protocol(digits_run):
    db, run_id = digits_run
    net = StandInFeatureNet()
    lines = evaluate(db, run_id, EvalOptions(**FID, repeats=3), feature_net=net)
    rows, jobs = fid_rows(db, run_id)
    fid, p, r = rows["fid"], rows["precision"], rows["recall"]
    fids = fid["protocol"]["fids"]
    assert len(fids) == 3 and len(set(fids)) == 3                     # three different draws of 64 images
    assert fid["value"] == pytest.approx(min(fids)) and fid["spread"] == pytest.approx(max(fids) - min(fids))
    assert fid["repeats"] == 3 and fid["samples"] == 64 and fid["step"] == 10 and fid["snapshot"] is None
    assert 0.0 <= p["value"] <= 1.0 and 0.0 <= r["value"] <= 1.0
    spec = selection_spec(fid_config(db, run_id))
    assert fid["sampler"] == spec.describe() and fid["nfe"] == spec.steps      # the fixed deterministic sampler
    proto = fid["protocol"]
    assert proto["feature_net"] == "test-standin-not-inception" and proto["pr_k"] == 3
    assert proto["reference"] == {"split": "train", "images": 1623, "x_flip": False, "key": proto["reference"]["key"]}
    assert proto["source"] == "checkpoint ckpt-0000010.pt" and proto["quick"] is True             # 64 < 50,000: a quick number
    assert jobs[-1]["status"] == "done" and jobs[-1]["done"] == jobs[-1]["total"] > 0
    assert any(line.startswith("FID ") and "min of 3" in line and "64 samples" in line for line in lines)


def fid_config(db, run_id):
    import json

    from difftui.engine.config.catalog import config_from_dict
    with Store(db) as store:
        return config_from_dict(json.loads(store.get_run(run_id)["config"]), "config")


def test_reference_statistics_are_computed_once_and_reused(digits_run, fresh_cache):
    db, run_id = digits_run
    first = StandInFeatureNet()
    evaluate(db, run_id, EvalOptions(**FID), feature_net=first)
    files = list((fresh_cache / "fid-refs").glob("*.npz"))
    assert len(files) == 1 and files[0] == reference_path(files[0].stem)
    assert first.images == 1623 + 64                                     # the real set once, then the samples
    second = StandInFeatureNet()
    evaluate(db, run_id, EvalOptions(**FID), feature_net=second)
    assert second.images == 64                                           # the cache answered for the real side
    rows = fid_rows(db, run_id)[0]
    # Same seed, same images, same cached reference: the same number.
    with Store(db) as store:
        values = [r["value"] for r in store.eval_results(run_id, kind="fid") if r["metric"] == "fid"]
    assert values[-1] == pytest.approx(values[-2], rel=1e-9)
    # Another feature network is another protocol: a second cache entry, not a stale one.
    evaluate(db, run_id, EvalOptions(**FID), feature_net=_renamed())
    assert len(list((fresh_cache / "fid-refs").glob("*.npz"))) == 2
    assert rows["fid"]["protocol"]["reference"]["key"] == files[0].stem


def _renamed():
    net = StandInFeatureNet(seed=1)
    net.name = "test-standin-not-inception-2"
    return net


def test_the_evaluator_never_reseeds_the_global_rngs(digits_run, monkeypatch):
    db, run_id = digits_run

    def refuse(*a, **k):
        raise AssertionError("the evaluator re-seeded a global RNG")

    for module, name in ((torch, "manual_seed"), (torch.random, "manual_seed"), (torch.cuda, "manual_seed_all"),
                         (np.random, "seed"), (random, "seed")):
        monkeypatch.setattr(module, name, refuse)
    evaluate(db, run_id, EvalOptions(fid=True, samples=32, batch=32, nll_images=16, device="cpu"),
             feature_net=StandInFeatureNet())


def test_a_snapshot_that_does_not_exist_is_one_line(digits_run):
    db, run_id = digits_run
    with pytest.raises(EvalError, match=f"run {run_id} has no snapshot at step 7 \\(snapshots: none yet\\)"):
        evaluate(db, run_id, EvalOptions(**FID, snapshot=7), feature_net=StandInFeatureNet())
    with Store(db) as store:
        job = store.jobs_for(run_id)[-1]
    assert job["status"] == "failed" and job["error"].startswith(f"run {run_id} has no snapshot")


def test_a_snapshot_of_another_network_is_one_line_naming_the_file(digits_run):
    from difftui.engine.run import snapshots
    db, run_id = digits_run
    with Store(db) as store:
        run_dir = store.get_run(run_id)["run_dir"]
    path = snapshots.write_snapshot(run_dir, 3, 8, torch.nn.Linear(2, 2))
    try:
        with pytest.raises(EvalError) as e:
            evaluate(db, run_id, EvalOptions(**FID, snapshot=3), feature_net=StandInFeatureNet())
    finally:
        path.unlink()
    assert str(e.value).startswith(f"{path}: its weights do not fit run {run_id}'s backbone 'unet-demo' (")
    assert "\n" not in str(e.value) and "2 unexpected tensors" in str(e.value)
