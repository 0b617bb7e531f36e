"""Runs and sweeps on a real one-node Slurm cluster (issue 17): submitted with sbatch, their engines started by the
job wrapper with srun in spool mode (CPU, gloo, tiny models), ingested into runs.db by the front end that watches
them, requeued by Slurm and by the wrapper, and a sweep as a job array throttled with %2.

Slurm holds a requeued job back for about two minutes (PENDING, reason BeginTime); the tests make it eligible at once
(`scontrol update StartTime=now`, slurm_testkit.release_if_held), as an impatient user would."""

import random
import subprocess
import time
from pathlib import Path

import torch
from slurm_testkit import (
    ENDED,
    duplicated_groups,
    look,
    messages,
    tiny_config,
    wait_jobs_ended,
    watch,
)
from typer.testing import CliRunner

from difftui.engine.launch import liveness
from difftui.engine.launch import runs as launch
from difftui.engine.launch.plan import LaunchPlan
from difftui.engine.launch.slurm.options import SlurmOptions
from difftui.engine.store import Store
from difftui.engine.store.ingest import ingest_run
from difftui.tui.cli import app as cli_app

SIZE = (160, 45)


def plan(**slurm) -> LaunchPlan:
    return LaunchPlan(slurm={"time": "15:00", **slurm})


async def opened(app, pilot, run_id: int) -> None:
    """The app's dashboard of `run_id`, opened from the history as a user would."""
    from difftui.tui.screens.history import HistoryScreen
    deadline = time.monotonic() + 60
    while not (isinstance(app.screen, HistoryScreen) and app.screen.loaded):
        assert time.monotonic() < deadline, "the history never loaded"
        await pilot.pause(0.1)
    app.open_dashboard(run_id)


def plain(renderable) -> str:
    """What a rich renderable shows, as text."""
    from rich.console import Console
    console = Console(width=200, record=True, file=open("/dev/null", "w"))
    console.print(renderable)
    return console.export_text()


def series_steps(db, run_id, name="L_simple"):
    with Store(db) as store:
        return [s for s, _ in store.series(run_id, name)]


#----------------------------------------------------------------------------
# One run through sbatch, watched live by the TUI.

async def test_a_run_trains_through_sbatch_lands_in_runs_db_once_and_the_dashboard_follows_it_live(slurm_db):
    from difftui.tui.app import DifftuiApp
    from difftui.tui.screens.dashboard import DashboardScreen
    from difftui.tui.widgets.status_line import StatusLine
    db = slurm_db
    steps = 60
    config = tiny_config(steps, "recipe.log_every=10", "recipe.grid_every=30", "recipe.snapshot_every=30")
    started = launch.new_run(db, config, plan=plan())
    run_id, key = started.run_id, started.slurm_job
    assert started.proc is None and key.isdigit()
    seen: list[tuple[str, int]] = []
    app = DifftuiApp(db_path=db)
    async with app.run_test(size=SIZE) as pilot:
        await opened(app, pilot, run_id)
        deadline = time.monotonic() + 300
        while True:
            screen = app.screen
            if isinstance(screen, DashboardScreen) and screen.polls:
                line = screen.query_one(StatusLine)
                text = str(line.render())
                if line.status == "running" and f"Slurm job {key} RUNNING on " in text:
                    seen.append(("running", line.step))
                if line.status == "completed":
                    seen.append(("completed", line.step))
                    break
            assert time.monotonic() < deadline, f"the dashboard never showed the run complete: {seen}"
            await pilot.pause(0.2)
    live_steps = sorted({s for status, s in seen if status == "running"})
    assert len(live_steps) >= 2 and live_steps[0] < steps, live_steps      # it moved while we watched
    assert seen[-1] == ("completed", steps)
    run = look(db, run_id)
    assert (run["status"], run["step"], run["sink"], run["slurm_job"]) == ("completed", steps, "spool", key)
    assert duplicated_groups(db) == 0
    assert series_steps(db, run_id) == list(range(10, steps + 1, 10))
    with Store(db) as store:
        grids = [g["step"] for g in store.samples_index(run_id, "grid")]
    assert grids == [30, 60]
    events = messages(db, run_id)
    assert events.count(f"completed at step {steps}") == 1 and events.count("checkpoint at step 60") == 1
    assert sum(m.startswith(f"job {key} started on ") for m in events) == 1


#----------------------------------------------------------------------------
# Two srun tasks (DDP, gloo) against one process.

def test_a_two_task_run_through_srun_matches_one_process_with_the_same_global_batch(slurm_db):
    """The DDP test's stated tolerance (tests/engine/test_engine_ddp.py): the mean L_simple over the second half of
    training within 15%, every logged point within 25%."""
    db = slurm_db
    steps = 120
    extra = ("recipe.batch_size=16", "recipe.log_every=10", "recipe.grid_every=60", "recipe.snapshot_every=100000")
    one = launch.new_run(db, tiny_config(steps, *extra), plan=plan()).run_id
    two = launch.new_run(db, tiny_config(steps, *extra), plan=plan(tasks_per_node=2)).run_id
    for run_id in (one, two):
        run = watch(db, run_id, ENDED, timeout=420)
        assert (run["status"], run["step"]) == ("completed", steps), run["error"]
    assert look(db, two)["device"] == "cpu x2"
    assert any("DDP over 2 processes, 8 images each" in m for m in messages(db, two))
    assert duplicated_groups(db) == 0                          # only rank 0 writes the spool
    with Store(db) as store:
        ref, ddp = store.series(one, "L_simple"), store.series(two, "L_simple")
    assert [s for s, _ in ref] == [s for s, _ in ddp] == list(range(10, steps + 1, 10))
    a, b = torch.tensor([v for _, v in ref]), torch.tensor([v for _, v in ddp])
    half = len(a) // 2
    assert abs(b[half:].mean() / a[half:].mean() - 1) < 0.15, (a, b)
    assert ((b - a).abs() / a).max() < 0.25, (a, b)


#----------------------------------------------------------------------------
# Preemption.

def test_scontrol_requeue_three_times_then_the_time_limit_warning_resume_the_same_run_with_no_step_twice(slurm_db):
    """`scontrol requeue` (what a preemption does) at a random step, three times in a row, then the time-limit warning
    (SIGUSR1, which sbatch --signal sends): each time the engine checkpoints at that step and the job runs again on
    the same run row, which logs every step once and loses none."""
    db = slurm_db
    steps, interval = 240, 50
    config = tiny_config(steps, "recipe.log_every=10", "recipe.grid_every=1000", f"recipe.snapshot_every={interval}")
    run_id = launch.new_run(db, config, plan=plan()).run_id
    rng = random.Random(17)
    resumed_at = 0
    for k in range(4):
        target = resumed_at + rng.randint(15, 35)
        run = watch(db, run_id, lambda r, t=target: r["slurm_state"] == "RUNNING" and r["step"] >= t, timeout=300)
        key, before = run["slurm_job"], run["step"]
        if k < 3:
            subprocess.run(["scontrol", "requeue", key], check=True, timeout=30)
            why = "SIGTERM"
        else:
            subprocess.run(["scancel", "--signal=USR1", key], check=True, timeout=30)
            why = "SIGUSR1"
        want = k + 1
        run = watch(db, run_id, lambda r, want=want: sum(m.startswith("resumed from step") for m in
                                                         messages(db, run_id)) >= want, timeout=300)
        events = messages(db, run_id)
        left = [m for m in events if m.startswith(f"{why} from Slurm at step ")][-1]
        left_at = int(left.split("at step ")[1].split(":")[0])
        resumed_at = int([m for m in events if m.startswith("resumed from step")][-1].split()[3])
        assert resumed_at == left_at >= before                # checkpointed on the signal: nothing lost
        assert run["id"] == run_id and run["status"] in ("running", "queued")
    run = watch(db, run_id, ENDED, timeout=300)
    assert (run["status"], run["step"]) == ("completed", steps), run["error"]
    events = messages(db, run_id)
    assert sum(m.startswith(f"job {run['slurm_job']} started on ") for m in events) == 5
    assert any("the time limit is near (SIGUSR1): the engine checkpointed; requeueing the job" in m for m in events)
    assert duplicated_groups(db) == 0
    assert series_steps(db, run_id) == list(range(10, steps + 1, 10))
    assert not (Path(run["run_dir"]) / "slurm" / "retries").exists()   # no crash counted against max_retries


#----------------------------------------------------------------------------
# A sweep as a job array.

def _intervals(db, member_id, key):
    """(start, end) of each time the member's job ran, from the wrapper's events."""
    starts, ends = [], []
    for e in Store(db).events_since(member_id):
        if e["message"].startswith(f"job {key} started on "):
            starts.append(e["time"])
        elif e["message"].startswith(f"job {key}: "):
            ends.append(e["time"])
    assert len(starts) == len(ends), (starts, ends)
    return list(zip(starts, ends, strict=True))


def test_a_sweep_runs_as_one_array_never_three_at_once_and_a_killed_member_is_requeued_and_completes(slurm_db):
    from difftui.engine.config.catalog import Catalog
    from difftui.engine.sweeps import RunSpec, Slots, launch_sweep, plan_sweep
    db = slurm_db
    catalog = Catalog()
    spec = RunSpec(overrides=("recipe.batch_size=8", "backbone.arch.model_channels=16", "sampler.grid.steps=10",
                              "recipe.log_every=10", "recipe.grid_every=1000", "recipe.snapshot_every=20"),
                   max_steps=60, device="cpu")
    sweep_plan = plan_sweep(catalog, catalog.get("sweeps", "p1-dropout"), spec, device="cpu")
    sweep_id, array = launch_sweep(db, sweep_plan, Slots(("slurm",), 2), slurm=SlurmOptions(time="15:00"))
    with Store(db) as store:
        members = store.sweep_members(sweep_id)
    assert [m["slurm_job"] for m in members] == [f"{array}_{i}" for i in range(3)]
    third = members[2]["id"]
    # `sweep show` gives each member's job and state: the third waits for the throttle.
    shown = watch(db, third, lambda r: r["slurm_reason"] == "JobArrayTaskLimit", timeout=60)
    table = CliRunner().invoke(cli_app, ["sweep", "show", "--db", str(db), str(sweep_id)]).stdout
    assert f"{array}_2 PENDING (JobArrayTaskLimit)" in table and "slurm job" in table, table
    assert "none: Slurm job arrays" in table and shown["status"] == "queued"
    # The third waits for the throttle, then runs; kill its engine (the job step) once it trains.
    watch(db, third, lambda r: r["status"] == "running" and r["step"] >= 10, timeout=420)
    subprocess.run(["scancel", "--signal=KILL", f"{array}_2.0"], check=True, timeout=30)
    for m in members:
        run = watch(db, m["id"], ENDED, timeout=420)
        assert (run["status"], run["step"]) == ("completed", 60), run["error"]
    with Store(db) as store:
        liveness.reap(store)
        assert store.get_sweep(sweep_id)["status"] == "completed"
    wait_jobs_ended([m["slurm_job"] for m in members])
    with Store(db) as store:                                     # the wrappers' last events (after the runs ended)
        for m in members:
            ingest_run(store, store.get_run(m["id"]))
    events = messages(db, third)
    assert any(m.startswith(f"job {array}_2: engines crashed (exit code 137 (SIGKILL)); requeueing the job (retry 1 "
                            f"of 3)") for m in events), events
    assert (Path(members[2]["run_dir"]) / "slurm" / "retries").read_text() == "1"
    spans = [span for m in members for span in _intervals(db, m["id"], m["slurm_job"])]
    assert len(spans) == 4                                       # three members, one of them twice
    running_at = [sum(s <= t < e for s, e in spans) for t, _ in spans]
    assert max(running_at) == 2, spans                           # Slurm's %2: two at once, never three
    assert duplicated_groups(db) == 0


#----------------------------------------------------------------------------
# PENDING with Slurm's reason; the checks against the real cluster.

async def test_a_pending_job_shows_slurms_reason_on_the_dashboard_and_stop_cancels_it(slurm_db):
    from difftui.tui.app import DifftuiApp
    from difftui.tui.screens.dashboard import DashboardScreen
    from difftui.tui.widgets.status_line import StatusLine
    db = slurm_db
    started = launch.new_run(db, tiny_config(20), plan=plan(sbatch={"hold": ""}))
    app = DifftuiApp(db_path=db)
    async with app.run_test(size=SIZE) as pilot:
        await opened(app, pilot, started.run_id)
        deadline = time.monotonic() + 60
        want = f"Slurm job {started.slurm_job} PENDING (JobHeldUser)"
        shown = ""
        while want not in shown:
            assert time.monotonic() < deadline, shown
            await pilot.pause(0.2)
            if isinstance(app.screen, DashboardScreen) and app.screen.polls:
                shown = str(app.screen.query_one(StatusLine).render())
    stopped = launch.request_stop(db, started.run_id)
    assert stopped.message == f"run {started.run_id} stopped: its pending Slurm job {started.slurm_job} was cancelled"
    assert look(db, started.run_id)["status"] == "stopped"


def test_the_cli_refuses_what_this_cluster_cannot_run_in_one_line_before_anything_is_created(slurm_db, monkeypatch,
                                                                                           tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    db = slurm_db
    tiny = ["--set", "recipe.batch_size=8", "--set", "backbone.arch.model_channels=16", "--max-steps", "20"]
    for args, line in (
            (["--slurm", "--partition", "nowhere"], "--partition nowhere: no such partition (sinfo: "),
            (["--slurm", "--gpus-per-node", "1"], "--gpus-per-node 1: partition "),
            (["--slurm", "--time", "1"], "key 'time': 1 leaves no time before the 120 s warning"),
            (["--slurm", "--sbatch", "output=/etc/x"], "--sbatch 'output=/etc/x': --output is set by difftui"),
            (["--partition", "debug"], "--partition is a Slurm option: add --slurm [PROFILE]"),
            (["--slurm", "--gpus", "0"], "--gpus is for this machine; with --slurm use --gpus-per-node")):
        result = CliRunner().invoke(cli_app, ["run", "--db", str(db), *tiny, *args, "--detach"])
        assert result.exit_code == 2, result.stdout
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and line in lines[0], (line, result.stderr)
    assert not db.exists()                                        # nothing was created
    result = CliRunner().invoke(cli_app, ["run", "--db", str(db), *tiny, "--slurm", "--sbatch", "hold",
                                          "--save-profile", "held", "--detach"])
    assert result.exit_code == 0, result.stderr
    assert "under /tmp: fine on this one-node cluster" in result.stderr or not str(db).startswith("/tmp/")
    listing = CliRunner().invoke(cli_app, ["ls", "--db", str(db)]).stdout
    assert "queued, job " in listing and "PENDING (JobHeldUser)" in listing
    assert (tmp_path / "cfg" / "difftui" / "slurm.yaml").read_text() == "profiles:\n  held:\n    sbatch:\n      hold: ''\n"
    shown = CliRunner().invoke(cli_app, ["show", "--db", str(db), "1"]).stdout
    assert "slurm     job " in shown and "PENDING (JobHeldUser); the default partition, 1 node x 1 task (CPU)" in shown
    stop = CliRunner().invoke(cli_app, ["stop", "--db", str(db), "1"])
    assert stop.exit_code == 0 and "its pending Slurm job" in stop.stdout and "run 1 stopped at step 0" in stop.stdout
    # Without --detach, `run --slurm` follows the job from here (ingest and squeue each poll) to its end.
    followed = CliRunner().invoke(cli_app, ["run", "--db", str(db), *tiny, "--slurm", "--time", "10:00"])
    assert followed.exit_code == 0, followed.stderr
    assert "run 2 submitted to Slurm as job " in followed.stdout and "run 2 completed at step 20/20" in followed.stdout


def test_sweep_stop_resume_add_and_retry_on_slurm_cancel_and_submit_arrays(slurm_db):
    """With every job held (sbatch --hold), nothing trains: stop cancels the pending tasks, resume submits the
    stopped members as a new array, add submits its new member as an array of its own, retry a cancelled one."""
    from difftui.engine.config.catalog import Catalog
    from difftui.engine.sweeps import (
        RunSpec,
        Slots,
        add_value,
        launch_sweep,
        plan_sweep,
        resume_sweep,
        retry_members,
        stop_sweep,
    )
    db = slurm_db
    catalog = Catalog()
    spec = RunSpec(overrides=("recipe.batch_size=8", "backbone.arch.model_channels=16"), max_steps=20, device="cpu")
    grid = catalog.get("sweeps", "p1-dropout")
    sweep_plan = plan_sweep(catalog, grid, spec, values={"recipe.dropout": [0.1, 0.2]}, device="cpu")
    held = SlurmOptions(sbatch={"hold": ""})
    sweep_id, first = launch_sweep(db, sweep_plan, Slots(("slurm",), 2), slurm=held)
    a, b = (m["id"] for m in Store(db).sweep_members(sweep_id))
    for run_id in (a, b):
        assert watch(db, run_id, lambda r: r["slurm_reason"] == "JobHeldUser", timeout=60)["status"] == "queued"
    assert stop_sweep(db, sweep_id) == (f"sweep {sweep_id}: 2 pending member(s) cancelled, stop requested for 0 "
                                        f"running member(s) (scancel if they have not ended after the grace period);"
                                        f" sweep resume {sweep_id} submits the stopped ones again")
    with Store(db) as store:
        liveness.reap(store)
        assert store.get_sweep(sweep_id)["status"] == "stopped"
        assert [m["status"] for m in store.sweep_members(sweep_id)] == ["stopped", "stopped"]
    line = resume_sweep(db, sweep_id)
    with Store(db) as store:
        second = store.get_run(a)["slurm_job"].split("_")[0]
        assert [m["slurm_job"] for m in store.sweep_members(sweep_id)] == [f"{second}_0", f"{second}_1"]
        assert store.get_sweep(sweep_id)["status"] == "running" and second != first
    assert line == (f"sweep {sweep_id} resumed (submitted to Slurm as job array {second}): 2 member(s) waiting, 2 "
                    f"stopped or crashed member(s) queued again")
    line = add_value(db, catalog, sweep_id, "0.3")
    with Store(db) as store:
        c = store.sweep_members(sweep_id)[2]
    third = c["slurm_job"].split("_")[0]
    assert c["slurm_job"] == f"{third}_0" and third not in (first, second)
    assert line == f"sweep {sweep_id}: recipe.dropout=0.3 added as run {c['id']} (submitted to Slurm as job array {third})"
    subprocess.run(["scancel", f"{second}_1"], check=True, timeout=30)      # gone without a final status: crashed
    run = watch(db, b, ENDED, timeout=60)
    assert run["status"] == "crashed" and run["error"] in (     # a cancelled pending task may be forgotten at once
        f"Slurm job {second}_1 ended CANCELLED without a final status",
        f"Slurm job {second}_1 is gone (slurmctld no longer knows it) without a final status")
    assert retry_members(db, sweep_id).startswith(f"sweep {sweep_id}: run {b} queued again (submitted to Slurm as job "
                                                  f"array ")
    assert look(db, b)["slurm_job"].endswith("_0") and look(db, b)["status"] == "queued"
    stop_sweep(db, sweep_id)
    with Store(db) as store:
        liveness.reap(store)
        assert store.get_sweep(sweep_id)["status"] == "stopped"
        assert {m["status"] for m in store.sweep_members(sweep_id)} == {"stopped"}


async def test_the_review_screens_where_choice_submits_the_run_with_a_slurm_profile(slurm_db, monkeypatch, tmp_path):
    from difftui.tui.app import DifftuiApp
    from difftui.tui.screens.dashboard import DashboardScreen
    from difftui.tui.screens.new_run import PresetPickerScreen
    from difftui.tui.screens.review import ReviewScreen
    from difftui.tui.widgets.status_line import StatusLine
    from difftui.tui.widgets.where_select import WhereSelect
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    (tmp_path / "cfg" / "difftui").mkdir(parents=True)
    (tmp_path / "cfg" / "difftui" / "slurm.yaml").write_text(
        "profiles:\n  held: {time: '10:00', sbatch: {hold: ''}}\n")
    db = slurm_db

    async def until(condition, what, timeout=60):
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, what() if callable(what) else what
            await pilot.pause(0.1)

    app = DifftuiApp(db_path=db)
    async with app.run_test(size=SIZE) as pilot:
        for kind in ("datasets", "backbones", "samplers", "recipes"):
            await until(lambda kind=kind: isinstance(app.screen, PresetPickerScreen) and app.screen.kind == kind
                        and app.screen.entries, f"the {kind} picker")
            await pilot.press("enter")
        await until(lambda: isinstance(app.screen, ReviewScreen) and app.screen.config, "the review")
        review = app.screen
        where = review.query_one("#where", WhereSelect)
        await until(lambda: where.profiles, "the Slurm profiles")
        review.query_one("#batch-size").value = "8"
        review.query_one("#max-steps").value = "20"
        review.query_one("#overrides").value = "backbone.arch.model_channels=16"
        where.focus()
        await pilot.pause()
        await pilot.press("enter")                              # open it: this machine, the cluster's defaults, held
        await until(lambda: where.expanded, "the where list")
        await pilot.press("down", "down", "enter")
        await until(lambda: where.value == "slurm:held", "the held profile chosen")
        await until(lambda: review.config is not None and review.config.recipe.batch_size == 8
                    and "Slurm (profile held)" in plain(review.query_one("#facts").content),
                    lambda: f"the Slurm facts: {review.error!r} {plain(review.query_one('#facts').content)}")
        assert "Slurm (profile held): the default partition, time 10:00, 1 node x 1 task (CPU), device cpu" in \
            plain(review.query_one("#facts").content)
        assert review.config.device == "cpu"
        await pilot.press("ctrl+l")
        shown = ""
        deadline = time.monotonic() + 60
        while "PENDING (JobHeldUser)" not in shown:
            assert time.monotonic() < deadline, shown
            await pilot.pause(0.2)
            if isinstance(app.screen, DashboardScreen) and app.screen.polls:
                shown = str(app.screen.query_one(StatusLine).render())
    run = look(db, 1)
    assert f"Slurm job {run['slurm_job']} PENDING (JobHeldUser)" in shown
    assert LaunchPlan.from_json(run["launch"]).slurm == {"time": "10:00", "sbatch": {"hold": ""}}
    assert launch.request_stop(db, 1).message.startswith("run 1 stopped: its pending Slurm job")
