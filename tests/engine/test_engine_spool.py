"""Spool mode with real engine processes (issue 17 item 2): `python -m difftui.engine train ID --spool DIR` trains
without ever opening runs.db, and once ingested its metrics, events, grids and final status are in runs.db exactly
once and equal to the same run written to runs.db directly; a resume from an older checkpoint drops the re-done
steps; commands reach it as files; `difftui sync PATH` brings a copied run folder into another database; an evaluator
of a spool run writes records too."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from engine_testkit import tiny_config, wait_for
from typer.testing import CliRunner

from difftui.engine.eval.start import start_evaluation
from difftui.engine.launch import liveness
from difftui.engine.launch import runs as launch
from difftui.engine.run.checkpoint import list_checkpoints
from difftui.engine.store import ACTIVE_STATUSES, Store
from difftui.engine.store.ingest import ingest_run
from difftui.tui.cli import app

ENDED = lambda run: run["status"] not in ACTIVE_STATUSES
EXTRA = ("recipe.log_every=5", "recipe.grid_every=15", "recipe.snapshot_every=10", "recipe.diffusion_steps=50")
# Metrics that depend on the wall clock (the rest must be equal, bit for bit, between the two sinks).
TIMED = {"img_per_s", "tflops", "mfu"}

pytestmark = pytest.mark.usefixtures("engine_hygiene")     # tests/conftest.py


def spool_engine(db: Path, run_id: int) -> subprocess.Popen:
    """The engine in spool mode, started by hand as a cluster job would start it: no --db anywhere."""
    with Store(db) as store:
        run_dir = store.get_run(run_id)["run_dir"]
    log = open(Path(run_dir) / "engine.log", "ab")
    argv = [sys.executable, "-m", "difftui.engine", "train", str(run_id), "--spool", run_dir]
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=run_dir, start_new_session=True)


def ingest(db: Path, run_id: int):
    with Store(db) as store:
        result = ingest_run(store, store.get_run(run_id))
    assert result.errors == []
    return result


def table(db: Path, run_id: int, sql: str) -> list[tuple]:
    with Store(db) as store:
        return [tuple(r.values()) for r in store._rows(sql, [run_id])]


def metric_rows(db: Path, run_id: int) -> list[tuple]:
    return table(db, run_id, "SELECT step, kimg, name, value FROM metrics WHERE run_id = ? ORDER BY step, name")


def no_duplicated_groups(db: Path, run_id: int) -> bool:
    return table(db, run_id, "SELECT step, name, COUNT(*) FROM metrics WHERE run_id = ? GROUP BY step, name"
                             " HAVING COUNT(*) > 1") == []


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """The same 30-step run (same seed) twice, at the same time: through the local backend writing runs.db, and as a
    spool-mode engine whose row is created with sink 'spool' (and never touched by the engine)."""
    old = os.environ.get("DIFFTUI_CPU_THREADS")
    os.environ["DIFFTUI_CPU_THREADS"] = "1"
    root = tmp_path_factory.mktemp("spool-pair")
    try:
        db = root / "runs.db"
        direct = launch.new_run(db, tiny_config(30, *EXTRA)).run_id
        spooled = launch.create_run(db, tiny_config(30, *EXTRA), sink="spool")
        before = table(db, spooled, "SELECT status, step, pid, heartbeat FROM runs WHERE id = ?")
        proc = spool_engine(db, spooled)
        assert proc.wait(timeout=600) == 0
        untouched = table(db, spooled, "SELECT status, step, pid, heartbeat FROM runs WHERE id = ?")
        assert wait_for(db, direct, ENDED)["status"] == "completed"
    finally:
        os.environ.pop("DIFFTUI_CPU_THREADS") if old is None else os.environ.update(DIFFTUI_CPU_THREADS=old)
    return db, direct, spooled, before, untouched


def test_a_spool_run_lands_in_runs_db_once_and_equals_the_same_run_written_directly(pair):
    db, direct, spooled, before, untouched = pair
    assert untouched == before == [("queued", 0, None, None)]       # the engine never opened runs.db
    first = ingest(db, spooled)
    # How many lines depends on how many ~1 s flushes the run took; what they hold is checked below.
    assert first.records > 0 and ingest(db, spooled).records == 0    # a second ingest: nothing new
    with Store(db) as store:
        a, b = store.get_run(direct), store.get_run(spooled)
        events_a = [e["message"] for e in store.events_since(direct)]
        events_b = [e["message"] for e in store.events_since(spooled)]
        grids_a, grids_b = store.samples_index(direct), store.samples_index(spooled)
        pngs = [(store.sample_png(x["id"]), store.sample_png(y["id"])) for x, y in zip(grids_a, grids_b, strict=True)]
    for key in ("status", "step", "kimg", "device", "host", "total_steps", "error"):
        assert a[key] == b[key], key
    assert b["status"] == "completed" and b["step"] == 30 and b["sink"] == "spool" and b["pid"] and b["started"]
    assert events_b == events_a and events_b[-1] == "completed at step 30"
    assert [g["step"] for g in grids_b] == [g["step"] for g in grids_a] == [15, 30]
    assert all(x == y and x for x, y in pngs) and grids_b[0]["path"].startswith(b["run_dir"])
    rows_a, rows_b = metric_rows(db, direct), metric_rows(db, spooled)
    assert [r[:3] for r in rows_b] == [r[:3] for r in rows_a]        # the same (step, name) rows, each once
    assert [r for r in rows_b if r[2] not in TIMED] == [r for r in rows_a if r[2] not in TIMED]   # same losses
    assert no_duplicated_groups(db, spooled)
    assert [s for s, _ in list_checkpoints(Path(b["run_dir"]) / "checkpoints")] == [10, 20, 30]


def test_difftui_sync_of_a_copied_run_folder_creates_the_run_and_ingests_it(pair, tmp_path):
    db, _, spooled, _, _ = pair
    ingest(db, spooled)
    with Store(db) as store:
        original = store.get_run(spooled)
    copy = tmp_path / "from-cluster" / "7"
    shutil.copytree(original["run_dir"], copy)      # rsync from a cluster without a shared filesystem
    other = tmp_path / "laptop.db"
    result = CliRunner().invoke(app, ["--db", str(other), "sync", str(copy)])
    assert result.exit_code == 0, result.stderr
    (line,) = result.stdout.strip().splitlines()
    assert line.startswith("run 1: created from its folder; ") and " new records (" in line
    assert line.endswith("; completed")
    with Store(other) as store:
        run = store.get_run(1)
        grids = store.samples_index(1)
    assert (run["name"], run["status"], run["step"], run["sink"], run["run_dir"]) == \
        (original["name"], "completed", 30, "spool", str(copy.resolve()))
    assert run["config"] == original["config"]
    assert metric_rows(other, 1) == metric_rows(db, spooled)
    assert [g["path"] for g in grids] == [str(copy.resolve() / "grids" / f"step-{s:07d}.png") for s in (15, 30)]
    again = CliRunner().invoke(app, ["--db", str(other), "sync", str(copy)])
    assert again.exit_code == 0 and again.stdout.strip() == "run 1: nothing new; completed"
    everything = CliRunner().invoke(app, ["--db", str(other), "sync"])
    assert everything.exit_code == 0 and everything.stdout.strip() == "run 1: nothing new; completed"
    assert metric_rows(other, 1) == metric_rows(db, spooled)
    broken = tmp_path / "not-a-run"
    broken.mkdir()
    refused = CliRunner().invoke(app, ["--db", str(other), "sync", str(broken)])
    assert refused.exit_code == 2
    assert refused.stderr.strip() == (f"difftui: error: {broken.resolve() / 'run.json'}: no such file "
                                      f"({broken.resolve()} is not a difftui run folder)")


def test_an_evaluator_of_a_spool_run_writes_records_and_its_job_lands_once(pair):
    db, _, spooled, _, _ = pair
    ingest(db, spooled)
    with Store(db) as store:
        run_dir = store.get_run(spooled)["run_dir"]
    proc = subprocess.run([sys.executable, "-m", "difftui.engine", "eval", str(spooled), "--spool", run_dir,
                           "--device", "cpu", "--no-panel", "--nll-images", "16", "--batch", "16"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(list((Path(run_dir) / "spool").glob("eval.*.jsonl"))) == 1
    with Store(db) as store:
        assert store.jobs_for(spooled) == []        # nothing in runs.db until it is ingested
    ingest(db, spooled)
    ingest(db, spooled)
    with Store(db) as store:
        (job,) = store.jobs_for(spooled)
        evals = store.eval_results(spooled, job_id=job["id"])
        events = [e["message"] for e in store.events_since(spooled)]
    assert job["status"] == "done" and job["spool_key"] and job["done"] == job["total"] > 0
    (nll,) = [e for e in evals if e["kind"] == "nll" and e["metric"] == "nll_bpd"]
    assert nll["samples"] == 16 and nll["value"] > 0 and nll["step"] == 30
    assert any(m.startswith("eval: ") and "bits/dim on 16 held-out images" in m for m in events)


def wait_ingested(db: Path, run_id: int, predicate, timeout: float = 300.0) -> dict:
    """Poll as a front end does: the reaper ingests active spool runs first."""
    deadline = time.monotonic() + timeout
    while True:
        with Store(db) as store:
            liveness.reap_dead_runs(store)
            run = store.get_run(run_id)
            if predicate(store, run):
                return run
        assert time.monotonic() < deadline, f"run {run_id} stuck at {run['status']} step {run['step']}"
        time.sleep(0.2)


def test_commands_as_files_reach_a_spool_engine_and_stop_ends_it_stopped_with_a_checkpoint(tmp_path):
    db = tmp_path / "runs.db"
    run_id = launch.create_run(db, tiny_config(100_000, *EXTRA, "recipe.grid_every=100000",
                                               "recipe.snapshot_every=100000", "sampler.sweep=[]"), sink="spool")
    proc = spool_engine(db, run_id)
    wait_ingested(db, run_id, lambda s, r: r["status"] == "running" and r["step"] >= 5)
    assert "evaluate requested" in start_evaluation(db, run_id).message
    panel = lambda s: [e["message"] for e in s.events_since(run_id) if e["message"].startswith("panel ")]
    wait_ingested(db, run_id, lambda s, r: panel(s))
    assert "checkpoint requested" in launch.request_checkpoint(db, run_id).message
    saved = lambda s: [e["message"] for e in s.events_since(run_id) if e["message"].startswith("checkpoint at ")]
    wait_ingested(db, run_id, lambda s, r: saved(s))
    assert launch.request_stop(db, run_id).message.endswith("it checkpoints, then exits")
    assert proc.wait(timeout=300) == 0
    run = wait_ingested(db, run_id, lambda s, r: ENDED(r))
    assert run["status"] == "stopped" and run["error"] is None
    run_dir = Path(run["run_dir"])
    assert list_checkpoints(run_dir / "checkpoints")[-1][0] == run["step"]     # checkpointed where it stopped
    with Store(db) as store:
        events = [e["message"] for e in store.events_since(run_id)]
        panels = store.samples_index(run_id, kind="panel")
    assert f"stopped at step {run['step']}" in events and len(panels) == 1
    assert [p.name.split("-", 1)[1] for p in sorted((run_dir / "commands" / "done").iterdir())] == \
        ["evaluate.json", "snapshot.json", "stop.json"]
    with Store(db) as store:
        assert store.take_commands(run_id) == []    # nothing went through runs.db's commands table
    assert [p for p in (run_dir / "commands").iterdir() if p.is_file()] == []   # each taken once
    assert no_duplicated_groups(db, run_id)


def test_a_spool_resume_from_an_older_checkpoint_drops_the_steps_it_redoes(tmp_path):
    db = tmp_path / "runs.db"
    extra = (*EXTRA, "recipe.grid_every=100000")
    run_id = launch.create_run(db, tiny_config(30, *extra), sink="spool")
    assert spool_engine(db, run_id).wait(timeout=600) == 0
    ingest(db, run_id)
    first = metric_rows(db, run_id)
    with Store(db) as store:
        run_dir = Path(store.get_run(run_id)["run_dir"])
    for step, path in list_checkpoints(run_dir / "checkpoints"):
        if step > 10:
            path.unlink()                           # the newest checkpoints are lost: resume from step 10
    assert spool_engine(db, run_id).wait(timeout=600) == 0
    ingest(db, run_id)
    second = metric_rows(db, run_id)
    # Each engine logs its network's GFLOPs once, at the step it starts from.
    assert [s for s, _, n, _ in second if n == "gflops_fwd"] == [0, 10]
    trained = lambda rows: [r for r in rows if r[2] != "gflops_fwd"]
    assert [(s, n) for s, _, n, _ in trained(second)] == [(s, n) for s, _, n, _ in trained(first)]
    assert sorted({s for s, *_ in trained(second)}) == [5, 10, 15, 20, 25, 30]
    assert [r for r in trained(second) if r[2] not in TIMED] == [r for r in trained(first) if r[2] not in TIMED]
    assert no_duplicated_groups(db, run_id)
    with Store(db) as store:
        events = [e["message"] for e in store.events_since(run_id)]
        run = store.get_run(run_id)
    assert "resumed from step 10 (ckpt-0000010.pt)" in events and events[-1] == "completed at step 30"
    assert run["status"] == "completed" and run["step"] == 30
    # The same folder ingested at once, after both engines, gives the same rows.
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    result = CliRunner().invoke(app, ["--db", str(tmp_path / "other.db"), "sync", str(copy)])
    assert result.exit_code == 0, result.stderr
    assert metric_rows(tmp_path / "other.db", 1) == second
    # Trained further on this machine: its engine writes runs.db directly from now on, after the same cut.
    proc = launch.resume(db, run_id, total_steps=40).proc
    assert proc.wait(timeout=600) == 0
    run = wait_for(db, run_id, ENDED)
    assert (run["status"], run["step"], run["sink"]) == ("completed", 40, "db")
    assert [s for s, _, n, _ in metric_rows(db, run_id) if n == "L_simple"] == [5, 10, 15, 20, 25, 30, 35, 40]
    assert no_duplicated_groups(db, run_id)
    assert '"total_steps": 40' in (run_dir / "run.json").read_text()
