"""An engine started by difftui's Slurm job wrapper (DIFFTUI_SLURM_TASK=1, spool mode) on Slurm's signals, without a
cluster: SIGUSR1 (the time-limit warning) and SIGTERM (a requeue or a preemption) make it checkpoint at the next step
and leave with exit code 75 and no final status, so that the requeued job resumes the same run from that step; a
stop asked through the command file (difftui stop) ends it 'stopped' (issue 17 item 4). The same engine outside
Slurm keeps its old answer to SIGTERM (stopped), tests/engine/test_engine_faults.py."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from engine_testkit import tiny_config

from difftui.engine.launch.runs import create_run
from difftui.engine.launch.signals import EXIT_REQUEUE
from difftui.engine.store import Store
from difftui.engine.store.ingest import ingest_run
from difftui.engine.store.spool import read_heartbeat, send_file_command

pytestmark = pytest.mark.usefixtures("engine_hygiene")

EXTRA = ("recipe.log_every=5", "recipe.grid_every=100000", "recipe.snapshot_every=100000")


def spool_engine(run_dir: Path, run_id: int) -> subprocess.Popen:
    env = {**os.environ, "DIFFTUI_SLURM_TASK": "1"}
    log = open(run_dir / "engine.log", "ab")
    return subprocess.Popen([sys.executable, "-m", "difftui.engine", "train", str(run_id), "--spool", str(run_dir)],
                            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def wait_step(run_dir: Path, proc: subprocess.Popen, step: int, timeout: float = 240) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        beat = read_heartbeat(run_dir) or {}
        if (beat.get("step") or 0) >= step:
            return beat["step"]
        assert proc.poll() is None, (run_dir / "engine.log").read_text()[-3000:]
        time.sleep(0.2)
    raise AssertionError(f"no step {step} within {timeout} s\n" + (run_dir / "engine.log").read_text()[-3000:])


def ingested(db: Path, run_id: int) -> dict:
    with Store(db) as store:
        ingest_run(store, store.get_run(run_id))
        run = store.get_run(run_id)
        run["events"] = [e["message"] for e in store.events_since(run_id)]
        run["steps"] = [s for s, _ in store.series(run_id, "L_simple")]
    return run


@pytest.mark.parametrize("sig", [signal.SIGUSR1, signal.SIGTERM])
def test_slurm_signals_checkpoint_and_leave_without_a_final_status_then_the_run_resumes_there(tmp_path, sig):
    db = tmp_path / "runs.db"
    run_id = create_run(db, tiny_config(200_000, *EXTRA), sink="spool")
    with Store(db) as store:
        run_dir = Path(store.get_run(run_id)["run_dir"])
    proc = spool_engine(run_dir, run_id)
    wait_step(run_dir, proc, 12)
    proc.send_signal(sig)
    assert proc.wait(timeout=120) == EXIT_REQUEUE
    run = ingested(db, run_id)
    assert run["status"] == "running"                          # no final status: the run waits for its next job
    left_at = run["step"]
    assert (run_dir / "checkpoints" / f"ckpt-{left_at:07d}.pt").exists()
    assert run["events"][-1] == (f"{signal.Signals(sig).name} from Slurm at step {left_at}: checkpointed; the run "
                                 f"continues when its job runs again")
    # The requeued job's engine: it resumes from that step, and the rows logged so far are not repeated.
    proc = spool_engine(run_dir, run_id)
    wait_step(run_dir, proc, left_at + 10)
    send_file_command(run_dir, "stop")                         # difftui stop: a file in runs/<id>/commands/
    assert proc.wait(timeout=120) == 0
    run = ingested(db, run_id)
    assert run["status"] == "stopped", run["error"]
    assert f"resumed from step {left_at} (ckpt-{left_at:07d}.pt)" in run["events"]
    assert run["steps"] == list(range(5, run["step"] + 1, 5))  # every logged step once, none missing
