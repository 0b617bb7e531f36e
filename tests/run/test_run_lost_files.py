"""A run's files taken away under its live engine (issue 16 items 1-2), with real engine processes: a deleted run
folder never makes a live engine look dead, so it is neither reaped nor started twice, and the engine stops by itself
with one line; a deleted runs.db stops the engine with a line in engine.log, its checkpoint kept; the next run in that
folder names its own engine.log."""

import os
import shutil
import signal
from collections import Counter
from pathlib import Path

import pytest
from engine_testkit import tiny_config, wait_for
from typer.testing import CliRunner

from difftui.engine.launch import liveness
from difftui.engine.launch import runs as launch
from difftui.engine.run.checkpoint import list_checkpoints
from difftui.engine.store import ACTIVE_STATUSES, Store
from difftui.tui.cli import app

pytestmark = pytest.mark.usefixtures("engine_hygiene")     # tests/conftest.py

ENDED = lambda run: run["status"] not in ACTIVE_STATUSES
LONG = ["recipe.log_every=5", "recipe.snapshot_every=20", "recipe.grid_every=100000"]


def test_a_run_folder_deleted_under_its_engine_keeps_the_run_alive_refuses_a_second_engine_and_stops_it(tmp_path):
    db = tmp_path / "runs.db"
    started = launch.new_run(db, tiny_config(100_000, *LONG))
    run_id, proc = started.run_id, started.proc
    run = wait_for(db, run_id, lambda r: r["status"] == "running" and r["step"] >= 20)
    folder = Path(run["run_dir"])
    os.kill(proc.pid, signal.SIGSTOP)               # hold the engine still while the others look at the run
    try:
        shutil.rmtree(folder)
        listed = CliRunner().invoke(app, ["--db", str(db), "ls", "--json"])
        assert listed.exit_code == 0, listed.output
        with Store(db) as store:
            assert liveness.reap_dead_runs(store) == []
            assert store.get_run(run_id)["status"] == "running"          # not reaped: its engine lives
        refused = CliRunner().invoke(app, ["--db", str(db), "resume", str(run_id), "--detach"])
        assert refused.exit_code == 2
        assert refused.stderr.strip() == (f"difftui: error: run {run_id} is still running (pid {proc.pid}, whose "
                                          f"run folder is gone; it stops by itself); stop it first")
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    assert proc.wait(timeout=120) == 1
    run = wait_for(db, run_id, ENDED)
    assert run["status"] == "failed"
    assert run["error"].startswith(f"RunLost: the run folder {folder} was deleted or replaced while its engine ran: "
                                   f"stopped at step ")
    assert not folder.exists()                      # nothing written there again (no checkpoint, no grid)
    with Store(db) as store:
        rows = store.metrics_since(run_id, 0)
        events = [e["message"] for e in store.events_since(run_id)]
    doubled = [key for key, n in Counter((r["step"], r["name"]) for r in rows).items() if n > 1]
    assert rows and doubled == []
    assert events[-1].startswith("failed: RunLost: the run folder")


def test_runs_db_deleted_under_its_engine_stops_it_with_a_line_keeping_its_checkpoint(tmp_path):
    db = tmp_path / "runs.db"
    started = launch.new_run(db, tiny_config(100_000, *LONG))
    run_id, proc = started.run_id, started.proc
    run = wait_for(db, run_id, lambda r: r["status"] == "running" and r["step"] >= 10)
    folder = Path(run["run_dir"])
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    assert proc.wait(timeout=120) == 1
    log = (folder / "engine.log").read_text()
    assert f"--- {db} was deleted or replaced while the engine ran (what it logged since is lost): the engine stops" \
        in log
    assert "--- failed: RunLost: " in log and "; its checkpoint at step " in log and "Traceback" not in log
    step = int(log.split("; its checkpoint at step ")[1].split()[0])
    assert step >= 10 and list_checkpoints(folder / "checkpoints")[-1][0] == step
    # A new database in that folder: its run 1 gets runs/1.1 (runs/1 holds the old run's files), and says so.
    result = CliRunner().invoke(app, ["--db", str(db), "run", "--detach", "--max-steps", "2", "--device", "cpu",
                                      "--set", "recipe.batch_size=8", "--set", "backbone.arch.model_channels=16"])
    assert result.exit_code == 0, result.output
    assert f"log {tmp_path / 'runs' / '1.1' / 'engine.log'}" in result.stdout.replace("\n", "")
    assert wait_for(db, 1, ENDED)["run_dir"] == str(tmp_path / "runs" / "1.1")
