"""Panel evaluation (playbook 5.1, 5.8): on a finished run in-process (`difftui eval`), and by a live engine."""

import dataclasses
import math

import pytest
from typer.testing import CliRunner

from difftui.engine import launch
from difftui.engine.catalog import Catalog
from difftui.engine.diffusion.panel import panel_specs
from difftui.engine.store import ACTIVE_STATUSES, Store
from difftui.tui.cli import app
from engine_testkit import tiny_config, wait_for

ENDED = lambda run: run["status"] not in ACTIVE_STATUSES
PANEL = ("recipe.log_every=5", "recipe.grid_every=100000", "recipe.snapshot_every=100000")


pytestmark = pytest.mark.usefixtures("engine_hygiene")     # tests/conftest.py


def test_eval_of_a_finished_run_writes_one_grid_and_nll_per_ancestral_sampler(tmp_path):
    db = tmp_path / "runs.db"
    panel = Catalog().get("samplers", "covariance-heuristic")       # ancestral few-step chains: each has an NLL
    config = dataclasses.replace(tiny_config(10, *PANEL), sampler=panel)
    run_id = launch.launch(db, config)
    assert wait_for(db, run_id, ENDED)["status"] == "completed"

    result = CliRunner().invoke(app, ["--db", str(db), "eval", str(run_id), "--device", "cpu"])
    assert result.exit_code == 0, result.stderr
    specs = [spec for _, spec in panel_specs(panel)]                  # the grid sampler first, no repeats
    n_specs = len(specs)
    with Store(db) as store:
        samples = store.samples_index(run_id, kind="panel")
        evals = store.evals_for(run_id)
        events = [e["message"] for e in store.events_since(run_id)]
        run = store.get_run(run_id)
    assert len(samples) == n_specs and all(s["step"] == 10 for s in samples)
    assert [s["sampler"] for s in samples] == [spec.describe() for spec in specs]
    nll = [e for e in evals if e["metric"] == "nll_bpd"]
    assert len(nll) == n_specs and all(math.isfinite(e["value"]) and e["value"] > 0 for e in nll)
    assert sum(m.startswith("panel ") and "bits/dim on 64 images" in m for m in events) == n_specs
    assert run["status"] == "completed" and run["step"] == 10            # evaluation does not touch the run
    assert (tmp_path / "runs" / str(run_id) / "panels").is_dir()


def test_a_live_engine_obeys_the_evaluate_command(tmp_path):
    db = tmp_path / "runs.db"
    run_id = launch.launch(db, tiny_config(100_000, *PANEL, "sampler.sweep=[]"))
    wait_for(db, run_id, lambda r: r["status"] == "running" and r["step"] >= 5)
    result = CliRunner().invoke(app, ["--db", str(db), "eval", str(run_id)])
    assert result.exit_code == 0 and "evaluate requested" in result.stdout
    with Store(db) as store:
        # The panel grid is written at once; its event line comes with the engine's next batched flush.
        panel_event = lambda: [e["message"] for e in store.events_since(run_id) if e["message"].startswith("panel ")]
        wait_for(db, run_id, lambda r: panel_event())
        assert len(store.samples_index(run_id, kind="panel")) == 1
        assert panel_event()[0].startswith("panel DDIM eta=0 N=10 linear: NFE 10")
    launch.request_stop(db, run_id)
    assert wait_for(db, run_id, ENDED)["status"] == "stopped"


def test_eval_without_a_checkpoint_is_one_line(tmp_path):
    db = tmp_path / "runs.db"
    run_id = launch.create_run(db, tiny_config(10))
    with Store(db) as store:
        store.set_status(run_id, "stopped")
    result = CliRunner().invoke(app, ["--db", str(db), "eval", str(run_id)])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"difftui: error: run {run_id} has no checkpoint yet to evaluate"
