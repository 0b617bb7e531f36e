"""The Slurm backend's parts that need no cluster (issue 17): options and profiles refused in one line, the batch
script and sbatch's argv (never a shell string), Slurm's answers parsed, the job wrapper's requeue decision, srun's
variables as torchrun's, the liveness of a run from its job's state (one home), and the shared-folder rule.
The same paths against a real one-node Slurm are tests/slurm/."""

import json
import os
import shlex
import socket
import stat
import subprocess
import sys
import time

import pytest

from difftui.engine.config.model import PresetError
from difftui.engine.launch import liveness
from difftui.engine.launch.plan import LaunchPlan
from difftui.engine.launch.signals import EXIT_REQUEUE
from difftui.engine.launch.slurm import client, jobs
from difftui.engine.launch.slurm.checks import filesystem_type, shared_folder_problem, slurm_checks
from difftui.engine.launch.slurm.client import JobInfo
from difftui.engine.launch.slurm.options import SlurmOptions, options_from_mapping, parse_sbatch_pairs, parse_time
from difftui.engine.launch.slurm.profiles import get_profile, load_profiles, save_profile
from difftui.engine.launch.slurm.submit import batch_script, sbatch_args, task_record
from difftui.engine.launch.slurm.task import decide
from difftui.engine.run.distributed import first_host, slurm_world_env
from difftui.engine.store import Store
from difftui.tui.cli.slurm import optional_values


def _config():
    return {"dataset": {"name": "digits"}, "backbone": {"name": "unet-demo", "off_tier": False},
            "sampler": {"name": "ddim"}, "recipe": {"name": "p1-default"}}


#----------------------------------------------------------------------------
# Options and profiles.

@pytest.mark.parametrize("data, line", [
    ({"partition": "gpu;rm -rf /"}, "key 'partition': expected a Slurm name (letters, digits, '_', '.', '-'), got "
                                    "'gpu;rm -rf /'"),
    ({"time": "soon"}, "key 'time': expected minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS, got 'soon'"),
    ({"time": "1:30", "signal_s": 120}, "key 'time': 1:30 leaves no time before the 120 s warning"),
    ({"mem": "64 GB"}, "key 'mem': expected a size such as 64G, 8000M or 500 (MB), got '64 GB'"),
    ({"gpus_per_node": 4, "tasks_per_node": 2}, "key 'tasks_per_node': one engine process per GPU: 4 GPUs per node "
                                                "need 4 tasks per node, got 2"),
    ({"nodes": 0}, "key 'nodes': expected >= 1, got 0"),
    ({"nodes": "two"}, "key 'nodes': expected an integer, got 'two'"),
    ({"sbatch": {"output": "/etc/passwd"}}, "key 'sbatch.output': --output is set by difftui"),
    ({"sbatch": {"wrap": "rm -rf ~"}}, "key 'sbatch.wrap': --wrap is set by difftui"),
    ({"sbatch": {"uid": "0"}}, "key 'sbatch.uid': --uid is set by difftui"),
    ({"sbatch": {"prolog": "x"}}, "key 'sbatch.prolog': --prolog is not an sbatch option difftui passes through"),
    ({"sbatch": {"comment": "a\nb"}}, "key 'sbatch.comment': the value of --comment has a control character"),
    ({"colour": "blue"}, "colour"),
])
def test_bad_slurm_options_are_refused_in_one_line_naming_the_key(data, line):
    with pytest.raises(PresetError) as e:
        options_from_mapping(data, "slurm.yaml: profile 'gpu'")
    message = str(e.value)
    assert message.startswith("slurm.yaml: profile 'gpu': ") and line in message and "\n" not in message


def test_slurm_times_read_as_slurm_writes_them():
    assert [parse_time(t) for t in ("90", "90:30", "2:00:00", "1-0", "1-12:00", "1-12:00:30")] == \
        [5400, 5430, 7200, 86400, 129600, 129630]


def test_sbatch_pass_through_takes_harmless_options_only():
    assert parse_sbatch_pairs(["mail-type=END", "--hold", "exclude=node[01-02]"]) == \
        {"mail-type": "END", "hold": "", "exclude": "node[01-02]"}
    for pair, why in (("array=0-9", "--array is set by difftui"), ("partition=x", "use --partition"),
                      ("Mail-Type=END", "expected an sbatch long option name"), ("container=x", "set by difftui")):
        with pytest.raises(ValueError, match="--sbatch") as e:
            parse_sbatch_pairs([pair])
        assert why in str(e.value)


def test_options_become_one_argv_element_each():
    o = options_from_mapping({"partition": "gpu", "time": "1-00:00:00", "nodes": 2, "gpus_per_node": 4,
                              "cpus_per_task": 8, "mem": "256G", "account": "lab", "qos": "high",
                              "constraint": "a100&ib", "sbatch": {"mail-type": "END,FAIL", "hold": ""}}, "x")
    assert o.processes == 8 and o.device == "cuda"
    assert o.sbatch_args() == ["--nodes=2", "--ntasks-per-node=4", "--gpus-per-node=4", "--partition=gpu",
                               "--time=1-00:00:00", "--cpus-per-task=8", "--mem=256G", "--account=lab", "--qos=high",
                               "--constraint=a100&ib", "--hold", "--mail-type=END,FAIL"]
    assert SlurmOptions().processes == 1 and SlurmOptions().device == "cpu"


def test_profiles_are_saved_beside_the_others_and_read_back_validated(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert load_profiles() == {} and get_profile(None) == SlurmOptions()
    path = save_profile("gpu", options_from_mapping({"partition": "gpu", "gpus_per_node": 2}, "x"))
    assert path == tmp_path / "cfg" / "difftui" / "slurm.yaml"
    save_profile("debug", options_from_mapping({"time": "30:00"}, "x"))
    assert get_profile("gpu").gpus_per_node == 2 and get_profile("debug").time == "30:00"
    with pytest.raises(PresetError, match="no Slurm profile 'big' in .*slurm.yaml .profiles: gpu, debug"):
        get_profile("big")
    path.write_text("default: debug\nprofiles:\n  debug: {time: '30:00'}\n  gpu: {gpus_per_node: -1}\n")
    with pytest.raises(PresetError) as e:
        load_profiles()
    assert str(e.value) == f"{path}: profile 'gpu': key 'gpus_per_node': expected >= 0, got -1"
    path.write_text("default: debug\nprofiles:\n  debug: {time: '30:00'}\n")
    assert get_profile(None).time == "30:00"                   # --slurm alone: the file's default profile
    path.write_text("profiles: [a\n")
    with pytest.raises(PresetError, match=r"slurm.yaml: not valid YAML \(line 2\)"):
        load_profiles()


def test_a_bare_slurm_option_takes_the_default_profile():
    assert optional_values(["run", "--slurm", "--time", "1:00:00"]) == ["run", "--slurm=", "--time", "1:00:00"]
    assert optional_values(["run", "--slurm"]) == ["run", "--slurm="]
    assert optional_values(["run", "--slurm", "gpu", "--detach"]) == ["run", "--slurm", "gpu", "--detach"]


#----------------------------------------------------------------------------
# The job's files and sbatch's argv.

def test_the_batch_script_execs_the_wrapper_with_its_two_paths_quoted(tmp_path):
    """Paths with spaces, quotes, `$`, `;` and backticks reach the wrapper as they are: the script is run by sh with a
    stand-in interpreter that records its argv."""
    odd = tmp_path / "lab's runs $HOME; `id` & co"
    odd.mkdir()
    python = odd / "py thon"
    record = tmp_path / "argv.json"
    python.write_text(f"#!{sys.executable}\nimport json, sys\njson.dump(sys.argv[1:], open({str(record)!r}, 'w'))\n")
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    task = odd / "job.json"
    script = tmp_path / "job.sh"
    script.write_text(batch_script(task, python=str(python)))
    subprocess.run(["sh", str(script)], check=True, timeout=60, env={**os.environ, "HOME": "/nonexistent"})
    assert json.loads(record.read_text()) == ["-m", "difftui.engine", "slurm-task", str(task)]
    assert [line for line in script.read_text().splitlines() if not line.startswith("#")] == \
        [f"exec {shlex.quote(str(python))} -m difftui.engine slurm-task {shlex.quote(str(task))}"]
    with pytest.raises(ValueError, match="expected an absolute path"):
        batch_script("relative/job.json", python=str(python))


def test_sbatch_options_for_an_array_are_argv_elements_with_the_throttle_requeue_and_warning(tmp_path):
    o = options_from_mapping({"partition": "debug", "time": "10:00", "signal_s": 90}, "x")
    folder = tmp_path / "sweep 100%"
    args = sbatch_args(o, name="difftui-sweep-3", folder=folder, output="%A_%a.out", array=(3, 2))
    assert args == ["--nodes=1", "--ntasks-per-node=1", "--partition=debug", "--time=10:00",
                    "--job-name=difftui-sweep-3", f"--chdir={folder}",
                    f"--output={tmp_path}/sweep 100%%/slurm/%A_%a.out",        # '%' in a path: '%%' for Slurm
                    "--open-mode=append", "--requeue", "--signal=USR1@90", "--array=0-2%2"]
    assert sbatch_args(o, name="n", folder=folder, output="x", array=(3, 5))[-1] == "--array=0-2"   # K >= N
    record = task_record([{"id": 7, "run_dir": str(tmp_path / "r7")}, {"id": 8, "run_dir": str(tmp_path / "r8")}],
                         array=True, options=options_from_mapping({"cpus_per_task": 4, "max_retries": 1}, "x"))
    assert record == {"array": True, "members": [{"index": 0, "run_id": 7, "run_dir": str(tmp_path / "r7")},
                                                 {"index": 1, "run_id": 8, "run_dir": str(tmp_path / "r8")}],
                      "max_retries": 1, "env": {"DIFFTUI_CPU_THREADS": "4"}}
    with pytest.raises(ValueError, match="engine environment"):
        task_record([], array=False, options=SlurmOptions(), env={"PATH; rm": "x"})


#----------------------------------------------------------------------------
# Slurm's answers.

SQUEUE = """\
5_2|5|5|2|PENDING|JobArrayTaskLimit||N/A|2026-12-05T13:59:16
5_1|7|5|1|RUNNING|None|vm|2026-12-05T13:59:16|2026-12-05T13:59:16
8|8|8|N/A|PENDING|JobHeldUser||N/A|2026-12-05T13:59:16
9|9|9|N/A|CANCELLED by 0|None|vm|2026-12-05T13:59:20|2026-12-05T13:59:16
"""


def test_squeue_sinfo_and_sacct_answers_are_read_by_their_fields():
    q = client.parse_squeue(SQUEUE)
    assert q["5_2"] == JobInfo("5_2", "5", "PENDING", "JobArrayTaskLimit", "", "5", 2, None,
                               client.parse_slurm_time("2026-12-05T13:59:16"))
    assert (q["5_1"].state, q["5_1"].nodes, q["5_1"].job_id, q["5_1"].array_index) == ("RUNNING", "vm", "7", 1)
    assert (q["8"].reason, q["8"].array_job, q["8"].array_index) == ("JobHeldUser", None, None)
    assert q["9"].state == "CANCELLED" and q["9"].reason == ""
    p = client.parse_sinfo("debug*|(null)|up|vm\ngpu|gpu:a100:4|up|g[01-02]\ngpu|gpu:a100:4|up|g03\n")
    assert p["debug"].default and not p["debug"].has_gpus and p["debug"].nodes == ("vm",)
    assert p["gpu"].has_gpus and p["gpu"].nodes == ("g[01-02]", "g03") and not p["gpu"].default
    a = client.parse_sacct("12|12|COMPLETED|vm\n13_1|15|CANCELLED by 0|vm\n")
    assert (a["12"].state, a["13_1"].state, a["13_1"].array_index, a["13_1"].job_id) == \
        ("COMPLETED", "CANCELLED", 1, "15")


#----------------------------------------------------------------------------
# The wrapper's decision and the engines' world.

@pytest.mark.parametrize("rc, terminated, retries, action, counts", [
    (0, False, 0, "done", False),
    (1, False, 0, "final", False),                  # failed (diverged, bad config): never requeued
    (3, False, 0, "final", False),                  # owned by another engine
    (EXIT_REQUEUE, False, 3, "requeue", False),     # SIGUSR1 before the time limit: always, never counted
    (EXIT_REQUEUE, True, 0, "slurm", False),        # Slurm's SIGTERM: Slurm requeues (or cancels) the job itself
    (137, True, 0, "slurm", False),
    (137, False, 0, "requeue", True),               # killed: a crash, requeued and counted
    (139, False, 2, "requeue", True),
    (137, False, 3, "give-up", False),              # max_retries reached
])
def test_the_job_wrapper_requeues_a_crash_up_to_max_retries_and_never_a_failure(rc, terminated, retries, action,
                                                                                  counts):
    d = decide(rc, terminated=terminated, retries=retries, max_retries=3)
    assert (d.action, d.counts) == (action, counts)
    if action == "requeue" and counts:
        assert f"retry {retries + 1} of 3" in d.message and "SIG" in d.message


def test_srun_task_variables_become_torchrun_variables():
    env = {"SLURM_PROCID": "3", "SLURM_NTASKS": "4", "SLURM_LOCALID": "1", "SLURM_NTASKS_PER_NODE": "2",
           "SLURM_JOB_NODELIST": "gpu-[007-008]", "SLURM_JOB_ID": "123456"}
    assert slurm_world_env(env) == {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2",
                                    "MASTER_ADDR": "gpu-007", "MASTER_PORT": str(20000 + 123456 % 20000)}
    env.pop("SLURM_NTASKS_PER_NODE")
    env.update(SLURM_TASKS_PER_NODE="2(x2)", MASTER_ADDR="gpu-007.ib", MASTER_PORT="29555")
    assert slurm_world_env(env)["LOCAL_WORLD_SIZE"] == "2" and slurm_world_env(env)["MASTER_PORT"] == "29555"
    assert slurm_world_env({}) == {}                # not an srun step
    assert [first_host(n) for n in ("vm", "a[1-3],b2", "node[09,10]-ib", "x1,x2")] == ["vm", "a1", "node09-ib", "x1"]


#----------------------------------------------------------------------------
# Liveness from the job's state.

def _slurm_run(store, key="41", **fields):
    run_id = store.create_run(_config(), name="r", total_steps=10)
    store.claim_for_slurm(run_id, job=key, index=None, launch=LaunchPlan(slurm={}).to_json(),
                          submitted=time.time() - 5)
    if fields:
        store.update_run(run_id, **fields)
    return run_id


def test_a_slurm_run_lives_while_its_job_pends_or_runs_and_is_crashed_with_the_reason_when_it_is_gone(
        tmp_path, monkeypatch):
    answers = {}
    monkeypatch.setattr(jobs, "lookup", lambda run: answers[run["slurm_job"]])
    cancelled = []
    monkeypatch.setattr(client, "scancel", lambda key, signal=None: cancelled.append(key))
    now = time.time()
    with Store(tmp_path / "runs.db") as store:
        pending = _slurm_run(store, "41")
        running = _slurm_run(store, "42", status="running", heartbeat=now - 5)
        ended = _slurm_run(store, "43", status="running", heartbeat=now - 5)
        gone = _slurm_run(store, "44")
        stale = _slurm_run(store, "45", status="running", heartbeat=now - 600, slurm_submitted=now - 800)
        unknown = _slurm_run(store, "46", status="running", heartbeat=now - 600)
        answers.update({
            "41": jobs.Lookup("41", job=JobInfo("41", "41", "PENDING", reason="Priority")),
            "42": jobs.Lookup("42", job=JobInfo("42", "42", "RUNNING", nodes="node[01-02]", start=now - 60)),
            "43": jobs.Lookup("43", job=JobInfo("43", "43", "CANCELLED", nodes="node03")),
            "44": jobs.Lookup("44", gone=True),
            "45": jobs.Lookup("45", job=JobInfo("45", "45", "RUNNING", nodes="node04", start=now - 700)),
            "46": jobs.Lookup("46", error="squeue did not answer within 30 s (is slurmctld up?)"),
        })
        assert not liveness.is_waiting(store.get_run(pending))      # submitted: not a sweep's waiting member
        assert liveness.reap_dead_runs(store) == [ended, gone, stale]
        rows = {r["id"]: r for r in store.list_runs()}
        assert rows[pending]["status"] == "queued" and rows[running]["status"] == "running"
        assert rows[unknown]["status"] == "running"                 # Slurm cannot be asked: nothing concluded
        assert rows[ended]["error"] == "Slurm job 43 ended CANCELLED without a final status"
        assert rows[gone]["error"] == "Slurm job 44 is gone (slurmctld no longer knows it) without a final status"
        assert rows[stale]["error"].startswith("no heartbeat for 6") and "Slurm job 45 runs on node04" in \
            rows[stale]["error"]
        assert cancelled == ["45"]                                  # a job that runs on without its engine
        assert (rows[pending]["slurm_state"], rows[pending]["slurm_reason"]) == ("PENDING", "Priority")
        assert (rows[running]["slurm_state"], rows[running]["slurm_nodes"]) == ("RUNNING", "node[01-02]")
        assert jobs.describe_job(rows[pending]) == "job 41 PENDING (Priority)"
        assert jobs.describe_job(rows[running]) == "job 42 RUNNING on node[01-02]"
        assert jobs.describe_job(rows[ended]) == "job 43"
        assert liveness.describe_owner(rows[pending]) == "Slurm job 41 PENDING (Priority)"


def test_a_stop_past_its_grace_period_cancels_the_job_once(tmp_path, monkeypatch):
    from difftui.engine.launch.runs import STOP_GRACE_S
    monkeypatch.setattr(jobs, "lookup", lambda run: jobs.Lookup(run["slurm_job"], job=JobInfo(
        run["slurm_job"], run["slurm_job"], "RUNNING", nodes="vm", start=time.time())))
    cancelled = []
    monkeypatch.setattr(client, "scancel", lambda key, signal=None: cancelled.append(key))
    with Store(tmp_path / "runs.db") as store:
        fresh = _slurm_run(store, "50", status="stopping", heartbeat=time.time(), stop_asked=time.time() - 1)
        late = _slurm_run(store, "51", status="stopping", heartbeat=time.time(),
                          stop_asked=time.time() - STOP_GRACE_S - 1)
        assert liveness.reap_dead_runs(store) == [] and cancelled == ["51"]
        assert liveness.reap_dead_runs(store) == [] and cancelled == ["51"]          # asked once
        assert store.events_since(late)[-1]["message"].startswith("stop: no final status")
        assert store.get_run(fresh)["stop_asked"] is not None and store.get_run(late)["stop_asked"] is None


def test_squeue_is_asked_once_per_poll_for_all_runs_and_again_for_a_newer_submission(monkeypatch):
    calls = []
    monkeypatch.setattr(client, "squeue", lambda: calls.append(1) or {"1": JobInfo("1", "1", "RUNNING")})
    monkeypatch.setattr(client, "sacct", lambda keys: None)
    monkeypatch.setattr(client, "squeue_job", lambda key: calls.append(key) or None)
    monkeypatch.setenv("DIFFTUI_SLURM_POLL_S", "60")
    table = jobs.JobTable()
    assert table.lookup("1").alive and table.lookup("1").alive and table.lookup("2").gone
    assert calls == [1, "2"]                        # one squeue for all; the missing one asked by its id, once
    assert table.lookup("2").gone and calls == [1, "2"]
    assert table.lookup("2", submitted=time.time() + 1).gone and calls == [1, "2", 1]  # submitted after the answer


#----------------------------------------------------------------------------
# What the nodes can see.

MOUNTS = """\
/dev/vda / ext4 rw 0 0
tmpfs /tmp tmpfs rw 0 0
nas:/export /shared nfs4 rw 0 0
lustre@o2ib:/fs /lus lustre rw 0 0
/dev/vdb /shared/local\\040disk ext4 rw 0 0
"""


def test_the_runs_folder_must_be_on_a_filesystem_the_nodes_see(tmp_path):
    assert [filesystem_type(p, MOUNTS) for p in ("/home/u", "/shared/a", "/lus/x/y", "/shared/local disk/z",
                                                 "/tmp/x")] == ["ext4", "nfs4", "lustre", "ext4", "tmpfs"]
    here = socket.gethostname()
    plain = SlurmOptions()
    assert shared_folder_problem("/shared/runs", ("n1", "n2"), plain, mounts=MOUNTS, host=here) == (None, None)
    error, _ = shared_folder_problem("/home/u/runs", ("n1", "n2"), plain, mounts=MOUNTS, host="login1")
    assert error.startswith("the runs folder /home/u/runs is on ext4, a filesystem of this machine, which the "
                            "compute nodes (n1, n2) do not see")
    _, warning = shared_folder_problem("/tmp/x", (here,), plain, mounts=MOUNTS, host=here)
    assert warning.startswith("the runs folder /tmp/x is under /tmp: fine on this one-node cluster")
    assert shared_folder_problem("/tmp/x", ("n1",), plain, mounts=MOUNTS, host=here)[0] is not None
    trusted = options_from_mapping({"shared_fs": True}, "x")
    assert shared_folder_problem("/home/u/runs", ("n1",), trusted, mounts=MOUNTS, host="login1") == (None, None)


def test_no_sbatch_on_path_is_one_line_before_anything_is_created(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    report = slurm_checks(None, SlurmOptions(), runs_folder=tmp_path)
    assert report.errors == ("no sbatch on PATH: this machine cannot submit Slurm jobs (run difftui on the "
                             "cluster's login node, or without --slurm)",)


def test_the_time_limit_must_hold_one_checkpoint_interval_at_the_measured_speed(tmp_path, monkeypatch):
    from difftui.engine.config.catalog import Catalog
    config = Catalog().resolve(overrides=["recipe.snapshot_every=2000"], max_steps=10_000, device="cpu")
    monkeypatch.setattr(client, "available", lambda command="sbatch": True)
    monkeypatch.setattr(client, "sinfo", lambda: {"debug": client.Partition("debug", (), (socket.gethostname(),),
                                                                             True, True)})
    with Store(tmp_path / "runs.db") as store:
        unmeasured = slurm_checks(config, options_from_mapping({"time": "10:00"}, "x"), runs_folder=tmp_path,
                                  store=store)
        assert unmeasured.ok and any("not checked against the checkpoint interval" in w for w in unmeasured.warnings)
        earlier = store.create_run(json.loads(json.dumps(__import__("difftui.engine.config.catalog", fromlist=[
            "config_to_dict"]).config_to_dict(config))), name="earlier", total_steps=10, device="cpu")
        store.write_batch(earlier, metrics=[(10 * i, 0.0, "img_per_s", 128.0, time.time()) for i in range(1, 6)],
                          run_fields={"status": "completed"})
        short = slurm_checks(config, options_from_mapping({"time": "30:00"}, "x"), runs_folder=tmp_path,
                             store=store)
        # 2,000 steps x batch 128 at 128 img/s = 2,000 s = 33:20, plus the 120 s warning.
        assert short.errors == ("--time 30:00 is shorter than one checkpoint interval: 2,000 steps "
                                "(recipe.snapshot_every) of batch 128 at 128 img/s (unet-demo on digits (cpu), 1 "
                                "process(es)) take 00:33:20, and the engine checkpoints 120 s before the end: ask "
                                "for at least 00:35:20, or lower recipe.snapshot_every",)
        assert slurm_checks(config, options_from_mapping({"time": "36:00"}, "x"), runs_folder=tmp_path,
                            store=store).ok


def test_the_member_tables_give_a_slurm_sweeps_members_their_job_and_state():
    """The sweep view's table (TUI) and `sweep show`'s (CLI) say the same: waiting, PENDING with Slurm's reason,
    RUNNING on which nodes, and the bare job once the member has ended; a local sweep has no such column."""
    from difftui.engine.sweeps.compare import RunSummary
    from difftui.tui.cli.sweep import member_rows
    from difftui.tui.widgets.member_table import member_columns
    base = {"pid": None, "step": 0, "total_steps": 60, "axis_values": '{"recipe.dropout": 0.1}', "off_grid": 0}
    runs = [{**base, "id": 1, "status": "running", "slurm_job": "7_0", "slurm_state": "RUNNING", "slurm_nodes": "vm"},
            {**base, "id": 2, "status": "queued", "slurm_job": "7_1", "slurm_state": "PENDING",
             "slurm_reason": "JobArrayTaskLimit"},
            {**base, "id": 3, "status": "completed", "slurm_job": "7_2", "slurm_state": "RUNNING"},
            {**base, "id": 4, "status": "queued", "slurm_job": None}]
    summaries = [RunSummary(r) for r in runs]
    header, rows = member_rows(summaries)
    jobs_cli = [row[header.index("slurm job")] for row in rows]
    status_cli = [row[header.index("status")] for row in rows]
    cols = {c.key: c for c in member_columns(summaries)}
    jobs_tui = [cols["slurm"].cell(s).plain for s in summaries]
    assert jobs_cli == jobs_tui == ["7_0 RUNNING on vm", "7_1 PENDING (JobArrayTaskLimit)", "7_2", "-"]
    assert status_cli == ["running", "queued", "completed", "queued (waiting)"]
    assert [cols["status"].cell(s).plain for s in summaries] == ["running", "queued", "completed", "waiting"]
    local = [RunSummary({**r, "slurm_job": None}) for r in runs]
    assert "slurm job" not in member_rows(local)[0] and "slurm" not in {c.key for c in member_columns(local)}
