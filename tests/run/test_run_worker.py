"""The engine worker as a real subprocess on a real runs.db: a completed run, stop + resume continuing the same loss
curve, kill -9 leaving a crashed but intact and resumable run, and failures recorded with their one-line message."""

import io
import os
import signal

import pytest
import torch
from engine_testkit import tiny_config, wait_for
from PIL import Image

from difftui.engine.launch import liveness
from difftui.engine.launch import runs as launch
from difftui.engine.run.checkpoint import list_checkpoints
from difftui.engine.store import ACTIVE_STATUSES, Store

ENDED = lambda run: run["status"] not in ACTIVE_STATUSES


pytestmark = pytest.mark.usefixtures("engine_hygiene")     # tests/conftest.py


def metric_steps(db, run_id, name="L_simple"):
    with Store(db) as store:
        return [s for s, _ in store.series(run_id, name)]


def test_a_run_completes_with_losses_a_grid_and_a_checkpoint(tmp_path):
    db = tmp_path / "runs.db"
    config = tiny_config(30, "recipe.log_every=5", "recipe.grid_every=15", "recipe.snapshot_every=20")
    run_id = launch.new_run(db, config).run_id
    run = wait_for(db, run_id, ENDED)
    assert run["status"] == "completed", run["error"]
    assert run["step"] == 30 and run["device"] == "cpu" and run["kimg"] == pytest.approx(30 * 8 / 1000)
    assert metric_steps(db, run_id) == [5, 10, 15, 20, 25, 30]
    with Store(db) as store:
        names = set(store.metric_names(run_id))
        grids = store.samples_index(run_id)
        png = store.sample_png(grids[-1]["id"])
        events = [e["message"] for e in store.events_since(run_id)]
    assert {"L_simple", "lr", "img_per_s"} <= names
    assert [g["step"] for g in grids] == [15, 30] and grids[0]["nfe"] == 10
    assert Image.open(io.BytesIO(png)).size == (274, 274)
    assert open(grids[-1]["path"], "rb").read() == png
    assert events[0] == "started on cpu (no CUDA)" or events[0].startswith("started on cpu")
    assert "grid at step 15" in events and "checkpoint at step 20" in events and events[-1] == "completed at step 30"
    assert [s for s, _ in list_checkpoints(tmp_path / "runs" / str(run_id) / "checkpoints")] == [20, 30]
    assert (tmp_path / "runs" / str(run_id) / "x_T.pt").exists()
    assert (tmp_path / "runs" / str(run_id) / "config.yaml").exists()
    card = (tmp_path / "runs" / str(run_id) / "datacard.md").read_text()      # playbook 1.5, with every run
    assert card.startswith("# Data card: digits")


def test_stop_then_resume_continues_the_same_loss_curve(tmp_path):
    db = tmp_path / "runs.db"
    steps = 200
    extra = ("recipe.log_every=4", "recipe.grid_every=100000", "recipe.snapshot_every=100000")
    # The reference: the same run, uninterrupted.
    ref = launch.new_run(db, tiny_config(steps, *extra)).run_id
    run_id = launch.new_run(db, tiny_config(steps, *extra)).run_id
    wait_for(db, run_id, lambda r: r["step"] >= 9, poll=0.02)
    launch.request_stop(db, run_id)               # taken at the next flush, at whatever step that is
    run = wait_for(db, run_id, ENDED)
    assert run["status"] == "stopped", run["error"]
    stopped_at = run["step"]
    assert 0 < stopped_at < steps
    ckpts = list_checkpoints(tmp_path / "runs" / str(run_id) / "checkpoints")
    assert ckpts[-1][0] == stopped_at
    proc = launch.resume(db, run_id).proc
    assert proc.wait(timeout=180) == 0
    run = wait_for(db, run_id, ENDED)
    assert run["status"] == "completed" and run["step"] == steps
    assert metric_steps(db, run_id) == list(range(4, steps + 1, 4))      # no duplicate, no gap
    wait_for(db, ref, ENDED)
    with Store(db) as store:
        resumed, reference = store.series(run_id, "L_simple"), store.series(ref, "L_simple")
        events = [e["message"] for e in store.events_since(run_id)]
    assert f"stopped at step {stopped_at}" in events and f"resumed from step {stopped_at} (ckpt-{stopped_at:07d}.pt)" in events
    # Model, optimizer, EMA, RNG, data position and the partial logging interval were all restored.
    torch.testing.assert_close(torch.tensor(resumed), torch.tensor(reference), rtol=1e-4, atol=1e-6)


def test_kill_9_leaves_a_crashed_intact_resumable_run(tmp_path):
    db = tmp_path / "runs.db"
    config = tiny_config(100_000, "recipe.log_every=2", "recipe.snapshot_every=10", "recipe.grid_every=100000")
    run_id = launch.create_run(db, config)
    proc = launch.start_run(db, run_id)
    ckpt_dir = tmp_path / "runs" / str(run_id) / "checkpoints"
    run = wait_for(db, run_id, lambda r: r["step"] >= 25 and list_checkpoints(ckpt_dir))
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    with Store(db) as store:
        assert liveness.reap_dead_runs(store) == [run_id]
        run = store.get_run(run_id)
        assert run["status"] == "crashed"
        assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    crashed_at = run["step"]
    last_ckpt = list_checkpoints(ckpt_dir)[-1][0]
    assert last_ckpt <= crashed_at
    proc = launch.resume(db, run_id, total_steps=last_ckpt + 20).proc     # a reachable end this time
    assert proc.wait(timeout=180) == 0
    run = wait_for(db, run_id, ENDED)
    assert run["status"] == "completed" and run["step"] == last_ckpt + 20
    assert metric_steps(db, run_id) == list(range(2, last_ckpt + 21, 2))
    with Store(db) as store:
        assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert f"resumed from step {last_ckpt} (ckpt-{last_ckpt:07d}.pt)" in [e["message"] for e in store.events_since(run_id)]


def test_a_run_killed_before_its_first_checkpoint_restarts_from_step_0_with_every_row_once(tmp_path):
    """What the crashed engine logged at step 0 (its FLOPs figure) goes with the rest: the restart logs it again.
    400 steps: the kill lands long before the end however fast the machine (with 40, an idle machine's engine had
    completed before the SIGKILL arrived)."""
    db = tmp_path / "runs.db"
    config = tiny_config(400, "recipe.log_every=2", "recipe.snapshot_every=100000", "recipe.grid_every=100000")
    run_id = launch.create_run(db, config)
    proc = launch.start_run(db, run_id)
    wait_for(db, run_id, lambda r: r["step"] >= 6)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    proc = launch.resume(db, run_id).proc
    assert proc.wait(timeout=180) == 0
    run = wait_for(db, run_id, ENDED)
    assert (run["status"], run["step"]) == ("completed", 400)
    with Store(db) as store:
        groups = store.db.execute("SELECT step, name, COUNT(*) FROM metrics WHERE run_id = ? GROUP BY step, name"
                                  " HAVING COUNT(*) > 1", [run_id]).fetchall()
        assert [tuple(g) for g in groups] == []
        assert [s for s, _ in store.series(run_id, "gflops_fwd")] == [0]
        events = [e["message"] for e in store.events_since(run_id)]
    assert "no checkpoint to resume from; restarted from step 0" in events
    assert metric_steps(db, run_id) == list(range(2, 401, 2))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA failure")
def test_cuda_without_cuda_fails_with_one_line(tmp_path):
    db = tmp_path / "runs.db"
    run_id = launch.new_run(db, tiny_config(5, device="cuda")).run_id
    run = wait_for(db, run_id, ENDED)
    assert run["status"] == "failed"
    assert run["error"].startswith("DeviceError: device 'cuda' requested but CUDA is not available")
    assert "\n" not in run["error"]
    log = (tmp_path / "runs" / str(run_id) / "engine.log").read_text()
    assert "Traceback" in log


def test_resume_refuses_a_live_run(tmp_path):
    db = tmp_path / "runs.db"
    run_id = launch.create_run(db, tiny_config(100_000))
    proc = launch.start_run(db, run_id)
    try:
        wait_for(db, run_id, lambda r: r["status"] == "running")
        with pytest.raises(RuntimeError, match=f"run {run_id} is still running"):
            launch.resume(db, run_id)
    finally:
        launch.request_stop(db, run_id)
        assert proc.wait(timeout=120) == 0
    assert wait_for(db, run_id, ENDED)["status"] == "stopped"


def test_class_conditional_run_trains_with_labels_and_draws_a_labelled_grid(tmp_path):
    db = tmp_path / "runs.db"
    config = tiny_config(10, "recipe.class_conditional=true", "recipe.log_every=5", "recipe.grid_every=10",
                         "recipe.snapshot_every=10")
    run_id = launch.new_run(db, config).run_id
    run = wait_for(db, run_id, ENDED)
    assert run["status"] == "completed", run["error"]
    ckpt = list_checkpoints(tmp_path / "runs" / str(run_id) / "checkpoints")[-1][1]
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    assert state["model"]["label_embed.weight"].shape[0] == 10          # the digits' 10 classes
    with Store(db) as store:
        assert [g["step"] for g in store.samples_index(run_id)] == [10]


def test_class_conditional_on_unlabelled_data_is_refused(tmp_path):
    from difftui.engine.config.catalog import Catalog
    from difftui.engine.config.model import PresetError
    with pytest.raises(PresetError, match=r"dataset 'image-folder' has no class labels"):
        Catalog().resolve(dataset="image-folder", overrides=["recipe.class_conditional=true"])
