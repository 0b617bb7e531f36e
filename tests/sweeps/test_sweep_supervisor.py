"""The sweep supervisor as a real detached process over real engines on a real runs.db (tiny runs on the CPU): it
respects its slots, survives kill -9 without losing or duplicating a member, lets a diverging member fail alone,
holds its queue on stop, and takes new values and retries while it runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
import yaml
from sweep_testkit import engine_starts, launches, tiny_spec, wait_until

from difftui.engine.config.catalog import Catalog
from difftui.engine.launch import liveness
from difftui.engine.launch.lock import Owned
from difftui.engine.store import ACTIVE_STATUSES, Store
from difftui.engine.sweeps import (
    Slots,
    SweepError,
    add_value,
    launch_sweep,
    plan_sweep,
    resume_sweep,
    retry_members,
    start_supervisor,
    stop_sweep,
)
from difftui.engine.sweeps.control import supervisor_argv

pytestmark = pytest.mark.usefixtures("sweep_db")

CAT = Catalog()


def _ended(sweep_id):
    return lambda store: store.get_sweep(sweep_id)["status"] not in ("running", "stopping")


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one moment (an end at the same instant as a start closes first)."""
    points = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals], key=lambda p: (p[0], p[1]))
    open_, most = 0, 0
    for _, d in points:
        open_ += d
        most = max(most, open_)
    return most


def test_three_dropout_members_at_concurrency_two_never_run_three_at_once(sweep_db):
    db = sweep_db
    slots = Slots(("cpu",), 2)
    plan = plan_sweep(CAT, "p1-dropout", tiny_spec(40), device=slots.member_device)
    sweep_id, proc = launch_sweep(db, plan, slots)
    # A second supervisor for the same sweep is refused with one line, whoever starts it.
    with pytest.raises(Owned, match=rf"^sweep {sweep_id} is already supervised \("):
        start_supervisor(db, sweep_id)
    wait_until(db, lambda s: s.get_sweep(sweep_id)["status"] == "running" and any(
        m["status"] == "running" for m in s.sweep_members(sweep_id)), what="a running member")
    second = subprocess.run(supervisor_argv(db, sweep_id), capture_output=True, text=True, timeout=120)
    assert second.returncode == 3
    assert f"sweep {sweep_id} is owned by pid {proc.pid}" in second.stderr

    wait_until(db, _ended(sweep_id), what="the sweep to end")
    assert proc.wait(timeout=30) == 0
    with Store(db) as store:
        sweep = store.get_sweep(sweep_id)
        members = store.sweep_members(sweep_id)
        assert sweep["status"] == "completed"
        assert [m["status"] for m in members] == ["completed"] * 3
        assert [m["step"] for m in members] == [40] * 3
        assert max_overlap([(m["started"], m["ended"]) for m in members]) == 2
        for member, dropout in zip(members, (0.1, 0.2, 0.3), strict=False):
            assert json.loads(member["config"])["recipe"]["dropout"] == dropout
            on_disk = yaml.safe_load((Path(member["run_dir"]) / "config.yaml").read_text())
            assert on_disk["recipe"]["dropout"] == dropout
            assert json.loads(member["axis_values"]) == {"recipe.dropout": dropout}
            assert member["name"] == f"s{sweep_id}-dropout={dropout:g}"
            # Each member got its share of the CPU through its launch plan (2 members, 1 thread each here).
            assert json.loads(member["launch"])["env"] == {"DIFFTUI_CPU_THREADS": "1"}
            assert launches(member) == 1 and engine_starts(store, member["id"]) == 1
        assert sorted(m["sweep_slot"] for m in members) in ([0, 0, 1], [0, 1, 1])


def test_kill_9_of_the_supervisor_leaves_members_training_and_resume_finishes_the_queue(sweep_db):
    db = sweep_db
    slots = Slots(("cpu",), 1)
    plan = plan_sweep(CAT, "p1-dropout", tiny_spec(300, "recipe.log_every=10"), values={"recipe.dropout": [0.1, 0.3]},
                      device=slots.member_device)
    sweep_id, proc = launch_sweep(db, plan, slots)
    first = wait_until(db, lambda s: next((m for m in s.sweep_members(sweep_id)
                                           if m["status"] == "running" and m["step"] >= 10), None),
                       what="the first member training")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    # The member trains on without its supervisor, and the sweep shows that nobody starts the queue any more.
    wait_until(db, lambda s: s.get_run(first["id"])["step"] > first["step"] + 10 or
               s.get_run(first["id"])["status"] == "completed", what="the orphaned member to keep training")
    with Store(db) as store:
        assert liveness.reap_dead_sweeps(store) == [sweep_id]
        sweep = store.get_sweep(sweep_id)
        assert sweep["status"] == "crashed" and "supervisor process is gone" in sweep["error"]
        waiting = [m for m in store.sweep_members(sweep_id) if m["status"] == "queued" and not m["pid"]]
        assert len(waiting) == 1

    message = resume_sweep(db, sweep_id)
    assert message.startswith(f"sweep {sweep_id} resumed (supervisor pid ")
    wait_until(db, _ended(sweep_id), what="the resumed sweep to end")
    with Store(db) as store:
        assert store.get_sweep(sweep_id)["status"] == "completed"
        members = store.sweep_members(sweep_id)
        assert [m["status"] for m in members] == ["completed"] * 2 and [m["step"] for m in members] == [300] * 2
        # No member was started twice: one launch and one engine each, and one loss curve without a repeated step.
        for m in members:
            assert launches(m) == 1 and engine_starts(store, m["id"]) == 1, m["id"]
            steps = [s for s, _ in store.series(m["id"], "L_simple")]
            assert steps == list(range(10, 301, 10))
        assert max_overlap([(m["started"], m["ended"]) for m in members]) == 1
    with pytest.raises(SweepError, match=rf"sweep {sweep_id} has nothing left to run"):
        resume_sweep(db, sweep_id)


def test_a_diverging_member_fails_alone_a_retry_runs_it_again_and_an_added_value_joins(sweep_db, tmp_path):
    db = sweep_db
    presets = tmp_path / "presets"
    (presets / "sweeps").mkdir(parents=True)
    # An absurd learning rate makes a tiny run's loss non-finite within a few steps.
    (presets / "sweeps" / "lr-probe.yaml").write_text(
        "name: lr-probe\ndescription: a test grid\nplaybook: '4.2'\naxes:\n  recipe.lr: [1.0e-4, 1.0e+8]\n")
    catalog = Catalog([presets])
    slots = Slots(("cpu",), 2)
    plan = plan_sweep(catalog, "lr-probe", tiny_spec(40), device=slots.member_device)
    sweep_id, _ = launch_sweep(db, plan, slots)
    wait_until(db, _ended(sweep_id), what="the sweep to end")
    with Store(db) as store:
        sane, wild = store.sweep_members(sweep_id)
        assert store.get_sweep(sweep_id)["status"] == "partial"              # a member failed: not completed
        assert sane["status"] == "completed" and sane["step"] == 40
        assert wild["status"] == "failed" and "L_simple" in wild["error"] and "not finite for" in wild["error"]

    with pytest.raises(SweepError, match=r"recipe.lr=0.0002 is off the 'lr-probe' grid \(playbook 4.2: 0.0001, "
                                         r"1e\+08\); add it as off-grid"):
        add_value(db, catalog, sweep_id, "2.0e-4")
    with pytest.raises(SweepError, match=rf"sweep {sweep_id} already has recipe.lr=0.0001"):
        add_value(db, catalog, sweep_id, "1e-4")
    message = add_value(db, catalog, sweep_id, "2.0e-4", off_grid=True)
    assert f"sweep {sweep_id}: recipe.lr=0.0002 (off-grid) added as run" in message
    message = retry_members(db, sweep_id)
    assert message.startswith(f"sweep {sweep_id}: run {wild['id']} queued again")
    wait_until(db, lambda s: s.get_sweep(sweep_id)["status"] == "partial" and all(
        m["status"] not in ACTIVE_STATUSES for m in s.sweep_members(sweep_id)), what="the retried sweep to end")
    with Store(db) as store:
        members = store.sweep_members(sweep_id)
        added = members[-1]
        assert (added["status"], added["off_grid"], json.loads(added["config"])["recipe"]["lr"]) == (
            "completed", 1, 2e-4)
        assert json.loads(store.get_sweep(sweep_id)["grid"])["off_grid"] == {"recipe.lr": [2e-4]}
        retried = store.get_run(wild["id"])
        assert retried["status"] == "failed" and launches(retried) == 2      # it ran again, and diverged again
        assert store.get_run(sane["id"])["status"] == "completed" and launches(store.get_run(sane["id"])) == 1


def test_stop_holds_the_queue_and_resume_continues_from_the_checkpoint(sweep_db):
    db = sweep_db
    slots = Slots(("cpu",), 1)
    plan = plan_sweep(CAT, "p1-dropout", tiny_spec(2000, "recipe.log_every=10"), values={"recipe.dropout": [0.1, 0.2]},
                      device=slots.member_device)
    sweep_id, proc = launch_sweep(db, plan, slots)
    first = wait_until(db, lambda s: next((m for m in s.sweep_members(sweep_id)
                                           if m["status"] == "running" and m["step"] >= 20), None),
                       what="the first member training")
    message = stop_sweep(db, sweep_id)
    assert message.startswith(f"sweep {sweep_id}: stop requested for 1 running member(s); 1 waiting member(s) held")
    wait_until(db, _ended(sweep_id), what="the sweep to stop")
    assert proc.wait(timeout=30) == 0
    with Store(db) as store:
        assert store.get_sweep(sweep_id)["status"] == "stopped"
        stopped, held = store.sweep_members(sweep_id)
        assert stopped["id"] == first["id"] and stopped["status"] == "stopped" and 20 <= stopped["step"] < 2000
        assert held["status"] == "queued" and held["pid"] is None            # never started while held
    with pytest.raises(SweepError, match=rf"sweep {sweep_id} is not running \(stopped\)"):
        stop_sweep(db, sweep_id)
    stopped_at = stopped["step"]

    # Resume: the stopped member continues from its checkpoint, then the held one runs. Shorten them first.
    with Store(db) as store:
        for m in (stopped, held):
            config = json.loads(m["config"])
            config["recipe"]["total_steps"] = stopped_at + 40
            store.update_run(m["id"], config=json.dumps(config), total_steps=stopped_at + 40)
    resume_sweep(db, sweep_id)
    wait_until(db, _ended(sweep_id), what="the resumed sweep to end")
    with Store(db) as store:
        assert store.get_sweep(sweep_id)["status"] == "completed"
        resumed, second = store.sweep_members(sweep_id)
        assert resumed["status"] == "completed" and second["status"] == "completed"
        events = [e["message"] for e in store.events_since(resumed["id"])]
        assert f"resumed from step {stopped_at} (ckpt-{stopped_at:07d}.pt)" in events
        assert launches(second) == 1


#----------------------------------------------------------------------------
# Unfinished members (issue 16 item 7).

def _two_members_training(db, steps: int):
    slots = Slots(("cpu",), 2)
    plan = plan_sweep(CAT, "p1-dropout", tiny_spec(steps, "recipe.log_every=5"),
                      values={"recipe.dropout": [0.1, 0.3]}, device=slots.member_device)
    sweep_id, proc = launch_sweep(db, plan, slots)
    wait_until(db, lambda s: all(m["status"] == "running" and m["step"] >= 10 for m in s.sweep_members(sweep_id)),
               what="both members training")
    return sweep_id, proc


def test_a_sweep_with_a_stopped_member_ends_partial_and_show_and_ls_mark_its_values(sweep_db):
    from typer.testing import CliRunner

    from difftui.engine.launch.runs import request_stop
    from difftui.tui.cli import app
    db = sweep_db
    sweep_id, proc = _two_members_training(db, 200)
    with Store(db) as store:
        stopped_id, finished_id = (m["id"] for m in store.sweep_members(sweep_id))
    request_stop(db, stopped_id)
    wait_until(db, _ended(sweep_id), what="the sweep to end")
    assert proc.wait(timeout=30) == 0
    with Store(db) as store:
        sweep = store.get_sweep(sweep_id)
        stopped, finished = store.get_run(stopped_id), store.get_run(finished_id)
    assert (stopped["status"], finished["status"], finished["step"]) == ("stopped", "completed", 200)
    assert 10 <= stopped["step"] < 200
    assert sweep["status"] == "partial"                                   # was 'completed'
    show = CliRunner().invoke(app, ["--db", str(db), "sweep", "show", str(sweep_id)], terminal_width=200)
    assert show.exit_code == 0, show.output
    assert f"sweep {sweep_id}  " in show.output and "  partial" in show.output.splitlines()[0]
    assert (f"† run {stopped_id} stopped at {stopped['step']}/200: its values are partial, not results "
            f"(sweep resume {sweep_id} continues it)") in " ".join(show.output.split())     # as wrapped at 80
    rows = {line.split()[0]: line for line in show.output.splitlines() if line.strip()[:1].isdigit()}
    assert rows[str(stopped_id)].count("†") == 2 and "†" not in rows[str(finished_id)]     # L_simple last, best
    listed = CliRunner().invoke(app, ["--db", str(db), "sweep", "ls"], terminal_width=200)
    line = " ".join(listed.output.split())                                   # the members cell wraps at 80
    assert f"{sweep_id} p1-dropout-1 partial p1-dropout 1 completed, 1" in line and "stopped" in line


def test_a_sweep_whose_supervisor_died_before_its_members_finished_is_completed_by_the_reaper(sweep_db):
    db = sweep_db
    sweep_id, proc = _two_members_training(db, 150)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    with Store(db) as store:
        assert liveness.reap_dead_sweeps(store) == [sweep_id]
        assert store.get_sweep(sweep_id)["status"] == "crashed"              # members still train, orphaned
    wait_until(db, lambda s: all(m["status"] == "completed" for m in s.sweep_members(sweep_id)),
               what="the orphaned members to finish")
    with Store(db) as store:
        assert liveness.reap_dead_sweeps(store) == [sweep_id]
        sweep = store.get_sweep(sweep_id)
    assert sweep["status"] == "completed"                                  # not crashed until `sweep resume`
    with pytest.raises(SweepError, match=rf"sweep {sweep_id} is not running \(completed\)"):
        stop_sweep(db, sweep_id)
