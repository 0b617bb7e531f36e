"""Evaluation in its own process (issue 7 item 7, issue 9): `difftui eval` spawns `python -m difftui.engine eval`
and follows its progress row; a live engine still evaluates its panel itself; one evaluation at a time per run;
missing Inception weights are one line and exit 2; the TUI side never imports torch."""

import dataclasses
import math
import os
import subprocess
import sys

import pytest
from engine_testkit import tiny_config, wait_for
from typer.testing import CliRunner

from difftui.engine.config.catalog import Catalog
from difftui.engine.eval.evaluator import eval_lock
from difftui.engine.eval.metrics.weights import INCEPTION_FILE, INCEPTION_URL
from difftui.engine.eval.panel import panel_samplers
from difftui.engine.launch import runs as launch
from difftui.engine.store import ACTIVE_STATUSES, Store
from difftui.tui.cli import app

ENDED = lambda run: run["status"] not in ACTIVE_STATUSES
PANEL = ("recipe.log_every=5", "recipe.grid_every=100000", "recipe.snapshot_every=100000",
         "recipe.diffusion_steps=50")


pytestmark = pytest.mark.usefixtures("engine_hygiene")     # tests/conftest.py


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished 10-step run whose panel is the few-step heuristic covariance panel (trained once per module)."""
    old = os.environ.get("DIFFTUI_CPU_THREADS")
    os.environ["DIFFTUI_CPU_THREADS"] = "1"
    db = tmp_path_factory.mktemp("evaluate") / "runs.db"
    try:
        panel = Catalog().get("samplers", "covariance-heuristic")       # ancestral few-step chains: each has an NLL
        run_id = launch.new_run(db, dataclasses.replace(tiny_config(10, *PANEL), sampler=panel)).run_id
        assert wait_for(db, run_id, ENDED)["status"] == "completed"
    finally:
        os.environ.pop("DIFFTUI_CPU_THREADS") if old is None else os.environ.update(DIFFTUI_CPU_THREADS=old)
    return db, run_id


@pytest.fixture
def finished(trained, tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFTUI_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DIFFTUI_INCEPTION", raising=False)
    return trained


def test_eval_of_a_finished_run_runs_in_its_own_process_and_records_the_panel_and_heldout_nll(finished):
    db, run_id = finished
    result = CliRunner().invoke(app, ["--db", str(db), "eval", str(run_id), "--device", "cpu", "--nll-images", "32",
                                      "--batch", "32"])
    assert result.exit_code == 0, result.stderr
    with Store(db) as store:
        run = store.get_run(run_id)
        specs = [spec for _, spec in panel_samplers(Catalog().get("samplers", "covariance-heuristic"))]
        samples = [s for s in store.samples_index(run_id, kind="panel")][-len(specs):]
        evals = store.eval_results(run_id)
        job = store.jobs_for(run_id)[-1]
    assert job["status"] == "done" and job["pid"] != os.getpid() and job["done"] == job["total"] > 0
    assert [s["sampler"] for s in samples] == [spec.describe() for spec in specs]
    panel_nll = [e for e in evals if e["kind"] == "panel" and e["metric"] == "nll_bpd" and e["job_id"] == job["id"]]
    assert len(panel_nll) == len(specs) and all(e["samples"] == 32 and e["value"] > 0 for e in panel_nll)
    (nll,) = [e for e in evals if e["kind"] == "nll" and e["metric"] == "nll_bpd" and e["job_id"] == job["id"]]
    assert nll["samples"] == 32 and math.isfinite(nll["value"]) and nll["protocol"]["heldout"]["split"] == "test"
    assert "bits/dim on 32 held-out images" in result.stdout
    assert run["status"] == "completed" and run["step"] == 10            # evaluation does not touch the run


def test_missing_inception_weights_are_one_line_and_exit_2(finished, tmp_path):
    db, run_id = finished
    missing = tmp_path / "nowhere" / INCEPTION_FILE
    result = CliRunner().invoke(app, ["--db", str(db), "eval", str(run_id), "--fid", "--inception", str(missing)])
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert "\n" not in line and line.startswith("difftui: error: Inception weights for FID not found at")
    assert str(missing) in line and INCEPTION_URL in line
    # The evaluator itself says the same, with no path given and no weights anywhere (no network here either).
    proc = subprocess.run([sys.executable, "-m", "difftui.engine", "eval", str(run_id), "--db", str(db), "--fid",
                           "--no-panel", "--no-nll", "--device", "cpu"], capture_output=True, text=True,
                          env={**os.environ, "DIFFTUI_INCEPTION": str(missing)}, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("difftui eval: error: Inception weights for FID not found")
    with Store(db) as store:
        job = store.jobs_for(run_id)[-1]
    assert job["status"] == "failed" and INCEPTION_FILE in job["error"]


def test_one_evaluation_at_a_time_per_run(finished):
    db, run_id = finished
    with Store(db) as store:
        run_dir = store.get_run(run_id)["run_dir"]
    from pathlib import Path
    with eval_lock(Path(run_dir), run_id):                         # an evaluation holds the run's lock
        proc = subprocess.run([sys.executable, "-m", "difftui.engine", "eval", str(run_id), "--db", str(db),
                               "--device", "cpu"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"difftui eval: error: run {run_id} is already being evaluated (pid {os.getpid()});"
                                   f" one evaluation at a time per run")
    with Store(db) as store:
        job = store.jobs_for(run_id)[-1]
    assert job["status"] == "refused" and "already being evaluated" in job["error"]


def test_a_live_engine_obeys_the_evaluate_command(tmp_path):
    db = tmp_path / "runs.db"
    run_id = launch.new_run(db, tiny_config(100_000, *PANEL, "sampler.sweep=[]")).run_id
    wait_for(db, run_id, lambda r: r["status"] == "running" and r["step"] >= 5)
    result = CliRunner().invoke(app, ["--db", str(db), "eval", str(run_id)])
    assert result.exit_code == 0 and "evaluate requested" in result.stdout
    refused = CliRunner().invoke(app, ["--db", str(db), "eval", str(run_id), "--fid"])
    assert refused.exit_code == 2 and "pass --snapshot STEP" in refused.stderr
    with Store(db) as store:
        # The panel grid is written at once; its event line comes with the engine's next batched flush.
        panel_event = lambda: [e["message"] for e in store.events_since(run_id) if e["message"].startswith("panel ")]
        wait_for(db, run_id, lambda r: panel_event())
        assert len(store.samples_index(run_id, kind="panel")) == 1
        assert panel_event()[0].startswith("panel DDIM eta=0 N=10 linear: NFE 10")
    launch.request_stop(db, run_id)
    assert wait_for(db, run_id, ENDED)["status"] == "stopped"


def test_eval_without_a_checkpoint_is_one_line(tmp_path):
    db = tmp_path / "runs.db"
    run_id = launch.create_run(db, tiny_config(10))
    with Store(db) as store:
        store.finish_run(run_id, "stopped")
    result = CliRunner().invoke(app, ["--db", str(db), "eval", str(run_id)])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"difftui: error: run {run_id} has no checkpoint yet to evaluate"


def test_eval_detach_says_evaluating_only_once_the_evaluator_took_the_job(finished, tmp_path):
    """Issue 16 item 10: `--detach` printed "evaluating" for a job its evaluator then refused."""
    db = tmp_path / "runs.db"
    bare = launch.create_run(db, tiny_config(10))
    with Store(db) as store:
        store.finish_run(bare, "stopped")
    refused = CliRunner().invoke(app, ["--db", str(db), "eval", str(bare), "--detach"])
    assert (refused.exit_code, refused.stdout) == (2, "")
    assert refused.stderr.strip() == f"difftui: error: run {bare} has no checkpoint yet to evaluate"
    db, run_id = finished
    started = CliRunner().invoke(app, ["--db", str(db), "eval", str(run_id), "--detach", "--device", "cpu",
                                       "--nll-images", "8", "--batch", "8"])
    assert started.exit_code == 0, started.stderr
    with Store(db) as store:
        job = store.jobs_for(run_id)[-1]
    assert started.stdout.startswith(f"evaluating run {run_id} (job {job['id']}, pid {job['pid']})")
    assert job["status"] in ("running", "done") and job["total"] > 0
    assert f"{job['total']:,} units of work planned" in " ".join(started.stdout.split())
    # Its cost, said once the job was taken (issue 16 item 5): 8 images x the T-step chain.
    assert "estimate: " in started.stdout and "held-out NLL: 8 images x " in " ".join(started.stdout.split())
    wait_for(db, run_id, lambda r: job_status(db, job["id"]) == "done")


def job_status(db, job_id: int) -> str:
    with Store(db) as store:
        return store.get_job(job_id)["status"]


def test_the_tui_side_of_evaluation_never_imports_torch():
    code = ("import sys; import difftui.engine.eval.jobs, difftui.engine.eval.metrics.weights, difftui.engine.eval.rows, "
            "difftui.engine.eval.report, difftui.tui.cli.eval; "
            "bad = [m for m in ('torch', 'torch_fidelity') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
