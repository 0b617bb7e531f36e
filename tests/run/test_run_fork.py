"""Fork (issue 18 item 3) with real engines on a real runs.db: a fork with no change continues exactly as its parent
did, a fork with a change differs by exactly that change and records its lineage, a running parent is forked from a
finished checkpoint (never a temp file), a fork outlives its deleted parent and resumes, and a change of the network's
shape is refused in one line or starts fresh. Plus the planning rules without an engine."""

from __future__ import annotations

import json
import math

import pytest
import torch
from engine_testkit import tiny_config, wait_for

from difftui.engine.config.catalog import config_from_dict
from difftui.engine.launch import runs as launch
from difftui.engine.launch.fork import fork_points, fork_run, lineage, plan_fork, shape_change
from difftui.engine.launch.outcome import LaunchError
from difftui.engine.run.checkpoint import list_checkpoints, load_checkpoint
from difftui.engine.store import ACTIVE_STATUSES, Store
from difftui.engine.sweeps import config_diff

ENDED = lambda run: run["status"] not in ACTIVE_STATUSES
# Wall-clock figures: they differ between any two runs of the same steps.
TIMING = {"img_per_s", "data_wait", "step_s", "tflops", "mfu", "gflops_fwd", "seconds"}

pytestmark = pytest.mark.usefixtures("engine_hygiene")     # tests/conftest.py


def check_data(profile, batch_size):
    from difftui.engine.data import DataError, check_available
    try:
        check_available(profile, batch_size)
    except DataError as e:
        return str(e)
    return None


def fork(db, parent, step=None, sets=(), **kw):
    return fork_run(db, parent, step, list(sets), check_data=check_data, **kw)


def series_after(db, run_id, step):
    """{metric: [(step, value)]} of the rows after `step` (timing figures left out)."""
    with Store(db) as store:
        names = [n for n in store.metric_names(run_id) if n not in TIMING]
        return {n: [(s, v) for s, v in store.series(run_id, n) if s > step] for n in names}


def completed(db, run_id, timeout=180.0):
    run = wait_for(db, run_id, ENDED, timeout=timeout)
    assert run["status"] == "completed", run["error"]
    return run


S = 40                                              # the fork step; the parent trains to 2S with a checkpoint at S
EXTRA = ("recipe.log_every=4", f"recipe.snapshot_every={S}", "recipe.grid_every=100000")


@pytest.fixture
def parent(tmp_path):
    """A completed tiny run of 2S steps with checkpoints at S and 2S."""
    db = tmp_path / "runs.db"
    run_id = launch.new_run(db, tiny_config(2 * S, *EXTRA)).run_id
    completed(db, run_id)
    assert fork_points(db, run_id) == [S, 2 * S]
    return db, run_id


def test_a_fork_with_no_change_continues_exactly_like_its_parent(parent):
    db, a = parent
    done = fork(db, a, S)
    b = done.run_id
    assert f"forked from run {a} at step {S} (ckpt-{S:07d}.pt)" in done.message
    completed(db, b)
    theirs, ours = series_after(db, a, S), series_after(db, b, S)
    assert set(ours) == set(theirs) and "L_simple" in ours
    for name, rows in theirs.items():
        assert [s for s, _ in ours[name]] == [s for s, _ in rows], name        # the same steps, from S on
        torch.testing.assert_close(torch.tensor([v for _, v in ours[name]], dtype=torch.float64),
                                   torch.tensor([v for _, v in rows], dtype=torch.float64), rtol=1e-5, atol=0,
                                   equal_nan=True, msg=name)
    with Store(db) as store:
        assert min(s for s, _ in store.series(b, "L_simple")) == S + 4           # the child's metrics start at S
    # The weights at 2S too: model, EMA and optimizer moments.
    ckpt_a = load_checkpoint(list_checkpoints(db.parent / "runs" / str(a) / "checkpoints")[-1][1])
    ckpt_b = load_checkpoint(list_checkpoints(db.parent / "runs" / str(b) / "checkpoints")[-1][1])
    assert ckpt_a["step"] == ckpt_b["step"] == 2 * S
    for key in ("model", "ema"):
        flat_a, flat_b = ckpt_a[key] if key == "model" else ckpt_a[key]["net"], \
            ckpt_b[key] if key == "model" else ckpt_b[key]["net"]
        for k in flat_a:
            torch.testing.assert_close(flat_b[k], flat_a[k], rtol=1e-5, atol=1e-7, msg=f"{key}.{k}")
    assert torch.equal(torch.load(db.parent / "runs" / str(b) / "x_T.pt"),
                       torch.load(db.parent / "runs" / str(a) / "x_T.pt"))


def test_a_fork_with_a_change_differs_by_exactly_that_change_and_records_its_lineage(parent):
    db, a = parent
    b = fork(db, a, S + 7, ["recipe.lr=5e-4"]).run_id          # no checkpoint at 47: the one at 40, said so
    run = completed(db, b)
    with Store(db) as store:
        pa, pb = store.get_run(a), store.get_run(b)
        lr = store.series(b, "lr")
        events = [e["message"] for e in store.events_since(b)]
    assert config_diff([json.loads(pa["config"]), json.loads(pb["config"])]) == [("recipe.lr", [1e-4, 5e-4])]
    assert (run["parent_id"], run["fork_step"], lineage(run)) == (a, S, f"fork of {a} @ {S}")
    assert lr and all(s > S and math.isclose(v, 5e-4) for s, v in lr)       # the new lr applies from the fork
    assert events[0] == (f"fork of run {a} at step {S} (ckpt-{S:07d}.pt; asked {S + 7}); changed: recipe.lr "
                         f"0.0001 -> 0.0005")
    assert f"resumed from step {S} (ckpt-{S:07d}.pt)" in events


def test_a_fork_to_another_optimizer_keeps_the_moments_and_takes_the_new_settings(parent):
    db, a = parent
    b = fork(db, a, S, ["recipe.optimizer=adamw"]).run_id
    completed(db, b)
    state = load_checkpoint(list_checkpoints(db.parent / "runs" / str(b) / "checkpoints")[-1][1])["optimizer"]
    assert state["param_groups"][0]["weight_decay"] == pytest.approx(0.01)    # AdamW's, not the parent Adam's 0
    steps = {float(s["step"]) for s in state["state"].values()}
    assert steps == {2.0 * S}                       # the moments went on counting from the parent's S steps


def test_forking_a_running_run_reads_a_finished_checkpoint(tmp_path):
    db = tmp_path / "runs.db"
    a = launch.new_run(db, tiny_config(100_000, "recipe.log_every=4", "recipe.snapshot_every=10",
                                       "recipe.grid_every=100000")).run_id
    folder = tmp_path / "runs" / str(a) / "checkpoints"
    wait_for(db, a, lambda r: r["status"] == "running" and len(list_checkpoints(folder)) >= 2)
    # A checkpoint being written: its temp file (atomic_write's name) is newer than any finished one, and unreadable.
    (folder / ".ckpt-9999990.pt.partial.tmp").write_bytes(b"not a whole checkpoint")
    done = fork(db, a, None, max_steps=None)
    with Store(db) as store:
        child = store.get_run(done.run_id)
    at = child["fork_step"]
    assert at % 10 == 0 and at > 0 and child["parent_id"] == a
    copied = [p.name for p in (tmp_path / "runs" / str(done.run_id) / "checkpoints").iterdir()]
    assert copied == [f"ckpt-{at:07d}.pt"]
    launch.request_stop(db, a)
    wait_for(db, a, ENDED)
    launch.request_stop(db, done.run_id)
    run = wait_for(db, done.run_id, ENDED)
    assert run["status"] == "stopped", run["error"]
    assert run["step"] >= at
    with Store(db) as store:
        events = [e["message"] for e in store.events_since(done.run_id)]
    assert f"resumed from step {at} (ckpt-{at:07d}.pt)" in events


def test_a_fork_keeps_working_when_its_parent_is_deleted(parent):
    db, a = parent
    b = fork(db, a, S, max_steps=10_000).run_id
    launch.delete_run(db, a)                        # the parent (completed) is deleted right after the fork
    assert not (db.parent / "runs" / str(a)).exists()
    folder = db.parent / "runs" / str(b) / "checkpoints"
    wait_for(db, b, lambda r: r["step"] >= S + 12 and r["status"] == "running")
    launch.request_stop(db, b)
    stopped = wait_for(db, b, ENDED)
    assert stopped["status"] == "stopped", stopped["error"]
    assert list_checkpoints(folder)[-1][0] == stopped["step"]
    launch.resume(db, b)                            # and it resumes from its own checkpoint
    wait_for(db, b, lambda r: r["step"] > stopped["step"] + 8 or r["status"] not in ACTIVE_STATUSES)
    launch.request_stop(db, b)
    run = wait_for(db, b, ENDED)
    assert run["status"] == "stopped" and run["step"] > stopped["step"], run["error"]
    with Store(db) as store:
        assert store.get_run(a) is None
        events = [e["message"] for e in store.events_since(b)]
    assert f"resumed from step {stopped['step']} (ckpt-{stopped['step']:07d}.pt)" in events


def test_a_slurm_parents_fork_is_submitted_to_slurm_as_its_parent_was(parent, monkeypatch):
    """A parent launched on Slurm: its fork passes Slurm's submission checks (not this machine's devices), writes a
    spool (runs.new_run's rule for a Slurm plan), is submitted with the parent's Slurm options, and says its job."""
    from difftui.engine.launch.backends import SlurmJob
    from difftui.engine.launch.checks import LaunchReport
    from difftui.engine.launch.plan import LaunchPlan
    from difftui.engine.launch.slurm import checks as slurm_checks
    db, a = parent
    slurm_plan = LaunchPlan(slurm={"partition": "gpu", "time": "1:00:00"})
    with Store(db) as store:
        store.update_run(a, launch=slurm_plan.to_json())
    asked, submitted = [], []
    monkeypatch.setattr(slurm_checks, "check_submission",
                        lambda db_path, config, options, check_data=None:
                        asked.append(options.partition) or LaunchReport((), (), "cpu on the nodes"))
    monkeypatch.setattr(launch, "start_run",
                        lambda db_path, run_id, plan: submitted.append((run_id, plan)) or SlurmJob("4242", 0.0))
    done = fork(db, a, S, ["recipe.lr=5e-5"])
    assert asked == ["gpu"]
    assert submitted == [(done.run_id, slurm_plan)]
    assert done.slurm_job == "4242" and done.proc is None
    assert done.message.endswith("(submitted to Slurm as job 4242)")
    with Store(db) as store:
        child = store.get_run(done.run_id)
    assert child["sink"] == "spool" and child["parent_id"] == a and child["fork_step"] == S
    assert [s for s, _ in list_checkpoints(db.parent / "runs" / str(done.run_id) / "checkpoints")] == [S]


def test_a_shape_changing_fork_is_refused_in_one_line_or_starts_fresh(parent):
    db, a = parent
    with pytest.raises(LaunchError) as refused:
        fork(db, a, S, ["backbone.arch.model_channels=32"])
    line = str(refused.value)
    assert "\n" not in line
    assert line == (f"run {a} cannot be forked from a checkpoint with this change: backbone.arch.model_channels 16 "
                    f"-> 32 changes the network's parameters (a checkpoint's weights do not fit it); fork --fresh "
                    f"starts the changed settings from step 0")
    with Store(db) as store:
        assert [r["id"] for r in store.list_runs()] == [a]                  # nothing created
    assert sorted(p.name for p in (db.parent / "runs").iterdir()) == [str(a)]
    b = fork(db, a, S, ["backbone.arch.model_channels=32"], fresh=True, max_steps=8).run_id
    run = completed(db, b)
    assert (run["parent_id"], run["fork_step"], lineage(run)) == (a, 0, f"fork of {a} @ 0")
    with Store(db) as store:
        assert [s for s, _ in store.series(b, "L_simple")] == [4, 8]        # from step 0
        events = [e["message"] for e in store.events_since(b)]
    assert events[0].startswith(f"fork of run {a} from step 0 (fresh: backbone.arch.model_channels 16 -> 32)")
    assert torch.equal(torch.load(db.parent / "runs" / str(b) / "x_T.pt"),         # the same data shape: same x_T
                       torch.load(db.parent / "runs" / str(a) / "x_T.pt"))


#----------------------------------------------------------------------------
# Planning, without an engine.

def stored(db, cfg, *, step=0, status="completed"):
    from difftui.engine.config.catalog import config_to_dict
    with Store(db) as store:
        run_id = store.create_run(config_to_dict(cfg), name="r", total_steps=cfg.recipe.total_steps, device="cpu")
        store.update_run(run_id, step=step)
        store.finish_run(run_id, status) if status != "queued" else None
        return run_id, store.get_run(run_id)


def test_the_fork_picks_the_nearest_finished_checkpoint_at_or_before_the_step(tmp_path):
    db = tmp_path / "runs.db"
    run_id, run = stored(db, tiny_config(1000))
    folder = tmp_path / "runs" / str(run_id) / "checkpoints"
    folder.mkdir(parents=True)
    for name in ("ckpt-0000200.pt", "ckpt-0000400.pt", "ckpt-0000600.pt.bad", ".ckpt-0000800.pt.x1.tmp"):
        (folder / name).write_bytes(b"x")
    assert fork_points(db, run_id) == [200, 400]
    assert plan_fork(db, run_id, 399).step == 200
    assert plan_fork(db, run_id, "4e2").where() == "at step 400 (ckpt-0000400.pt)"
    assert plan_fork(db, run_id, 650).where() == "at step 400 (ckpt-0000400.pt; asked 650)"
    assert plan_fork(db, run_id, None).step == 400
    with pytest.raises(LaunchError, match=r"no checkpoint at or before step 150 \(its checkpoints: 200, 400;"):
        plan_fork(db, run_id, 150)
    with pytest.raises(LaunchError, match=r"--step: expected a whole number, got 'soon'"):
        plan_fork(db, run_id, "soon")
    with pytest.raises(LaunchError, match=r"nothing left to train; pass --max-steps N \(N > 400\)"):
        plan_fork(db, run_id, 400, max_steps=400)
    assert plan_fork(db, run_id, 400, max_steps="2e3").config.recipe.total_steps == 2000


def test_a_bad_set_is_refused_by_the_config_model_as_on_a_new_run(tmp_path):
    from difftui.engine.config.model import PresetError
    db = tmp_path / "runs.db"
    run_id, _ = stored(db, tiny_config(1000))
    with pytest.raises(PresetError, match="--set recipe.nope: unknown key 'recipe.nope'"):
        plan_fork(db, run_id, None, ["recipe.nope=1"], fresh=True)
    with pytest.raises(PresetError, match="recipe.dropout"):
        plan_fork(db, run_id, None, ["recipe.dropout=1.5"], fresh=True)


@pytest.mark.parametrize("change, continues", [
    ("recipe.dropout=0.2", True),                   # playbook 4.5: dropout changes no parameter
    ("recipe.importance_sampling=true", True),      # 3.3: the objective's sampler, not the network
    ("recipe.lr=3e-4", True),
    ("recipe.batch_size=16", True),
    ("recipe.schedule=cosine", True),
    ("backbone.arch.model_channels=32", False),
    ("backbone.arch.num_res_blocks=3", False),
    ("recipe.variance=learned", False),             # output channels double (3.2)
    ("recipe.class_conditional=true", False),       # a label embedding appears
])
def test_what_can_continue_from_a_checkpoint(change, continues):
    base = tiny_config(1000)
    changed = tiny_config(1000, change, *(["recipe.loss=hybrid"] if "variance" in change else []))
    found = shape_change(base, changed)
    assert (found is None) == continues, found


def test_a_stored_config_changes_nothing_when_it_is_read_back():
    cfg = tiny_config(1000)
    from difftui.engine.config.catalog import config_to_dict
    again = config_from_dict(config_to_dict(cfg))
    assert shape_change(cfg, again) is None and config_to_dict(again) == config_to_dict(cfg)
