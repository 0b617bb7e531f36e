"""The run database: schema version, WAL, batched writes, incremental reads, commands, the guarded status
transitions (liveness and reaping: test_liveness.py)."""

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
    with pytest.raises(StoreError, match=r"notes\.db: not a run database \(the file is not an SQLite database\)"):
        Store(db)


def test_run_lifecycle_and_run_dir_beside_database(tmp_path):
    with Store(tmp_path / "runs.db") as store:
        run_id = store.create_run(_config(), name="a", total_steps=100)
        run = store.get_run(run_id)
        assert run["status"] == "queued" and run["dataset"] == "digits" and run["total_steps"] == 100
        assert run["run_dir"] == str(tmp_path / "runs" / str(run_id))
        assert (tmp_path / "runs" / str(run_id)).is_dir()
        assert store.run_config(run_id) == _config()
        store.finish_run(run_id, "completed")
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


def test_each_status_transition_is_one_guarded_statement(tmp_path):
    """runs.py's status machine: a transition that lost a race changes nothing (and says so)."""
    with Store(tmp_path / "runs.db") as store:
        run_id = store.create_run(_config(), name="a", total_steps=100)
        assert not store.mark_stopping(run_id)                          # only a running run becomes stopping
        store.claim_for_launch(run_id, pid=123, pid_start=1.5, host="h", launch="{}")
        run = store.get_run(run_id)
        assert (run["status"], run["pid"], run["pid_start"], run["host"]) == ("queued", 123, 1.5, "h")
        store.mark_running(run_id, pid=124, pid_start=2.5, host="h", started=10.0)
        run = store.get_run(run_id)
        assert (run["status"], run["pid"], run["started"], run["error"]) == ("running", 124, 10.0, None)
        assert run["heartbeat"] is not None
        assert store.mark_stopping(run_id) and not store.mark_stopping(run_id)
        events = len(store.events_since(run_id))
        assert store.finish_run(run_id, "stopped")
        # The engine's final word came first: a late reaper or a second ending changes nothing, logs nothing.
        assert not store.mark_crashed(run_id, "engine process ended without a final status")
        assert not store.finish_run(run_id, "completed")
        run = store.get_run(run_id)
        assert run["status"] == "stopped" and run["error"] is None and len(store.events_since(run_id)) == events
        with pytest.raises(ValueError, match="'crashed' is not one of completed, stopped, failed"):
            store.finish_run(run_id, "crashed")
        # The engine's last batch and its final status are one transaction.
        other = store.create_run(_config(), name="b", total_steps=100)
        store.mark_running(other, pid=1, pid_start=None, host="h", started=1.0)
        store.write_batch(other, metrics=[(5, 0.0, "L_simple", 0.5, 1.0)], run_fields={"step": 5},
                          final=("failed", "RunFailed: loss is not finite"))
        run = store.get_run(other)
        assert (run["status"], run["step"], run["error"]) == ("failed", 5, "RunFailed: loss is not finite")
        assert store.series(other, "L_simple") == [(5, 0.5)]
        third = store.create_run(_config(), name="c", total_steps=100)
        store.mark_running(third, pid=1, pid_start=None, host="h", started=1.0)
        assert store.mark_crashed(third, "killed with SIGKILL", event="gone")
        run = store.get_run(third)
        assert run["status"] == "crashed" and run["error"] == "killed with SIGKILL" and run["ended"] is not None
        assert store.events_since(third)[-1]["message"] == "gone"


def test_a_sweep_ends_only_from_the_statuses_its_caller_names_and_a_reaper_only_its_own_supervisor(tmp_path):
    with Store(tmp_path / "runs.db") as store:
        sweep_id = store.create_sweep(name="s", preset="p1-dropout", base_config={}, grid={}, spec={},
                                      runs_per_device=1, devices=["cpu"])
        store.claim_sweep(sweep_id, pid=55, pid_start=None, host="h")
        assert not store.end_sweep(sweep_id, "crashed", supervisor_pid=66)    # a newer supervisor claimed it
        assert store.mark_sweep_stopping(sweep_id) and not store.mark_sweep_stopping(sweep_id)
        assert not store.end_sweep(sweep_id, "completed", only_from=("running",))
        assert store.end_sweep(sweep_id, "stopped", supervisor_pid=55)
        ended = store.get_sweep(sweep_id)["ended"]
        assert store.get_sweep(sweep_id)["status"] == "stopped" and ended is not None
        assert not store.end_sweep(sweep_id, "crashed")                       # only from running or stopping
        assert store.end_sweep(sweep_id, "completed", only_from=("stopped",))
        assert store.get_sweep(sweep_id)["ended"] == ended                    # it had ended already


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
