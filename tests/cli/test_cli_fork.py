"""`difftui fork` and `difftui recheck` through CliRunner on a real tiny run: a shape change is refused in one line
(exit 2, nothing created), --dry-run says where the fork starts and what changes, a followed fork completes, and
`show`, `ls` and `ls --json` give its lineage; recheck refuses a run without a parent and an unknown rule in one line."""

from __future__ import annotations

import json
import time

import pytest
from typer.testing import CliRunner

from difftui.engine.doctor.recheck import recheck
from difftui.engine.launch import runs as launch
from difftui.engine.store import ACTIVE_STATUSES, Store
from difftui.tui.cli import app

TINY = ["recipe.batch_size=8", "backbone.arch.model_channels=16", "sampler.grid.steps=10", "recipe.log_every=4",
        "recipe.snapshot_every=40", "recipe.grid_every=100000"]

pytestmark = pytest.mark.usefixtures("engine_hygiene")     # tests/conftest.py


def invoke(db, *args):
    return CliRunner().invoke(app, ["--db", str(db), *map(str, args)], env={"COLUMNS": "200"})


def one_line_error(result, text):
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stderr.splitlines() == [f"difftui: error: {text}"], result.stderr


@pytest.fixture
def parent(tmp_path):
    from difftui.engine.config.catalog import Catalog
    db = tmp_path / "runs.db"
    run_id = launch.new_run(db, Catalog().resolve(overrides=TINY, max_steps=80, device="cpu")).run_id
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with Store(db) as store:
            if store.get_run(run_id)["status"] not in ACTIVE_STATUSES:
                break
        time.sleep(0.2)
    with Store(db) as store:
        assert store.get_run(run_id)["status"] == "completed"
    return db, run_id


def test_fork_from_the_shell_refuses_dry_runs_follows_and_shows_its_lineage(parent):
    db, a = parent
    one_line_error(invoke(db, "fork", a, "--step", 40, "--set", "backbone.arch.model_channels=32"),
                   f"run {a} cannot be forked from a checkpoint with this change: backbone.arch.model_channels 16 -> "
                   f"32 changes the network's parameters (a checkpoint's weights do not fit it); fork --fresh starts "
                   f"the changed settings from step 0")
    one_line_error(invoke(db, "fork", a, "--step", 20), f"run {a} has no checkpoint at or before step 20 (its "
                   f"checkpoints: 40, 80; it keeps the newest recipe.keep_snapshots)")
    with Store(db) as store:
        assert len(store.list_runs()) == 1                          # a refusal creates nothing
    dry = invoke(db, "fork", a, "--step", 47, "--set", "recipe.lr=5e-4", "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert dry.stdout.strip() == (f"would fork run {a} at step 40 (ckpt-0000040.pt; asked 47) to step 80; "
                                  f"recipe.lr 0.0001 -> 0.0005")
    done = invoke(db, "fork", a, "--step", 47, "--set", "recipe.lr=5e-4")
    assert done.exit_code == 0, (done.stdout, done.stderr)
    b = a + 1
    assert done.stdout.startswith(f"run {b} forked from run {a} at step 40 (ckpt-0000040.pt; asked 47); "
                                  f"recipe.lr 0.0001 -> 0.0005 (pid ")
    assert f"run {b} completed at step 80/80" in done.stdout
    shown = invoke(db, "show", b).stdout
    assert f"  parent    run {a} (forked from its checkpoint at step 40)" in shown
    listed = invoke(db, "ls").stdout
    assert f"(fork of {a} @ 40)" in listed
    rows = {r["id"]: r for r in json.loads(invoke(db, "ls", "--json").stdout)}
    assert (rows[b]["parent_id"], rows[b]["fork_step"]) == (a, 40)
    assert (rows[a]["parent_id"], rows[a]["fork_step"]) == (None, None)
    again = invoke(db, "recheck", b)
    with Store(db) as store:
        expected = recheck(store, a, b)                  # the engine's judgement, which the CLI prints
    assert again.exit_code == (1 if expected.still_there else 0), again.stderr
    assert again.stdout.splitlines() == expected.lines()
    assert expected.lines()[0].startswith((f"run {a} had no finding to re-check on run {b} (fork at step 40)",
                                           f"re-check of run {b} (fork at step 40) against run {a}: "))
    verdicts = json.loads(invoke(db, "recheck", b, "--json").stdout)
    assert (verdicts["parent"], verdicts["child"], verdicts["fork_step"]) == (a, b, 40)
    one_line_error(invoke(db, "recheck", a), f"run {a} has no parent (it is no fork or clone); compare it with: "
                                             f"difftui compare")
    bad = invoke(db, "recheck", b, "--rule", "nope")
    assert bad.exit_code == 2 and bad.stderr.startswith("difftui: error: --rule nope: no such rule (rules: ")
