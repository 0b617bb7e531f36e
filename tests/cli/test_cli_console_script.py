"""The installed `difftui` console script as a real subprocess: --help, a followed run to completion, ls/show with
DIFFTUI_DB, and Ctrl-C detaching from a followed run while the engine keeps training."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from difftui.engine.launch import liveness
from difftui.engine.store import Store

DIFFTUI = str(Path(sys.executable).with_name("difftui"))
TINY = ["--set", "recipe.batch_size=8", "--set", "backbone.arch.model_channels=16", "--set", "sampler.grid.steps=10"]


@pytest.fixture
def env(engine_hygiene):
    """The console script's environment: one CPU thread, DIFFTUI_DB in tmp_path (engines stopped at teardown)."""
    return {**os.environ, "DIFFTUI_CPU_THREADS": "1", "DIFFTUI_DB": str(engine_hygiene), "COLUMNS": "120"}


def difftui(*args, env, timeout=180, cwd=None):
    return subprocess.run([DIFFTUI, *map(str, args)], env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, cwd=cwd)


def test_help_lists_the_commands(env):
    result = difftui("--help", env=env)
    assert result.returncode == 0
    for command in ("run", "ls", "show", "stop", "resume", "presets"):
        assert command in result.stdout


def test_followed_run_completes_and_ls_shows_it(tmp_path, env):
    result = difftui("run", *TINY, "--max-steps", 30, "--device", "cpu", "--set", "recipe.grid_every=15", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "run 1 completed at step 30/30" in result.stdout and "L_simple" in result.stdout
    assert (tmp_path / "runs" / "1" / "grids" / "step-0000030.png").exists()
    listing = difftui("ls", env=env)
    row = next(line for line in listing.stdout.splitlines() if line.strip().startswith("1 "))
    assert "completed" in row and "30/30" in row and "cpu" in row
    shown = difftui("show", 1, env=env)
    assert "grid at step 15" in shown.stdout and "completed at step 30" in shown.stdout
    # `--db` beats DIFFTUI_DB.
    other = difftui("--db", tmp_path / "other.db", "ls", env=env)
    assert other.stdout.startswith("no runs yet")


def test_ctrl_c_detaches_and_the_run_keeps_going(tmp_path, env):
    db = tmp_path / "runs.db"
    Store(db).close()                                   # poll below an existing database, not one being created
    proc = subprocess.Popen([DIFFTUI, "run", *TINY, "--max-steps", "100000", "--device", "cpu"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while True:
        with Store(db, create=False) as store:
            run = store.get_run(1)
        if run and run["status"] == "running" and run["step"] > 0:
            break
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)                     # what Ctrl-C in the terminal does to the CLI
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "detached from run 1; it keeps running" in out
    time.sleep(1.5)
    with Store(db, create=False) as store:
        assert liveness.reap_dead_runs(store) == []
        before = store.get_run(1)
    assert before["status"] == "running"
    stopped = difftui("stop", 1, "--wait", env=env)
    assert stopped.returncode == 0, stopped.stderr
    assert "run 1 stopped at step" in stopped.stdout


def test_a_followed_run_whose_engine_is_killed_ends_as_crashed_with_one_line(tmp_path, env):
    """kill -9 of the engine under `difftui run` (followed): the follower reaps it (the liveness rule) and exits 1
    with one line, never a traceback and never 'running' forever."""
    db = tmp_path / "runs.db"
    Store(db).close()
    proc = subprocess.Popen([DIFFTUI, "run", *TINY, "--max-steps", "100000", "--device", "cpu"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            with Store(db, create=False) as store:
                run = store.get_run(1)
            if run and run["status"] == "running" and run["step"] > 0:
                break
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
            time.sleep(0.2)
        os.kill(run["pid"], signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, (out, err)
    assert "Traceback" not in out + err
    assert err.strip().splitlines() == ["difftui: run 1 crashed: engine process ended without a final status"]
    with Store(db, create=False) as store:
        assert store.get_run(1)["status"] == "crashed"
