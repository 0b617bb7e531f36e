"""The sweep side of runs.db: a database written before sweeps existed opens and migrates unchanged; members are
queued and re-queued without ever touching a live run; a sweep whose supervisor is gone is reaped; last and best
metrics read NaN as data."""

from __future__ import annotations

import json
import math
import socket
import sqlite3
import subprocess
import sys

import sqlite_utils

from difftui.engine.launch import liveness
from difftui.engine.store import SCHEMA_VERSION, Store, migrations, sweep_outcome


def _config(dataset="digits"):
    return {"dataset": {"name": dataset}, "backbone": {"name": "unet-demo", "off_tier": False},
            "sampler": {"name": "ddim"}, "recipe": {"name": "p1-default"}}


def test_a_database_of_todays_release_opens_and_migrates_unchanged(tmp_path):
    db = tmp_path / "runs.db"
    # The schema of the release before sweeps: the v1 and v2 migrations only, written with its INSERTs.
    conn = sqlite3.connect(db, isolation_level=None)
    old = sqlite_utils.Database(conn)
    migrations._v1(old)
    migrations._v2_ownership(old)
    conn.execute("PRAGMA user_version = 2")
    conn.execute("INSERT INTO runs (name, status, config, dataset, backbone, sampler, recipe, off_tier, device, step,"
                 " total_steps, created, run_dir, pid_start, launch) VALUES ('old', 'completed', ?, 'digits',"
                 " 'unet-demo', 'ddim', 'p1-default', 0, 'cpu', 300, 300, 1.0, ?, NULL, '{}')",
                 [json.dumps(_config()), str(tmp_path / "runs" / "1")])
    conn.execute("INSERT INTO metrics (run_id, step, kimg, name, value, time) VALUES (1, 300, 38.4, 'L_simple', 0.05,"
                 " 2.0)")
    conn.close()

    with Store(db) as store:
        assert store.schema_version == SCHEMA_VERSION
        run = store.get_run(1)
        assert (run["name"], run["status"], run["step"], run["sweep_id"]) == ("old", "completed", 300, None)
        assert run["axis_values"] is None and run["off_grid"] == 0 and run["sweep_slot"] is None
        assert store.list_runs()[0]["last_loss"] == 0.05
        assert store.list_sweeps() == []
        assert {"status", "preset", "spec", "runs_per_device", "devices", "pid", "sweep_dir"} <= {
            c.name for c in store.db["sweeps"].columns}
    with Store(db) as store:                         # reopening does not migrate again
        assert store.schema_version == SCHEMA_VERSION


def _sweep(store: Store) -> int:
    return store.create_sweep(name="s", preset="p1-dropout", base_config=_config(), grid={"axes": {}}, spec={},
                              runs_per_device=2, devices=["cpu"])


def test_requeue_touches_only_finished_members_of_that_sweep(tmp_path):
    with Store(tmp_path / "runs.db") as store:
        sweep_id = _sweep(store)
        other = _sweep(store)
        ids = {}
        for status in ("failed", "crashed", "stopped", "completed", "running"):
            ids[status] = store.create_run(_config(), name=status, total_steps=10, sweep_id=sweep_id)
            store.update_run(ids[status], status=status, pid=123, error="x", sweep_slot=1)
        outsider = store.create_run(_config(), name="o", total_steps=10, sweep_id=other)
        store.update_run(outsider, status="failed")
        again = store.requeue_members(sweep_id, ("failed", "crashed", "running"))
        assert again == [ids["failed"], ids["crashed"]]                         # never a live run
        for status in ("failed", "crashed"):
            run = store.get_run(ids[status])
            assert (run["status"], run["pid"], run["error"], run["sweep_slot"]) == ("queued", None, None, None)
        assert store.get_run(ids["running"])["status"] == "running"
        assert store.get_run(outsider)["status"] == "failed"
        assert store.requeue_members(sweep_id, ("stopped",), run_ids=[ids["completed"]]) == []
        assert store.assign_slot(ids["failed"], 0) and not store.assign_slot(ids["running"], 0)


def test_a_sweep_whose_supervisor_is_gone_is_reaped_by_what_is_left(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with Store(tmp_path / "runs.db") as store:
        waiting, done, stopping, fresh = (_sweep(store) for _ in range(4))
        for sweep_id in (waiting, done, stopping):
            store.claim_sweep(sweep_id, pid=gone.pid, pid_start=None, host=socket.gethostname())
        store.create_run(_config(), name="w", total_steps=10, sweep_id=waiting)          # queued, no pid
        finished = store.create_run(_config(), name="d", total_steps=10, sweep_id=done)
        store.update_run(finished, status="completed")
        store.update_sweep(stopping, status="stopping")
        assert sorted(liveness.reap_dead_sweeps(store)) == sorted([waiting, done, stopping])
        assert store.get_sweep(waiting)["status"] == "crashed"
        assert "supervisor process is gone" in store.get_sweep(waiting)["error"]
        assert store.get_sweep(done)["status"] == "completed"
        assert store.get_sweep(stopping)["status"] == "stopped"
        assert store.get_sweep(fresh)["status"] == "running"                            # never claimed: left alone
        counts = {s["id"]: s["counts"] for s in store.list_sweeps()}
        assert counts[waiting] == {"queued": 1} and counts[done] == {"completed": 1}


def test_a_sweep_is_completed_only_when_every_member_completed():
    """Issue 16 item 7: the one rule for the supervisor, the reaper, sweep resume and Slurm sweeps."""
    assert sweep_outcome(["completed", "completed"]) == "completed"
    assert sweep_outcome(["completed", "stopped"]) == "partial"
    assert sweep_outcome(["failed", "completed"]) == "partial" and sweep_outcome(["crashed"]) == "partial"
    assert sweep_outcome(["completed", "running"]) is None and sweep_outcome(["stopped", "queued"]) is None


def test_the_reaper_ends_a_sweep_by_its_members_and_finishes_a_crashed_one_whose_members_ended(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with Store(tmp_path / "runs.db") as store:
        partial, crashed_done, crashed_busy = (_sweep(store) for _ in range(3))
        for sweep_id in (partial, crashed_done, crashed_busy):
            store.claim_sweep(sweep_id, pid=gone.pid, pid_start=None, host=socket.gethostname())
        for sweep_id, statuses in ((partial, ("completed", "stopped")), (crashed_done, ("completed", "running")),
                                   (crashed_busy, ("completed", "running"))):
            for status in statuses:
                run_id = store.create_run(_config(), name=status, total_steps=10, sweep_id=sweep_id)
                store.update_run(run_id, status=status, step=4 if status != "completed" else 10)
        # Reaped while a member still trains (its engine outlives the supervisor): crashed, as before.
        assert sorted(liveness.reap_dead_sweeps(store)) == sorted([partial, crashed_done, crashed_busy])
        assert store.get_sweep(partial)["status"] == "partial"
        assert [store.get_sweep(i)["status"] for i in (crashed_done, crashed_busy)] == ["crashed", "crashed"]
        # The orphaned member of one of them completes: the reaper completes that sweep, not `sweep resume`.
        running = [m for m in store.sweep_members(crashed_done) if m["status"] == "running"][0]
        store.update_run(running["id"], status="completed", step=10)
        assert liveness.reap_dead_sweeps(store) == [crashed_done]
        assert store.get_sweep(crashed_done)["status"] == "completed"
        assert store.get_sweep(crashed_busy)["status"] == "crashed"
        assert liveness.reap_dead_sweeps(store) == []                                  # nothing more to do


def test_a_slurm_sweep_ends_by_the_same_rule(tmp_path):
    """The Slurm path (its members' job arrays, no supervisor) ends a sweep by sweep_outcome too."""
    with Store(tmp_path / "runs.db") as store:
        partial, done = _sweep(store), _sweep(store)
        for sweep_id, statuses in ((partial, ("completed", "failed")), (done, ("completed", "completed"))):
            store.claim_slurm_sweep(sweep_id, json.dumps({"partition": "debug"}))
            for status in statuses:
                run_id = store.create_run(_config(), name=status, total_steps=10, sweep_id=sweep_id)
                store.update_run(run_id, status=status, step=10 if status == "completed" else 3)
        assert sorted(liveness.reap_dead_sweeps(store)) == sorted([partial, done])
        assert (store.get_sweep(partial)["status"], store.get_sweep(done)["status"]) == ("partial", "completed")


def test_last_and_best_skip_nan_for_best_but_show_it_as_last(tmp_path):
    with Store(tmp_path / "runs.db") as store:
        a = store.create_run(_config(), name="a", total_steps=10)
        b = store.create_run(_config(), name="b", total_steps=10)
        store.write_batch(a, metrics=[(5, 0.0, "L_simple", 0.5, 0.0), (10, 0.0, "L_simple", 0.2, 0.0),
                                      (15, 0.0, "L_simple", 0.3, 0.0)])
        store.write_batch(b, metrics=[(5, 0.0, "L_simple", 0.4, 0.0), (10, 0.0, "L_simple", math.nan, 0.0)])
        store.add_evals(a, [(10, "ddpm", 100, "nll_bpd", 4.2), (10, "ddim", 50, "nll_bpd", 3.9),
                            (5, "ddpm", 100, "nll_bpd", 3.0)])
        values = store.last_and_best([a, b], ["L_simple", "L_vlb"])
        assert values[a]["L_simple"] == (0.3, 0.2, 15)
        last, best, step = values[b]["L_simple"]
        assert math.isnan(last) and best == 0.4 and step == 10
        assert "L_vlb" not in values[a]
        assert store.latest_nll([a, b]) == {a: (10, 3.9)}
        rows = store.metrics_since_many([a, b], ["L_simple"], 0)
        assert [(r["run_id"], r["step"]) for r in rows] == [(a, 5), (a, 10), (a, 15), (b, 5), (b, 10)]
        assert store.metrics_since_many([a, b], ["L_simple"], rows[2]["id"])[0]["run_id"] == b
