"""Snapshots every K kimg (playbook 5.6): EMA weights only, kept apart from the rolling checkpoints, each evaluated
at the quick count with the fixed sampler, the lowest FID marked as the run's best and shown by `difftui show`."""


import pytest
import torch
from eval_testkit import StandInFeatureNet
from typer.testing import CliRunner

from difftui.engine.eval.evaluator import EvalOptions, evaluate
from difftui.engine.eval.metrics.weights import INCEPTION_FILE
from difftui.engine.run import snapshots
from difftui.engine.run.checkpoint import latest_checkpoint, load_checkpoint
from difftui.engine.store import Store
from difftui.tui.cli import app


def test_a_snapshot_is_due_each_time_the_images_seen_cross_a_multiple_of_k_kimg(tmp_path):
    net = torch.nn.Linear(2, 2)
    written = [step for step in range(1, 31)
               if snapshots.maybe_write(tmp_path, step, batch_size=128, ema_net=net, every_kimg=1.0) is not None]
    assert written == [8, 16, 24]                       # 8 * 128 = 1,024 images: the first 1 kimg crossed
    assert [s for s, _ in snapshots.list_snapshots(tmp_path)] == [8, 16, 24]
    assert snapshots.maybe_write(tmp_path, 40, 128, net, every_kimg=0) is None          # 0: no snapshots
    state = snapshots.load_snapshot(snapshots.snapshot_path(tmp_path, 16))
    assert state["step"] == 16 and state["kimg"] == pytest.approx(2.048)
    assert set(state["ema"]) == {"weight", "bias"} and torch.equal(state["ema"]["weight"], net.weight)
    torch.save({"step": 1}, tmp_path / "snapshots" / "snapshot-0000099.pt")
    with pytest.raises(ValueError, match="not a difftui snapshot"):
        snapshots.load_snapshot(tmp_path / "snapshots" / "snapshot-0000099.pt")


def _write_snapshots(db, run_id):
    """Three snapshots of the run's EMA weights: step 100 and 300 badly perturbed, step 200 as trained."""
    with Store(db) as store:
        run_dir = store.get_run(run_id)["run_dir"]
    ema = load_checkpoint(latest_checkpoint(f"{run_dir}/checkpoints"))["ema"]["net"]
    g = torch.Generator().manual_seed(0)
    for step, noise in ((100, 1.0), (200, 0.0), (300, 0.5)):
        state = {k: v + noise * torch.randn(v.shape, generator=g) if v.is_floating_point() else v
                 for k, v in ema.items()}
        net = torch.nn.Module()
        net.state_dict = lambda state=state: state
        snapshots.write_snapshot(run_dir, step, 8, net)
    return run_dir


def test_pending_snapshots_are_evaluated_and_the_best_is_marked(digits_run):
    db, run_id = digits_run
    _write_snapshots(db, run_id)
    evaluate(db, run_id, EvalOptions(fid=True, quick=True, samples=64, batch=32, panel=False, nll=False,
                                     pending_snapshots=True, device="cpu"), feature_net=StandInFeatureNet())
    with Store(db) as store:
        fids = {r["snapshot"]: r for r in store.eval_results(run_id, kind="fid") if r["metric"] == "fid"}
        best = store.get_run(run_id)["best_snapshot"]
        events = [e["message"] for e in store.events_since(run_id)]
    assert set(fids) == {100, 200, 300} and all(r["step"] == r["snapshot"] for r in fids.values())
    assert best == min(fids, key=lambda s: fids[s]["value"])          # the rule: the lowest FID
    assert all(r["samples"] == 64 and r["protocol"]["source"].startswith("snapshot snapshot-") for r in fids.values())
    assert sum(m.startswith("snapshot ") and "best snapshot: " in m for m in events) == 3
    # Nothing left to do: a second pass evaluates nothing.
    evaluate(db, run_id, EvalOptions(fid=True, samples=64, batch=32, panel=False, nll=False, pending_snapshots=True,
                                     device="cpu"), feature_net=StandInFeatureNet())
    with Store(db) as store:
        assert len([r for r in store.eval_results(run_id, kind="fid") if r["metric"] == "fid"]) == 3
    shown = CliRunner().invoke(app, ["--db", str(db), "show", str(run_id)])
    assert shown.exit_code == 0
    best_line = next(line for line in shown.stdout.splitlines() if line.strip().startswith("best"))
    assert f"snapshot {best}: FID" in best_line and "64 samples" in best_line and "playbook 5.6" in best_line


def test_a_training_run_starts_the_snapshot_evaluator_in_its_own_process(digits_run, tmp_path, monkeypatch):
    """What the loop calls after writing a snapshot; with no Inception weights here the evaluator ends with the one
    line (job failed, event in the run's log), and training never waited for it."""
    db, run_id = digits_run
    with Store(db) as store:
        run_dir = store.get_run(run_id)["run_dir"]
    snapshots.write_snapshot(run_dir, 400, 8, torch.nn.Linear(1, 1))       # a new snapshot, not yet evaluated
    monkeypatch.setenv("DIFFTUI_INCEPTION", str(tmp_path / "missing.pth"))
    job_id, proc = snapshots.start_evaluation(db, run_id, device="cpu")
    assert proc.wait(timeout=120) == 2
    with Store(db) as store:
        job = store.get_job(job_id)
        events = [e["message"] for e in store.events_since(run_id)]
    assert job["kind"] == "snapshot-eval" and job["status"] == "failed"
    assert INCEPTION_FILE in job["error"] and str(tmp_path / "missing.pth") in job["error"]
    assert events[-1] == f"evaluation failed: {job['error']}"
