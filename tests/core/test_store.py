"""The run database: schema version, WAL, batched writes, incremental reads, commands, crash reaping."""

import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from difftui.engine.store import SCHEMA_VERSION, Store, StoreError


def _config(name="digits"):
    return {"dataset": {"name": name}, "backbone": {"name": "unet-demo", "off_tier": False},
            "sampler": {"name": "ddim"}, "recipe": {"name": "p1-default"}}


def test_new_database_is_wal_with_current_schema_version(tmp_path):
    db = tmp_path / "runs.db"
    with Store(db) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert {"runs", "metrics", "gpu", "samples", "evals", "events", "commands", "sweeps"} <= set(
            store.db.table_names())
    # Reopening does not migrate again.
    with Store(db) as store:
        assert store.schema_version == SCHEMA_VERSION


def test_database_from_a_newer_difftui_is_refused_with_one_line(tmp_path):
    db = tmp_path / "runs.db"
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match=r"runs\.db: written by a newer difftui"):
        Store(db)


def test_a_file_that_is_not_sqlite_is_refused_naming_it(tmp_path):
    db = tmp_path / "notes.db"
    db.write_text("this is not a database" * 100)
    with pytest.raises(StoreError, match=r"notes\.db: not a usable run database"):
        Store(db)


def test_run_lifecycle_and_run_dir_beside_database(tmp_path):
    with Store(tmp_path / "runs.db") as store:
        run_id = store.create_run(_config(), name="a", total_steps=100)
        run = store.get_run(run_id)
        assert run["status"] == "queued" and run["dataset"] == "digits" and run["total_steps"] == 100
        assert run["run_dir"] == str(tmp_path / "runs" / str(run_id))
        assert (tmp_path / "runs" / str(run_id)).is_dir()
        assert store.run_config(run_id) == _config()
        store.set_status(run_id, "completed")
        assert store.get_run(run_id)["ended"] is not None
        store.delete_run(run_id)
        assert store.get_run(run_id) is None and not (tmp_path / "runs" / str(run_id)).exists()


def test_two_databases_in_one_directory_never_share_a_run_or_sweep_folder(tmp_path):
    with Store(tmp_path / "runs.db") as a, Store(tmp_path / "other.db") as b:
        ra, rb = a.create_run(_config(), name="a", total_steps=1), b.create_run(_config(), name="b", total_steps=1)
        assert ra == rb == 1
        assert a.get_run(ra)["run_dir"] == str(tmp_path / "runs" / "1")
        assert b.get_run(rb)["run_dir"] == str(tmp_path / "other-runs" / "1")
        kw = dict(preset="p1-dropout", base_config={}, grid={}, spec={}, runs_per_device=1, devices=["cpu"])
        sa, sb = a.create_sweep(name="a", **kw), b.create_sweep(name="b", **kw)
        assert a.get_sweep(sa)["sweep_dir"] != b.get_sweep(sb)["sweep_dir"]


def test_a_folder_left_by_a_deleted_database_is_never_taken_over(tmp_path):
    old = tmp_path / "runs" / "1" / "checkpoints"
    old.mkdir(parents=True)
    (old / "ckpt-0000500.pt").write_bytes(b"an old run's weights")
    (tmp_path / "runs" / "2").mkdir()                           # empty: free to use
    with Store(tmp_path / "runs.db") as store:
        first, second = (store.create_run(_config(), name=n, total_steps=1) for n in "ab")
        assert store.get_run(first)["run_dir"] == str(tmp_path / "runs" / "1.1")
        assert store.get_run(second)["run_dir"] == str(tmp_path / "runs" / "2")
    assert (old / "ckpt-0000500.pt").read_bytes() == b"an old run's weights"


def test_write_batch_is_one_transaction_and_reads_are_incremental(tmp_path):
    with Store(tmp_path / "runs.db") as store:
        run_id = store.create_run(_config(), name="a", total_steps=100)
        now = time.time()
        store.write_batch(run_id, metrics=[(10, 1.28, "L_simple", 0.5, now), (10, 1.28, "lr", 1e-4, now)],
                          events=[(now, "info", "hello")], run_fields={"step": 10, "heartbeat": now})
        rows = store.metrics_since(run_id)
        assert [(r["step"], r["name"], r["value"]) for r in rows] == [(10, "L_simple", 0.5), (10, "lr", 1e-4)]
        last = rows[-1]["id"]
        store.write_batch(run_id, metrics=[(20, 2.56, "L_simple", 0.25, now)])
        assert [(r["step"], r["value"]) for r in store.metrics_since(run_id, last)] == [(20, 0.25)]
        assert store.series(run_id, "L_simple") == [(10, 0.5), (20, 0.25)]
        assert store.latest_values(run_id) == {"L_simple": 0.25, "lr": 1e-4}
        assert store.get_run(run_id)["step"] == 10
        assert store.list_runs()[0]["last_loss"] == 0.25
        # A failing batch leaves nothing behind.
        with pytest.raises(sqlite3.Error):
            store.write_batch(run_id, metrics=[(30, 0.0, "L_simple", 0.1, now)], run_fields={"no_such": 1})
        assert store.series(run_id, "L_simple") == [(10, 0.5), (20, 0.25)]


def test_truncate_after_drops_rows_past_the_checkpoint(tmp_path):
    with Store(tmp_path / "runs.db") as store:
        run_id = store.create_run(_config(), name="a", total_steps=100)
        store.write_batch(run_id, metrics=[(s, 0.0, "L_simple", float(s), 0.0) for s in (10, 20, 30, 40)])
        store.add_sample(run_id, step=40, kind="grid", sampler="ddim", nfe=50, png=b"png")
        assert store.truncate_after(run_id, 20) == 2
        assert [s for s, _ in store.series(run_id, "L_simple")] == [10, 20]
        assert store.samples_index(run_id) == []


def test_commands_are_taken_once_in_order(tmp_path):
    with Store(tmp_path / "runs.db") as store:
        run_id = store.create_run(_config(), name="a", total_steps=100)
        store.send_command(run_id, "snapshot")
        store.send_command(run_id, "stop", {"why": "user"})
        taken = store.take_commands(run_id)
        assert [(c["command"], c["args"]) for c in taken] == [("snapshot", {}), ("stop", {"why": "user"})]
        assert store.take_commands(run_id) == []


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
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
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
            assert store.reap_dead_runs() == [orphan]
            assert store.get_run(owned)["status"] == "running"
            assert "crashed" in store.events_since(orphan)[-1]["message"]
            owner.kill()                            # kill -9: the kernel drops the lock
            owner.wait()
            assert store.reap_dead_runs() == [owned]
            assert store.get_run(owned)["status"] == "crashed"
    finally:
        live.kill()
        live.wait()


def test_a_queued_run_lives_while_its_launched_process_does_and_a_never_started_one_waits(tmp_path):
    from difftui.engine.launch.lock import process_start_time
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
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
            assert store.reap_dead_runs() == [reused]
            assert store.get_run(waiting)["status"] == "queued"         # no pid: never started, not dead
            live.kill()
            live.wait()
            assert store.reap_dead_runs() == [starting]
    finally:
        live.kill()
        live.wait()


def test_concurrent_writer_and_reader_processes_do_not_block(tmp_path):
    """A second process writing in WAL mode while this one reads: no 'database is locked'."""
    db = tmp_path / "runs.db"
    with Store(db) as store:
        run_id = store.create_run(_config(), name="a", total_steps=100)
    code = (
        "import sys, time\n"
        "from difftui.engine.store import Store\n"
        "s = Store(sys.argv[1])\n"
        "for i in range(200):\n"
        "    s.write_batch(int(sys.argv[2]), metrics=[(i, 0.0, 'L_simple', float(i), time.time())])\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(db), str(run_id)])
    with Store(db) as reader:
        deadline = time.time() + 60
        while proc.poll() is None and time.time() < deadline:
            reader.metrics_since(run_id, 0)     # raises sqlite3.OperationalError if the writer locked us out
        assert proc.wait(timeout=60) == 0
        assert len(reader.series(run_id, "L_simple")) == 200
        assert reader.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_two_processes_creating_a_new_database_at_once_both_succeed(tmp_path):
    db = tmp_path / "runs.db"
    code = "import sys; from difftui.engine.store import Store; Store(sys.argv[1]).close()"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(db)], stderr=subprocess.PIPE) for _ in range(4)]
    errors = [p.communicate(timeout=60)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
    with Store(db) as store:
        assert store.schema_version == SCHEMA_VERSION


def test_nan_and_inf_are_stored_and_read_back_as_such_not_as_null(tmp_path):
    import math
    with Store(tmp_path / "runs.db") as store:
        run_id = store.create_run(_config(), name="a", total_steps=10)
        now = time.time()
        store.write_batch(run_id, metrics=[(5, 0.1, "L_simple", 0.5, now), (10, 0.2, "L_simple", math.nan, now),
                                           (10, 0.2, "grad_norm", math.inf, now)],
                          gpu=[(now, 0, math.nan, 10.0, 80.0, 40.0, 300.0, "H100", "GPU-1", "util: NotSupported")])
        store.add_evals(run_id, [(10, "ddim", 50, "nll_bpd", -math.inf)])
        series = store.series(run_id, "L_simple")
        assert series[0] == (5, 0.5) and series[1][0] == 10 and math.isnan(series[1][1])
        latest = store.latest_values(run_id)
        assert math.isnan(latest["L_simple"]) and latest["grad_norm"] == math.inf
        assert math.isnan(store.list_runs()[0]["last_loss"])
        assert math.isnan(store.metrics_since(run_id)[1]["value"])
        gpu = store.gpu_since(run_id)[0]
        assert math.isnan(gpu["util"]) and gpu["mem_used"] == 10.0 and gpu["error"] == "util: NotSupported"
        assert store.evals_for(run_id)[0]["value"] == -math.inf


def test_rows_written_after_a_resume_truncates_are_above_every_readers_cursor(tmp_path):
    """A resume deletes the rows logged after its checkpoint; row ids must not be handed out again below a reader's
    `WHERE id > last_seen` cursor, or the dashboard would never see the resumed run's new rows (or grids)."""
    with Store(tmp_path / "runs.db") as store:
        run_id = store.create_run(_config(), name="a", total_steps=100)
        now = time.time()
        store.write_batch(run_id, metrics=[(s, 0.0, "L_simple", 1.0 / s, now) for s in range(10, 60, 10)])
        grid = store.add_sample(run_id, step=50, kind="grid", sampler="ddim", nfe=5, png=b"png")
        metric_cursor, sample_cursor = store.metric_cursor(run_id), grid
        assert store.truncate_after(run_id, 0) == 5              # no checkpoint: the run starts again at step 0
        store.write_batch(run_id, metrics=[(10, 0.0, "L_simple", 0.9, now)])
        again = store.add_sample(run_id, step=10, kind="grid", sampler="ddim", nfe=5, png=b"png")
        assert [(r["step"], r["value"]) for r in store.metrics_since(run_id, metric_cursor)] == [(10, 0.9)]
        assert again > sample_cursor
