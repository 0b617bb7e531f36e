"""The job wrapper: `python -m difftui.engine slurm-task TASK_FILE`, what a difftui batch script execs (submit.py).

It runs on the job's first node, once per job start (a requeued job starts it again):

1. picks its run from the task file (an array task by SLURM_ARRAY_TASK_ID);
2. starts the run's engines with `srun` (an argv list; one task per GPU, the job's --ntasks-per-node x --nodes) in
   spool mode (`python -m difftui.engine train RUN_ID --spool RUN_DIR`: the compute nodes never open runs.db),
   their output appended to runs/<id>/engine.log, with DIFFTUI_SLURM_TASK=1 and the rendezvous of the job's first
   node (MASTER_ADDR from `scontrol show hostnames`, MASTER_PORT from the job id; engine/run/distributed.py);
3. decides from their exit (`decide`) whether the job runs again:

    engines exit 0                    completed or stopped: done
    exit 1, 2 or 3                    failed (diverged, bad config), no such run, owned elsewhere: never requeued
    exit 75 (EXIT_REQUEUE), no SIGTERM here
                                      Slurm's time-limit warning (SIGUSR1): they checkpointed; `scontrol requeue`
    SIGTERM received here             Slurm itself requeues, preempts or cancels the job: nothing to do
    anything else (killed, crashed)   requeued while the run's requeues for crashes stay under max_retries (counted
                                      in runs/<id>/slurm/retries), otherwise left to end (the run is then crashed)

Every decision is written to the run's engine.log and to its events (through the run's spool, like the engine's).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from difftui.engine.atomic import atomic_write_text
from difftui.engine.launch.signals import EXIT_REQUEUE, SLURM_TASK_ENV

__all__ = ["main", "decide", "Decision", "engine_argv", "job_key", "slurm_port", "EXIT_FINAL"]

WRAPPER_STREAM = "slurm"                            # runs/<id>/spool/slurm.jsonl: the wrapper's events
EXIT_FINAL = (1, 2, 3)                              # failed, no run, owned: the engine's own word, never requeued


@dataclass(frozen=True)
class Decision:
    action: str                                     # "done" | "final" | "requeue" | "slurm" | "give-up"
    counts: bool                                    # a requeue that counts against max_retries (a crash)
    message: str


def decide(rc: int, *, terminated: bool, retries: int, max_retries: int) -> Decision:
    """What the wrapper does after its engines exit with `rc` (the module docstring's table)."""
    if rc == 0:
        return Decision("done", False, "engines ended with a final status")
    if terminated:
        return Decision("slurm", False, f"Slurm sent SIGTERM (requeue, preemption or cancel); engines exited "
                                        f"with {describe_exit(rc)}")
    if rc in EXIT_FINAL:
        return Decision("final", False, f"engines exited with {describe_exit(rc)}: not requeued")
    if rc == EXIT_REQUEUE:
        return Decision("requeue", False, "the time limit is near (SIGUSR1): the engine checkpointed; requeueing "
                                          "the job")
    if retries < max_retries:
        return Decision("requeue", True, f"engines crashed ({describe_exit(rc)}); requeueing the job (retry "
                                         f"{retries + 1} of {max_retries})")
    return Decision("give-up", False, f"engines crashed ({describe_exit(rc)}) and the run was requeued "
                                      f"{retries} time(s) already (max_retries {max_retries}): not requeued")


def describe_exit(rc: int) -> str:
    if rc > 128 and rc - 128 in signal.Signals._value2member_map_:
        return f"exit code {rc} ({signal.Signals(rc - 128).name})"
    if rc < 0 and -rc in signal.Signals._value2member_map_:
        return f"{signal.Signals(-rc).name}"
    return f"exit code {rc}"


def slurm_port(job_id: str | int) -> int:
    """The rendezvous port of a job (MASTER_PORT): 20000-39999 by job id (jobs that share a node have different
    ids)."""
    return 20000 + int(job_id) % 20000


def job_key(env: dict[str, str] | os._Environ) -> str:
    """The job as scontrol and scancel name it: "<array job>_<index>" for an array task, else the job id."""
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env["SLURM_JOB_ID"]


def engine_argv(run_id: int, run_dir: str) -> list[str]:
    """srun, then the engine in spool mode (one task per GPU: srun takes the job's task layout)."""
    return ["srun", "--kill-on-bad-exit=1", sys.executable, "-m", "difftui.engine", "train", str(run_id),
            "--spool", run_dir]


def _member(task: dict[str, Any], env: dict[str, str] | os._Environ) -> dict[str, Any]:
    index = int(env.get("SLURM_ARRAY_TASK_ID", "0")) if task.get("array") else 0
    members = {int(m["index"]): m for m in task["members"]}
    if index not in members:
        raise ValueError(f"no member {index} in the task file (indices {sorted(members)})")
    return members[index]


def _retries_path(run_dir: Path) -> Path:
    return run_dir / "slurm" / "retries"


def _read_retries(run_dir: Path) -> int:
    try:
        return int(_retries_path(run_dir).read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


class _Log:
    """The wrapper's lines in the run's engine.log, and its events through the run's spool (its own file,
    spool/slurm.jsonl: one writer per file), which the front end ingests with the engine's."""

    def __init__(self, run_dir: Path, run_id: int):
        self.run_dir, self.run_id = run_dir, run_id
        self.file = open(run_dir / "engine.log", "ab")

    def line(self, message: str) -> None:
        self.file.write(f"--- slurm {time.strftime('%Y-%m-%d %H:%M:%S')}: {message}\n".encode())
        self.file.flush()

    def event(self, message: str, level: str = "info") -> None:
        self.line(message)
        from difftui.engine.store.spool import SpoolSink
        try:
            with SpoolSink(self.run_dir, self.run_id, stream=WRAPPER_STREAM) as sink:
                sink.add_event(self.run_id, level, message)
        except OSError as e:
            self.line(f"cannot record this event in the spool ({e})")


def main(task_file: str) -> int:
    terminated: list[int] = []

    def on_term(signum: int, frame: Any) -> None:
        terminated.append(signum)                   # the engines get it too; wait for them to checkpoint

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_term)
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)   # meant for the engines (sbatch --signal without B:)
    try:
        task = json.loads(Path(task_file).read_text())
        member = _member(task, os.environ)
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"difftui slurm-task: {task_file}: {e}", file=sys.stderr, flush=True)
        return 2
    run_id, run_dir = int(member["run_id"]), Path(member["run_dir"])
    key = job_key(os.environ)
    log = _Log(run_dir, run_id)
    env = dict(os.environ)
    env.update({str(k): str(v) for k, v in (task.get("env") or {}).items()})
    env[SLURM_TASK_ENV] = "1"
    env.setdefault("OMP_NUM_THREADS", env.get("DIFFTUI_CPU_THREADS", "1"))
    from difftui.engine.launch.slurm import client
    try:
        env["MASTER_ADDR"] = client.hostnames(env.get("SLURM_JOB_NODELIST", ""))[0]
    except (client.SlurmError, IndexError):
        env["MASTER_ADDR"] = socket.gethostname()
    env["MASTER_PORT"] = str(slurm_port(env.get("SLURM_JOB_ID", "0")))
    restarts = env.get("SLURM_RESTART_COUNT", "0")
    argv = engine_argv(run_id, str(run_dir))
    log.event(f"job {key} started on {env.get('SLURM_JOB_NODELIST', socket.gethostname())} "
              f"({env.get('SLURM_NTASKS', '1')} task(s); start {int(restarts) + 1})")
    log.line(" ".join(argv))
    with open(os.devnull, "rb") as devnull:
        proc = subprocess.Popen(argv, stdin=devnull, stdout=log.file, stderr=subprocess.STDOUT, cwd=run_dir, env=env)
    rc = proc.wait()
    retries = _read_retries(run_dir)
    decision = decide(rc, terminated=bool(terminated), retries=retries, max_retries=int(task.get("max_retries", 0)))
    level = {"done": "info", "slurm": "warning", "requeue": "warning"}.get(decision.action, "error")
    log.event(f"job {key}: {decision.message}", level)
    if decision.action == "requeue":
        if decision.counts:
            atomic_write_text(_retries_path(run_dir), str(retries + 1))
        try:
            client.requeue(key)
        except client.SlurmError as e:
            log.event(f"job {key}: could not requeue ({e})", "error")
            return 1
        return 0
    return 0 if decision.action == "done" else 1
