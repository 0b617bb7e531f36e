"""The run database: schema version, WAL, batched writes, incremental reads, commands, crash reaping."""

import socket
import sqlite3
import subprocess
import sys
import time

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


def test_run_with_dead_pid_is_reaped_as_crashed_and_live_one_is_not(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with Store(tmp_path / "runs.db") as store:
            now = time.time()
            a = store.create_run(_config(), name="dead", total_steps=10)
            b = store.create_run(_config(), name="live", total_steps=10)
            c = store.create_run(_config(), name="silent", total_steps=10)
            host = socket.gethostname()
            store.update_run(a, status="running", pid=dead.pid, host=host, heartbeat=now)
            store.update_run(b, status="running", pid=live.pid, host=host, heartbeat=now)
            store.update_run(c, status="running", pid=live.pid, host=host, heartbeat=now - 3600)
            assert sorted(store.reap_dead_runs()) == [a, c]
            assert [store.get_run(i)["status"] for i in (a, b, c)] == ["crashed", "running", "crashed"]
            assert "crashed" in store.events_since(a)[-1]["message"]
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


def test_stopping_run_before_its_first_heartbeat_is_alive_while_its_process_lives(tmp_path):
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with Store(tmp_path / "runs.db") as store:
            run_id = store.create_run(_config(), name="a", total_steps=10)
            store.update_run(run_id, status="stopping", pid=live.pid, host=socket.gethostname(), created=0.0)
            assert store.reap_dead_runs() == []
            live.kill()
            live.wait()
            assert store.reap_dead_runs() == [run_id]
    finally:
        live.kill()
        live.wait()
