"""Who is alive, in one home (difftui.engine.launch.liveness): runs by their lock, evaluator jobs by their process,
and the reaping of the dead ones, each with one line saying why (issue 15 item 3, issue 16 item 3)."""

import socket
import subprocess
import sys
import time
from pathlib import Path

from difftui.engine.launch import liveness
from difftui.engine.launch.lock import process_start_time
from difftui.engine.store import Store, open_for_reading


def _config(name="digits"):
    return {"dataset": {"name": name}, "backbone": {"name": "unet-demo", "off_tier": False},
            "sampler": {"name": "ddim"}, "recipe": {"name": "p1-default"}}


def sleeper():
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


HOLD_LOCK = ("import sys, time\n"
             "from difftui.engine.launch.lock import OwnerLock\n"
             "OwnerLock(sys.argv[1]).acquire('run')\n"
             "print('locked', flush=True)\n"
             "time.sleep(60)\n")


def hold_lock(path):
    """A process that owns `path` (as an engine owns runs/<id>/lock) until it is killed."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_run_is_alive_exactly_while_its_lock_is_held_whatever_its_pid_and_heartbeat(tmp_path):
    live = sleeper()
    try:
        with Store(tmp_path / "runs.db") as store:
            host = socket.gethostname()
            owned = store.create_run(_config(), name="owned", total_steps=10)
            orphan = store.create_run(_config(), name="orphan", total_steps=10)
            owner = hold_lock(Path(store.get_run(owned)["run_dir"]) / "lock")
            # The owner's heartbeat is an hour old (a slow step, a suspend): alive all the same.
            store.update_run(owned, status="running", pid=owner.pid, host=host, heartbeat=time.time() - 3600)
            # A live pid that does not hold the lock does not own the run.
            store.update_run(orphan, status="running", pid=live.pid, host=host, heartbeat=time.time())
            assert liveness.reap_dead_runs(store) == [orphan]
            assert store.get_run(owned)["status"] == "running"
            assert "crashed" in store.events_since(orphan)[-1]["message"]
            owner.kill()                            # kill -9: the kernel drops the lock
            owner.wait()
            assert liveness.reap_dead_runs(store) == [owned]
            assert store.get_run(owned)["status"] == "crashed"
    finally:
        live.kill()
        live.wait()


def test_a_queued_run_lives_while_its_launched_process_does_and_a_never_started_one_waits(tmp_path):
    live = sleeper()
    try:
        with Store(tmp_path / "runs.db") as store:
            host = socket.gethostname()
            starting = store.create_run(_config(), name="starting", total_steps=10)
            reused = store.create_run(_config(), name="reused-pid", total_steps=10)
            waiting = store.create_run(_config(), name="waiting", total_steps=10)
            store.update_run(starting, status="queued", pid=live.pid, pid_start=process_start_time(live.pid),
                             host=host)
            # The same pid with another start time is another process (the launched one is gone, its pid reused).
            store.update_run(reused, status="queued", pid=live.pid, pid_start=process_start_time(live.pid) - 100,
                             host=host)
            assert liveness.reap_dead_runs(store) == [reused]
            assert store.get_run(waiting)["status"] == "queued"         # no pid: never started, not dead
            live.kill()
            live.wait()
            assert liveness.reap_dead_runs(store) == [starting]
    finally:
        live.kill()
        live.wait()


def test_an_evaluator_job_lives_while_its_process_does_and_is_failed_with_one_line_once_it_is_gone(tmp_path):
    live = sleeper()
    try:
        with Store(tmp_path / "runs.db") as store:
            host = socket.gethostname()
            run_id = store.create_run(_config(), name="a", total_steps=10)
            running, reused, fresh, stale, remote = (store.create_job(run_id, "eval") for _ in range(5))
            store.record_job_pid(running, pid=live.pid, pid_start=process_start_time(live.pid), host=host)
            store.claim_job(running, pid=live.pid, pid_start=process_start_time(live.pid), host=host)
            # The same pid with another start time is another process (the evaluator is gone, its pid reused).
            store.record_job_pid(reused, pid=live.pid, pid_start=process_start_time(live.pid) - 100, host=host)
            store.update_job_row(stale, created=time.time() - 2 * liveness.HEARTBEAT_TIMEOUT_S)   # never got a pid
            store.update_job_row(remote, pid=live.pid, host="another-host", status="running")
            assert liveness.reap_dead_jobs(store) == [reused, stale]
            assert [store.get_job(j)["status"] for j in (running, fresh, remote)] == ["running", "queued", "running"]
            run_dir = Path(store.get_run(run_id)["run_dir"])
            assert store.get_job(reused)["error"] == (f"evaluator process ended without a final status (pid {live.pid},"
                                                      f" killed or crashed); see {run_dir / 'eval.log'}")
            assert store.get_job(stale)["error"].startswith("the evaluator never started")
            live.kill()                                 # kill -9
            live.wait()
            assert liveness.reap_dead_jobs(store) == [running]
            job = store.get_job(running)
            assert job["status"] == "failed" and job["ended"] is not None and "\n" not in job["error"]
            assert f"pid {live.pid}" in job["error"] and "eval.log" in job["error"]
            # The evaluator's own final word is never overwritten by a late reaper.
            store.finish_job(fresh, "done", message="FID 12.3")
            assert not store.fail_dead_job(fresh, "late") and store.get_job(fresh)["status"] == "done"
    finally:
        live.kill()
        live.wait()


def test_a_read_only_database_is_shown_as_it_is_and_never_reaped(tmp_path):
    db = tmp_path / "runs.db"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with Store(db) as store:
        run_id = store.create_run(_config(), name="a", total_steps=10)
        store.update_run(run_id, status="running", pid=gone.pid, host=socket.gethostname())
        job = store.create_job(run_id, "eval")
        store.update_job_row(job, status="running", pid=gone.pid, host=socket.gethostname())
    with Store(db, read_only=True) as store:
        assert liveness.reap_dead_runs(store) == [] and liveness.reap_dead_jobs(store) == []
        assert liveness.reap_dead_sweeps(store) == []
        assert store.get_run(run_id)["status"] == "running" and store.get_job(job)["status"] == "running"
    with open_for_reading(db) as store:                 # writable here: reaped
        liveness.reap(store)
        assert store.get_run(run_id)["status"] == "crashed" and store.get_job(job)["status"] == "failed"
