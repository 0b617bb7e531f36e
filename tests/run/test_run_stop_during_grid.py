"""Issue 16 item 5: a stop obeyed during a slow grid, with real processes. The grid's network is made slow by the
engine's test hook (DIFFTUI_TEST_FORWARD_DELAY_S, run/drawing.py), so a tiny run draws a grid of a minute; `difftui stop
--force --grace 10` during its final grid ends it `stopped` with a checkpoint, by SIGTERM, without SIGKILL; the resume
draws the grid and completes the run. The stop command during a live engine's panel evaluation abandons the panel
the same way."""

import subprocess
import sys
import time
from pathlib import Path

import pytest
from engine_testkit import tiny_config, wait_for

from difftui.engine.launch import runs as launch
from difftui.engine.run.drawing import TEST_DELAY_ENV
from difftui.engine.store import ACTIVE_STATUSES, Store

pytestmark = pytest.mark.usefixtures("engine_hygiene")     # tests/conftest.py

DIFFTUI = str(Path(sys.executable).parent / "difftui")
ENDED = lambda run: run["status"] not in ACTIVE_STATUSES


def events(db, run_id) -> list[str]:
    with Store(db) as store:
        return [e["message"] for e in store.events_since(run_id)]


def test_stop_force_during_the_final_grid_abandons_it_checkpoints_and_ends_stopped(tmp_path, monkeypatch):
    db = tmp_path / "runs.db"
    # 3 steps, then the final grid: 200 DDIM steps at 0.3 s a call, a minute if nothing stops it.
    config = tiny_config(3, "recipe.log_every=1", "recipe.grid_every=100000", "recipe.snapshot_every=100000",
                         "sampler.grid.steps=200")
    monkeypatch.setenv(TEST_DELAY_ENV, "0.3")
    run_id = launch.new_run(db, config).run_id
    # The drawing's first progress line (after 10 s): the engine is inside the grid, past its training steps.
    progress_line = lambda m: m.startswith("grid at step 3: ") and " network evaluations" in m
    wait_for(db, run_id, lambda r: any(map(progress_line, events(db, run_id))), timeout=180)
    progress = next(filter(progress_line, events(db, run_id)))
    assert "/200 network evaluations, about " in progress and progress.endswith(" left")
    start = time.monotonic()
    stop = subprocess.run([DIFFTUI, "--db", str(db), "stop", str(run_id), "--force", "--grace", "10"],
                          capture_output=True, text=True, timeout=60)
    took = time.monotonic() - start
    assert stop.returncode == 0, stop.stderr
    assert "SIGKILL" not in stop.stdout + stop.stderr and "after SIGTERM" in stop.stdout
    assert took < 10
    run = wait_for(db, run_id, ENDED)
    assert run["status"] == "stopped" and run["step"] == 3 and not run["error"]
    said = events(db, run_id)
    abandoned = [m for m in said if m.startswith("grid at step 3 abandoned after ")]
    assert len(abandoned) == 1 and abandoned[0].endswith("/200 network evaluations: a stop was asked")
    assert "checkpoint at step 3" in said
    assert any(m.startswith("stopped at step 3 during the final grid (SIGTERM)") for m in said)
    assert not any(m == "completed at step 3" for m in said)
    run_dir = Path(run["run_dir"])
    assert (run_dir / "checkpoints").is_dir() and (run_dir / "checkpoints" / "ckpt-0000003.pt").exists()
    assert not (run_dir / "grids" / "step-0000003.png").exists()       # nothing of the abandoned grid written
    with Store(db) as store:
        assert store.samples_index(run_id, kind="grid") == []

    # The resume (no slow hook now) draws the final grid from the checkpoint and completes the run.
    monkeypatch.delenv(TEST_DELAY_ENV)
    launch.resume(db, run_id)
    run = wait_for(db, run_id, ENDED)
    assert run["status"] == "completed" and run["step"] == 3
    assert (run_dir / "grids" / "step-0000003.png").exists()


def test_the_stop_command_during_a_live_panel_evaluation_abandons_it_and_ends_stopped(tmp_path, monkeypatch):
    """`difftui eval` of a training run sends its engine the evaluate command; the stop command (what `s` and
    `difftui stop` send) during that panel is obeyed before the next network call, not after the panel."""
    from difftui.engine.eval.start import start_evaluation
    db = tmp_path / "runs.db"
    # The panel of DDIM N=10/20/50/100: 180 calls at 0.3 s, about a minute if nothing stops it.
    config = tiny_config(100_000, "recipe.log_every=5", "recipe.grid_every=100000", "recipe.snapshot_every=100000")
    monkeypatch.setenv(TEST_DELAY_ENV, "0.3")
    run_id = launch.new_run(db, config).run_id
    wait_for(db, run_id, lambda r: r["status"] == "running" and r["step"] > 0)
    start_evaluation(db, run_id)
    progress_line = lambda m: m.startswith("sampler panel at step ") and "/180 network evaluations, about " in m
    wait_for(db, run_id, lambda r: any(map(progress_line, events(db, run_id))), timeout=180)
    launch.request_stop(db, run_id)
    run = wait_for(db, run_id, ENDED, timeout=60)
    assert run["status"] == "stopped" and not run["error"]
    said = events(db, run_id)
    abandoned = [m for m in said if m.startswith("sampler panel at step ") and " abandoned after " in m]
    assert len(abandoned) == 1 and abandoned[0].endswith("/180 network evaluations: a stop was asked")
    assert f"checkpoint at step {run['step']}" in said
    assert (Path(run["run_dir"]) / "checkpoints" / f"ckpt-{run['step']:07d}.pt").exists()
    with Store(db) as store:
        assert store.samples_index(run_id, kind="panel") == []         # nothing of the abandoned panel recorded
