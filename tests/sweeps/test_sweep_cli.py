"""The sweep, compare and clone commands through CliRunner: refusals are one line with exit 2; a followed 2-member
sweep with an off-grid value completes and is listed, shown and compared; a clone records its parent."""

from __future__ import annotations

import json

import pytest
from sweep_testkit import TINY_SETS, wait_until
from typer.testing import CliRunner

from difftui.engine.store import Store
from difftui.tui.cli import app

pytestmark = pytest.mark.usefixtures("sweep_db")

TINY = [a for s in TINY_SETS for a in ("--set", s)]


def invoke(db, *args):
    return CliRunner().invoke(app, ["--db", str(db), *map(str, args)], env={"COLUMNS": "200"})


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("difftui: error: "), result.stderr
    for f in fragments:
        assert f in lines[0], (f, lines[0])


def test_refusals_are_one_line(sweep_db):
    db = sweep_db
    assert_one_line_error(invoke(db, "sweep", "start", "p5-lambda-sb", "--backbone", "dit-s-2", "--device", "cpu",
                                 "--off-tier"),
                          "grid 'p5-lambda-sb' (playbook A.2) applies to backbones dydit-s-2, dydit-b-2, not to "
                          "backbone 'dit-s-2'")
    assert_one_line_error(invoke(db, "sweep", "start", "p1-dropout", "--values", "0.15", "--device", "cpu"),
                          "recipe.dropout=0.15 is off the 'p1-dropout' grid", "--off-grid")
    assert_one_line_error(invoke(db, "sweep", "start", "p1-dropuot"), "no sweep preset named 'p1-dropuot'")
    assert_one_line_error(invoke(db, "sweep", "start", "p1-dropout", "--gpus", "0", "--device", "cpu"),
                          "--gpus 0 with --device cpu")
    assert_one_line_error(invoke(db, "sweep", "start", "p1-dropout", "--set", "recipe.nope=1", "--device", "cpu"),
                          "recipe.nope")
    import torch
    if not torch.cuda.is_available():                                    # the launch checks of a new run
        assert_one_line_error(invoke(db, "sweep", "start", "p1-dropout", *TINY, "--device", "cuda"),
                              "device 'cuda' requested but")
    assert not db.exists() or not Store(db).list_sweeps()               # nothing was created by a refusal
    Store(db).close()
    assert_one_line_error(invoke(db, "sweep", "show", "7"), "no sweep 7")
    assert_one_line_error(invoke(db, "compare", "1"), "compare needs at least two run ids")


def test_a_followed_sweep_then_ls_show_compare_and_clone(sweep_db):
    db = sweep_db
    result = invoke(db, "sweep", "start", "p1-dropout", "--values", "0.1,0.15", "--off-grid", "--concurrency", "2",
                    "--device", "cpu", "--max-steps", "20", *TINY)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert "sweep 1 started (supervisor pid" in result.stdout and "2 runs, 40 steps in all" in result.stdout
    assert "sweep 1 completed: 2 completed" in result.stdout

    listed = invoke(db, "sweep", "ls")
    assert listed.exit_code == 0 and "p1-dropout-1  completed  p1-dropout  2 completed  cpu x2" in listed.stdout
    shown = invoke(db, "sweep", "show", "1").stdout
    assert "grid      p1-dropout (playbook 4.5): recipe.dropout in {0.1, 0.15}" in shown
    assert "0.15 (off-grid)  completed" in shown and "L_simple last" in shown
    runs = invoke(db, "ls").stdout
    assert "s1-dropout=0.15 (sweep 1, off-grid)" in runs and "s1-dropout=0.1 (sweep 1)" in runs
    assert "sweep     1: dropout=0.15  (OFF-GRID" in invoke(db, "show", "2").stdout

    compared = invoke(db, "compare", "1", "2")
    assert compared.exit_code == 0, compared.stderr
    assert "config difference (1 keys)" in compared.stdout
    assert [line.split() for line in compared.stdout.splitlines() if line.startswith("recipe.dropout")] == [
        ["recipe.dropout", "0.1", "0.15"]]
    with Store(db) as store:
        last = [store.latest_values(i)["L_simple"] for i in (1, 2)]
    assert f"{last[0]:.4g}" in compared.stdout and f"{last[1]:.4g}" in compared.stdout

    cloned = invoke(db, "clone", "1", "--set", "recipe.dropout=0.3", "--detach")
    assert cloned.exit_code == 0, cloned.stderr
    assert cloned.stdout.startswith("run 3 started (pid ") and "cloned from run 1 with recipe.dropout=0.3" in cloned.stdout
    run = wait_until(db, lambda s: s.get_run(3)["status"] == "completed" and s.get_run(3), what="the clone")
    with Store(db) as store:
        original = json.loads(store.get_run(1)["config"])
    clone = json.loads(run["config"])
    assert run["parent_id"] == 1 and run["sweep_id"] is None
    assert clone["recipe"].pop("dropout") == 0.3 and original["recipe"].pop("dropout") == 0.1
    assert clone["recipe"] == original["recipe"] and clone["backbone"] == original["backbone"]
    assert "parent    run 1 (cloned from)" in invoke(db, "show", "3").stdout
    assert_one_line_error(invoke(db, "sweep", "stop", "1"), "sweep 1 is not running (completed)")
    assert_one_line_error(invoke(db, "sweep", "retry", "1"), "sweep 1 has no failed or crashed member to retry")
    assert_one_line_error(invoke(db, "sweep", "add", "1", "0.25"), "recipe.dropout=0.25 is off the 'p1-dropout' grid")


def test_compare_shows_each_runs_own_axis_value_and_no_device_asked_another_way(tmp_path):
    """Issue 16 item 10: a run outside the sweep has a dropout too (its config's, not '-'), and `auto` that trained on
    the CPU is not a difference from `cpu`."""
    from sweep_testkit import make_sweep_db
    db = make_sweep_db(tmp_path)
    with Store(db) as store:
        config = json.loads(store.get_run(1)["config"])
        config["device"], config["recipe"]["dropout"] = "auto", 0.1
        store.update_run(1, config=json.dumps(config))
        assert store.get_run(1)["device"] == "cpu"              # where it trained
    result = invoke(db, "compare", "1", "4")
    assert result.exit_code == 0, result.stderr
    lines = [line.split() for line in result.stdout.splitlines()]
    assert ["dropout", "0.1", "0.15", "(off-grid)"] in lines
    assert ["recipe.dropout", "0.1", "0.15"] in lines and "config difference (1 keys)" in result.stdout
    assert not any(line[:1] == ["device"] for line in lines)


def test_compare_marks_the_values_of_a_run_that_ended_early_and_says_how_it_ended(tmp_path):
    """Issue 16 item 7: run 4 failed at step 10 of 20; its losses beside finished runs' would read as results."""
    from sweep_testkit import make_sweep_db
    db = make_sweep_db(tmp_path)
    result = invoke(db, "compare", "2", "4")
    assert result.exit_code == 0, result.stderr
    lines = [line.split() for line in result.stdout.splitlines()]
    assert ["L_simple", "last", "0.1931", "0.5526†"] in lines and ["L_simple", "best", "0.1931", "0.5526†"] in lines
    said = " ".join(result.stdout.split())
    assert "† run 4 failed at 10/20: its values are partial, not results" in said
