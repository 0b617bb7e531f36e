"""One engine per run, with real processes: two resumes at once give one engine and one refusal; a run frozen longer
than any heartbeat timeout stays alive and un-reaped; stop --force; a stop signal during start-up is not lost."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from engine_testkit import tiny_config, wait_for

from difftui.engine.launch import liveness
from difftui.engine.launch import runs as launch
from difftui.engine.launch.lock import Owned
from difftui.engine.store import ACTIVE_STATUSES, Store

pytestmark = pytest.mark.usefixtures("engine_hygiene")     # tests/conftest.py

ENDED = lambda run: run["status"] not in ACTIVE_STATUSES
DIFFTUI = str(Path(sys.executable).parent / "difftui")
QUIET = ("recipe.log_every=5", "recipe.grid_every=100000")


def duplicated_metric_groups(db, run_id) -> int:
    with Store(db) as store:
        return store.db.execute("SELECT COUNT(*) FROM (SELECT step, name FROM metrics WHERE run_id = ?"
                                " GROUP BY step, name HAVING COUNT(*) > 1)", [run_id]).fetchone()[0]


def engine_starts(db, run_id) -> int:
    log = (Path(db).parent / "runs" / str(run_id) / "engine.log").read_text()
    return log.count("--- engine pid")


def test_two_resumes_at_the_same_moment_give_one_engine_and_one_refusal(tmp_path):
    db = tmp_path / "runs.db"
    run_id = launch.create_run(db, tiny_config(40, *QUIET, "recipe.snapshot_every=20"))
    with Store(db) as store:
        store.update_run(run_id, status="crashed")          # a crashed run, as after kill -9
    procs = [subprocess.Popen([DIFFTUI, "--db", str(db), "resume", str(run_id), "--detach"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    refusal = next(err for code, _, err in results if code == 2)
    assert refusal.count("\n") == 1 and refusal.startswith(f"difftui: error: run {run_id} is ")
    assert "stop it first" in refusal
    run = wait_for(db, run_id, ENDED)
    assert run["status"] == "completed" and run["step"] == 40
    assert engine_starts(db, run_id) == 1
    assert duplicated_metric_groups(db, run_id) == 0


def test_a_second_engine_started_by_hand_is_refused_and_touches_nothing(tmp_path):
    db = tmp_path / "runs.db"
    run_id = launch.new_run(db, tiny_config(100_000, *QUIET, "recipe.snapshot_every=100000")).run_id
    try:
        first = wait_for(db, run_id, lambda r: r["status"] == "running" and r["step"] > 0)
        second = subprocess.run([sys.executable, "-m", "difftui.engine", "train", str(run_id), "--db", str(db)],
                                capture_output=True, text=True, timeout=120)
        assert second.returncode == 3
        assert f"run {run_id} is owned by pid {first['pid']}" in second.stderr
        with Store(db) as store:
            run = store.get_run(run_id)
        assert run["status"] == "running" and run["pid"] == first["pid"]
    finally:
        launch.request_stop(db, run_id)
    assert wait_for(db, run_id, ENDED)["status"] == "stopped"


def test_a_run_frozen_longer_than_the_heartbeat_timeout_stays_alive_and_unreaped(tmp_path):
    """SIGSTOP freezes the engine (as a very slow step, a compile or a suspended laptop would, from outside): its
    heartbeat goes stale, yet it holds its lock, so it is alive, not reaped, and a resume is refused."""
    db = tmp_path / "runs.db"
    run_id = launch.new_run(db, tiny_config(100_000, *QUIET, "recipe.snapshot_every=100000")).run_id
    run = wait_for(db, run_id, lambda r: r["status"] == "running" and r["step"] > 0)
    os.kill(run["pid"], signal.SIGSTOP)
    try:
        with Store(db) as store:
            store.update_run(run_id, heartbeat=time.time() - 3600)     # far beyond any heartbeat timeout
            assert liveness.reap_dead_runs(store) == []
            assert liveness.run_alive(store.get_run(run_id))
        with pytest.raises(Owned, match=f"run {run_id} is still running"):
            launch.resume(db, run_id)
    finally:
        os.kill(run["pid"], signal.SIGCONT)
    wait_for(db, run_id, lambda r: r["heartbeat"] > time.time() - 60)  # it beats again by itself
    launch.request_stop(db, run_id)
    assert wait_for(db, run_id, ENDED)["status"] == "stopped"


def test_stop_force_stops_a_live_engine_with_sigterm_and_kills_a_frozen_one(tmp_path):
    db = tmp_path / "runs.db"
    a = launch.new_run(db, tiny_config(100_000, *QUIET, "recipe.snapshot_every=100000")).run_id
    wait_for(db, a, lambda r: r["status"] == "running" and r["step"] > 0)
    line = launch.force_stop(db, a, grace_s=60).message
    assert line.startswith(f"run {a} stopped at step") and line.endswith("after SIGTERM")
    with Store(db) as store:
        events = [e["message"] for e in store.events_since(a)]
    assert any(e.startswith("stopped at step") and e.endswith("(SIGTERM)") for e in events)

    b = launch.new_run(db, tiny_config(100_000, *QUIET, "recipe.snapshot_every=100000")).run_id
    run = wait_for(db, b, lambda r: r["status"] == "running" and r["step"] > 0)
    os.kill(run["pid"], signal.SIGSTOP)                 # it cannot answer SIGTERM: SIGKILL after the grace period
    line = launch.force_stop(db, b, grace_s=2).message
    assert line == f"run {b} killed with SIGKILL after 2 s (stop --force)"
    with Store(db) as store:
        run = store.get_run(b)
        assert run["status"] == "crashed" and run["error"] == "killed with SIGKILL after 2 s (stop --force)"
        assert not liveness.run_alive(run)


def test_a_stop_signal_during_start_up_is_not_lost(tmp_path):
    db = tmp_path / "runs.db"
    run_id = launch.create_run(db, tiny_config(100_000, *QUIET))
    proc = launch.start_run(db, run_id)
    os.kill(proc.pid, signal.SIGTERM)                   # while the interpreter starts, before any handler exists
    assert proc.wait(timeout=120) == 0
    run = wait_for(db, run_id, ENDED)
    assert run["status"] == "stopped" and run["step"] == 0
    with Store(db) as store:
        events = [e["message"] for e in store.events_since(run_id)]
    assert events[-1] == "stopped before training started (SIGTERM)"
    assert "--- stopped at step 0" in (tmp_path / "runs" / str(run_id) / "engine.log").read_text()
