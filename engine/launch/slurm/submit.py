"""Submitting to Slurm: a run as one job, a sweep's members as one job array; the job's files and sbatch options.

    <folder>/slurm/<stem>.json   what the job runs: its member runs (id and folder; an array task picks its own by
                                 SLURM_ARRAY_TASK_ID), the engines' environment, how often a crash is requeued
    <folder>/slurm/<stem>.sh     the batch script sbatch needs. It does one thing: exec the task wrapper
                                 (`python -m difftui.engine slurm-task <stem>.json`, engine/launch/slurm/task.py),
                                 whose two paths are checked and shlex-quoted; nothing else in it varies
    <folder>/slurm/%j.out        Slurm's own output of the job (the engines write runs/<id>/engine.log)

For a run, <folder> is runs/<id>/ and <stem> is "job"; for a sweep it is sweeps/<id>/ and "array-<k>" (its k-th
array). Every sbatch option is one argv element (`--key=value`): the typed request (options.py), then the job's
mechanics: `--requeue`, `--signal=USR1@N` (the time-limit warning: the engine checkpoints and the job requeues
itself), `--array=0-(N-1)%K` for a sweep (Slurm's own throttle: K members at once), the job name, its folder and its
output file.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from difftui.engine.atomic import atomic_write_text
from difftui.engine.launch.slurm import client, jobs
from difftui.engine.launch.slurm.options import SlurmOptions

__all__ = ["batch_script", "sbatch_args", "write_job", "submit_run", "submit_array", "task_record", "ENV_NAME"]

ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
_PRINTABLE = re.compile(r"[\x20-\x7e]*")


def _absolute(path: Path | str, what: str) -> str:
    text = os.fspath(path)
    if not os.path.isabs(text) or "\n" in text or "\0" in text:
        raise ValueError(f"{what} {text!r}: expected an absolute path on one line")
    return text


def batch_script(task_file: Path | str, python: str | None = None) -> str:
    """The batch script: exec the task wrapper on `task_file` (both paths checked, then shlex-quoted)."""
    python = _absolute(python or sys.executable, "python")
    task = _absolute(task_file, "task file")
    return ("#!/bin/sh\n"
            "# Written by difftui. Slurm runs this; it starts difftui's task wrapper, which runs the engines with srun\n"
            "# and requeues the job when an engine crashed or checkpointed before the time limit.\n"
            f"exec {shlex.quote(python)} -m difftui.engine slurm-task {shlex.quote(task)}\n")


def _pattern(path: Path | str) -> str:
    """A path in an sbatch filename option: '%' is Slurm's pattern character, written '%%'."""
    return os.fspath(path).replace("%", "%%")


def sbatch_args(options: SlurmOptions, *, name: str, folder: Path, output: str,
                array: tuple[int, int | None] | None = None) -> list[str]:
    """sbatch's options for a job of difftui (argv elements): the request, then the mechanics. `array` is
    (members, throttle): `--array=0-(members-1)%throttle`."""
    args = options.sbatch_args()
    args += [f"--job-name={name}", f"--chdir={_absolute(folder, 'job folder')}",
             f"--output={_pattern(Path(folder) / 'slurm')}/{output}", "--open-mode=append", "--requeue",
             f"--signal=USR1@{options.signal_s}"]
    if array is not None:
        count, throttle = array
        spec = f"0-{count - 1}" + (f"%{throttle}" if throttle and throttle < count else "")
        args.append(f"--array={spec}")
    return args


def task_record(members: list[dict[str, Any]], *, array: bool, options: SlurmOptions,
                env: dict[str, str] | None = None) -> dict[str, Any]:
    """What the task wrapper reads: the runs (index -> run id and folder), the engines' environment, retries."""
    env = dict(env or {})
    if options.cpus_per_task and "DIFFTUI_CPU_THREADS" not in env:
        env["DIFFTUI_CPU_THREADS"] = str(options.cpus_per_task)
    for key, value in env.items():
        if not ENV_NAME.fullmatch(key) or not _PRINTABLE.fullmatch(str(value)):
            raise ValueError(f"engine environment {key}={value!r}: expected NAME=printable text")
    return {"array": array, "members": [{"index": i, "run_id": int(m["id"]), "run_dir": _absolute(m["run_dir"],
                                                                                                   "run folder")}
                                        for i, m in enumerate(members)],
            "max_retries": options.max_retries, "env": env}


def _fresh_retries(members: list[dict[str, Any]]) -> None:
    """A submission (new, resumed, retried) gives each run its whole max_retries again (task.py counts them)."""
    for m in members:
        try:
            (Path(m["run_dir"]) / "slurm" / "retries").unlink()
        except FileNotFoundError:
            pass


def write_job(folder: Path, stem: str, task: dict[str, Any]) -> Path:
    """<folder>/slurm/<stem>.json and <stem>.sh (atomic writes); returns the script's path."""
    slurm = Path(folder) / "slurm"
    slurm.mkdir(parents=True, exist_ok=True)
    task_file = slurm / f"{stem}.json"
    atomic_write_text(task_file, json.dumps(task, indent=1))
    script = slurm / f"{stem}.sh"
    atomic_write_text(script, batch_script(task_file))
    os.chmod(script, 0o755)
    return script


def submit_run(run: dict[str, Any], options: SlurmOptions, env: dict[str, str] | None = None) -> tuple[str, float]:
    """Submit one run (its row) as a job; returns (job id, submission time)."""
    folder = Path(run["run_dir"])
    script = write_job(folder, "job", task_record([run], array=False, options=options, env=env))
    _fresh_retries([run])
    args = sbatch_args(options, name=f"difftui-run-{run['id']}", folder=folder, output="%j.out")
    submitted = time.time()
    job = client.sbatch(args, str(script))
    jobs.forget()                                   # the next look at the queue sees it
    return job, submitted


def submit_array(sweep: dict[str, Any], members: list[dict[str, Any]], options: SlurmOptions, throttle: int | None,
                 env: dict[str, str] | None = None) -> tuple[str, float]:
    """Submit `members` (run rows, in index order) as one job array of the sweep, at most `throttle` at once;
    returns (array job id, submission time). Task i runs members[i]."""
    folder = Path(sweep["sweep_dir"])
    (folder / "slurm").mkdir(parents=True, exist_ok=True)
    k = 1 + sum(1 for p in (folder / "slurm").glob("array-*.sh"))
    script = write_job(folder, f"array-{k}", task_record(members, array=True, options=options, env=env))
    _fresh_retries(members)
    args = sbatch_args(options, name=f"difftui-sweep-{sweep['id']}", folder=folder, output="%A_%a.out",
                       array=(len(members), throttle))
    submitted = time.time()
    job = client.sbatch(args, str(script))
    jobs.forget()
    return job, submitted
