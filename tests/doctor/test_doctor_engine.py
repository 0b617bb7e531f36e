"""The doctor on real tiny CPU runs through the engine: the grid statistics and the panel's 5.2 consistency are
recorded where grids are drawn, the data loader's wait is logged; real symptoms give their findings (a jittery VLB
under uniform t, a loss that diverges after a batch change, a test split that copies training images); the default
demo run raises no warning."""

import json

import pytest
from doctor_testkit import finding, judge, needs
from engine_testkit import tiny_cifar10_md5, tiny_config, wait_for, write_tiny_cifar10  # noqa: E402

from difftui.engine.config.catalog import Catalog, config_to_dict
from difftui.engine.launch import runs as launch
from difftui.engine.store import Store

pytestmark = pytest.mark.usefixtures("engine_hygiene")          # one CPU thread per engine; none outlives its test

GRID_METRICS = {"grid_mean", "grid_std", "grid_data_mean", "grid_data_std", "grid_w1", "grid_saturated",
                "grid_data_saturated", "grid_nn_ratio"}                  # grey digits: no colour cast


def train(db, config, *, status="completed"):
    run_id = launch.new_run(db, config).run_id
    run = wait_for(db, run_id, lambda r: r["status"] not in ("queued", "running", "stopping"), timeout=600)
    assert run["status"] == status, run
    return run_id


def panel(db, run_id):
    from difftui.engine.eval.evaluator import EvalOptions, evaluate
    return evaluate(db, run_id, EvalOptions(panel=True, nll=False, device="cpu"))


def test_grids_and_panels_record_what_the_grid_and_consistency_rules_read(tmp_path):
    db = tmp_path / "runs.db"
    run_id = train(db, tiny_config(40, "recipe.grid_every=20", "recipe.diffusion_steps=100"))
    with Store(db) as store:
        names = set(store.series_names(run_id))
        grids = {name: store.series(run_id, name) for name in GRID_METRICS}
    assert GRID_METRICS <= names and "grid_colour_cast" not in names
    assert all([s for s, _ in rows] == [20, 40] for rows in grids.values())        # one value per grid
    assert grids["grid_data_std"][-1][1] > 0 and grids["grid_nn_ratio"][-1][1] > 0
    assert "data_wait" in names                                   # the loader rule's input, every interval
    d = judge(db, run_id)
    assert needs(d, "ddim-consistency") is not None                # no panel evaluated yet
    panel(db, run_id)
    with Store(db) as store:
        cons = store.eval_results(run_id, kind="consistency")
    score = [r for r in cons if r["metric"] == "consistency"]
    assert len(score) == 1 and score[0]["sampler"] == "DDIM eta=0 N=100 linear" and -1 <= score[0]["value"] <= 1
    assert sorted(r["sampler"] for r in cons if r["metric"] == "agreement") == [
        "DDIM eta=0 N=10 linear", "DDIM eta=0 N=20 linear", "DDIM eta=0 N=50 linear"]
    assert score[0]["protocol"]["steps"] == [10, 20, 50, 100]
    d = judge(db, run_id)
    assert needs(d, "ddim-consistency") is None and needs(d, "grid-off-data") is None


@pytest.mark.slow
def test_a_real_hybrid_run_with_uniform_timesteps_has_a_jittery_vlb(tmp_path):
    db = tmp_path / "runs.db"
    run_id = train(db, tiny_config(300, "recipe.loss=hybrid", "recipe.variance=learned", "recipe.batch_size=32",
                                   "recipe.grid_every=100000", "recipe.snapshot_every=100000"))
    f = finding(judge(db, run_id), "vlb-jitter")
    assert f is not None and f.section == "3.3" and f.edits[0] == {"recipe.importance_sampling": True}


def test_a_real_run_that_diverges_after_a_batch_change_is_sent_back_to_the_anchored_pair(tmp_path):
    db = tmp_path / "runs.db"
    run_id = train(db, tiny_config(200, "recipe.lr=0.5", "recipe.grid_every=100000", "recipe.snapshot_every=50"),
                   status="failed")                            # 20 non-finite steps in a row end it (at step 40)
    f = finding(judge(db, run_id), "lr-off-rule")
    assert f is not None and "diverges" in f.title and f.section == "4.2, 1.8"
    assert f.edits[0] == {"recipe.batch_size": 128, "recipe.lr": 1e-4}          # p1-default's pair


def test_a_test_split_that_copies_training_images_is_a_warning(tmp_path, monkeypatch):
    import pickle

    from difftui.engine.config.model import DatasetProfile, from_mapping
    from difftui.engine.data.quality import check_dataset
    monkeypatch.setenv("DIFFTUI_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "cifar"
    rows = write_tiny_cifar10(root, per_batch=6)
    test_file = root / "cifar-10-batches-py" / "test_batch"
    batch = pickle.loads(test_file.read_bytes())
    batch["data"][:2] = rows[:2]                                  # two test images are training images
    test_file.write_bytes(pickle.dumps(batch))
    cfg = config_to_dict(Catalog().resolve(dataset="cifar10", backbone="unet-cifar10",
                                           overrides=[f"dataset.root={root}", tiny_cifar10_md5(root)],
                                           max_steps=10, device="cpu"))
    table = check_dataset(from_mapping(DatasetProfile, cfg["dataset"], "test"), workers=1)
    assert table["train_test_overlap"]["exact"] == 2
    db = tmp_path / "runs.db"
    with Store(db) as store:
        run_id = store.create_run(cfg, name="overlap", total_steps=10)
    f = finding(judge(db, run_id), "data-overlap")
    assert f.severity == "warning" and f.section == "1.2, 1.5, 1.0"
    assert "2 test image(s) are exact copies of training images (of 6 checked)" in f.evidence.text


@pytest.mark.slow
def test_the_default_demo_run_raises_no_warning(tmp_path, monkeypatch):
    """digits / unet-demo / ddim / p1-default as `difftui run` makes it (batch 32 to fit the CPU tests), 300 steps,
    its final grid, then the panel evaluated: no warning. The data check's cache is this test's own (empty)."""
    db = tmp_path / "runs.db"
    run_id = train(db, Catalog().resolve(overrides=["recipe.batch_size=32"], max_steps=300, device="cpu"))
    panel(db, run_id)
    monkeypatch.setenv("DIFFTUI_CACHE", str(tmp_path / "cache"))
    d = judge(db, run_id)
    assert d.warnings == (), json.dumps([f.as_dict() for f in d.warnings], indent=1)
    assert "lr-off-rule" in d.clean and "ddim-consistency" in d.clean
