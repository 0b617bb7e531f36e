"""Restarts and dying ranks, with real engines (issue 16 item 10): an engine that starts at the step where a killed one
had started writes its FLOPs row once, and the `resume` follower prints the engine's warnings as they come; a DDP run
whose rank 1 is killed fails naming that rank, not gloo's "Connection reset by peer"."""

import os
import signal
import subprocess
from collections import Counter

import pytest
from engine_testkit import tiny_config, wait_for
from typer.testing import CliRunner

from difftui.engine.launch import runs as launch
from difftui.engine.launch.plan import LaunchPlan
from difftui.engine.store import ACTIVE_STATUSES, Store
from difftui.tui.cli import app

pytestmark = pytest.mark.usefixtures("engine_hygiene")     # tests/conftest.py

ENDED = lambda run: run["status"] not in ACTIVE_STATUSES
NO_FILES = ("recipe.log_every=5", "recipe.grid_every=100000", "recipe.snapshot_every=100000")


def test_a_restart_at_the_same_step_logs_its_flops_once_and_the_follower_says_the_engines_warnings(tmp_path):
    db = tmp_path / "runs.db"
    started = launch.new_run(db, tiny_config(100_000, *NO_FILES))
    run_id = started.run_id
    wait_for(db, run_id, lambda r: r["step"] >= 5)
    started.proc.kill()                             # kill -9 before the first checkpoint: the next engine starts at 0
    started.proc.wait()
    with Store(db) as store:
        end = store.get_run(run_id)["step"] + 10    # the row keeps the killed engine's step; train a little past it
    result = CliRunner().invoke(app, ["--db", str(db), "resume", str(run_id), "--max-steps", str(end)])
    assert result.exit_code == 0, result.output
    said = " ".join(result.stdout.split())
    assert f"run {run_id} warning: no checkpoint to resume from; restarted from step 0" in said
    assert f"run {run_id} completed at step {end}/{end}" in said
    with Store(db) as store:
        rows = store.metrics_since(run_id, 0)
    assert [r["step"] for r in rows if r["name"] == "gflops_fwd"] == [0]
    assert [key for key, n in Counter((r["step"], r["name"]) for r in rows).items() if n > 1] == []


def rank_pid(rank: int, run_id: int) -> int:
    """The pid of rank `rank` of run `run_id`'s torchrun workers (RANK in its environment)."""
    found = subprocess.run(["pgrep", "-f", f"difftui.engine train {run_id} "], capture_output=True, text=True)
    for pid in map(int, found.stdout.split()):
        try:
            env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in env:
            return pid
    raise AssertionError(f"no rank {rank} of run {run_id} among {found.stdout.split()}")


def test_a_ddp_run_whose_rank_1_died_fails_naming_that_rank(tmp_path):
    db = tmp_path / "runs.db"
    run_id = launch.new_run(db, tiny_config(100_000, *NO_FILES, "recipe.batch_size=16"),
                            plan=LaunchPlan(nproc_per_node=2)).run_id
    wait_for(db, run_id, lambda r: r["step"] >= 10, timeout=300)
    pid = rank_pid(1, run_id)
    os.kill(pid, signal.SIGKILL)
    run = wait_for(db, run_id, ENDED, timeout=120)
    assert run["status"] == "failed"
    assert run["error"] == (f"RankDied: rank 1 of 2 (pid {pid}) ended while rank 0 waited for it in a collective "
                            f"(gloo: Connection reset by peer); its own output is in engine.log")
