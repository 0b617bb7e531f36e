"""Issue 16 item 3: an evaluation at work never breaks `difftui show`, and an evaluator killed with SIGKILL is reaped:
its job becomes `failed` with one line on the next look, and a foreground `difftui eval` whose evaluator dies ends with
one line, never a traceback and never `running` forever."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from difftui.engine.eval.jobs import spawn_evaluator
from difftui.engine.launch.lock import process_start_time
from difftui.engine.store import Store
from difftui.tui.cli import app

DIFFTUI = str(Path(sys.executable).with_name("difftui"))
TIMEOUT_S = 120.0


def show(db, run_id):
    return CliRunner().invoke(app, ["--db", str(db), "show", str(run_id)])


def wait_for_job(db, run_id, predicate, what: str) -> dict:
    """Poll the run's newest job row until predicate(job) holds (a fast poll: the test kills what it finds)."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        with Store(db, create=False) as store:
            jobs = store.jobs_for(run_id)
        if jobs and predicate(jobs[-1]):
            return jobs[-1]
        assert time.monotonic() < deadline, f"{what}: {jobs[-1] if jobs else 'no job'}"
        time.sleep(0.02)


def test_show_lists_a_running_evaluation_and_exits_0(digits_run):
    db, run_id = digits_run
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])   # the evaluator, as far as
    try:                                                                              # liveness can tell
        with Store(db) as store:
            job = store.create_job(run_id, "eval")
            store.claim_job(job, pid=live.pid, pid_start=process_start_time(live.pid), host=socket.gethostname(),
                            message="starting")
            store.report_progress(job, 3, 12, "FID: repeat 1/1, 640/10,000 images")
        result = show(db, run_id)
        assert result.exit_code == 0, result.stderr or result.stdout
        assert f"  eval job  {job} running: 3/12 FID: repeat 1/1, 640/10,000 images" in result.stdout
        with Store(db) as store:
            assert store.get_job(job)["status"] == "running"
    finally:
        live.kill()
        live.wait()
    result = show(db, run_id)                        # its process is gone: reaped, no longer listed as at work
    assert result.exit_code == 0 and "eval job" not in result.stdout
    with Store(db) as store:
        assert store.get_job(job)["status"] == "failed"


def test_an_evaluator_killed_with_sigkill_is_failed_with_one_line_on_the_next_show(digits_run):
    db, run_id = digits_run
    job_id, proc = spawn_evaluator(db, run_id, ["--device", "cpu"])
    try:
        job = wait_for_job(db, run_id, lambda j: j["id"] == job_id and j["status"] != "queued", "the evaluator")
        assert job["status"] == "running" and job["pid"] == proc.pid and job["pid_start"] is not None
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    with Store(db) as store:
        assert store.get_job(job_id)["status"] == "running"                  # nobody has looked yet
    result = show(db, run_id)
    assert result.exit_code == 0, result.stderr or result.stdout
    assert "eval job" not in result.stdout and "Traceback" not in result.stdout
    with Store(db) as store:
        job = store.get_job(job_id)
        run_dir = Path(store.get_run(run_id)["run_dir"])
    assert job["status"] == "failed" and job["ended"] is not None
    assert job["error"] == (f"evaluator process ended without a final status (pid {proc.pid}, killed or crashed); "
                            f"see {run_dir / 'eval.log'}")


def test_a_foreground_eval_whose_evaluator_dies_ends_with_one_line(digits_run):
    db, run_id = digits_run
    with Store(db) as store:
        before = len(store.jobs_for(run_id))
    cli = subprocess.Popen([DIFFTUI, "--db", str(db), "eval", str(run_id), "--device", "cpu"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        job = wait_for_job(db, run_id, lambda j: j["id"] > before and j["status"] == "running", "the evaluator")
        os.kill(job["pid"], signal.SIGKILL)
        out, err = cli.communicate(timeout=TIMEOUT_S)
    finally:
        if cli.poll() is None:
            cli.kill()
    assert cli.returncode == 1, (out, err)
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"difftui: error: evaluator process ended without a final status (pid {job['pid']}, "
                               f"killed or crashed); see ")
    assert lines[0].endswith("eval.log (exit: SIGKILL)")
    with Store(db) as store:
        assert store.get_job(job["id"])["status"] == "failed"
