"""Slurm's commands, called from argv lists, and their answers parsed: the one place difftui runs sbatch, squeue,
sacct, sinfo, scontrol and scancel.

Every call has a timeout and turns a failure into `SlurmError` with one line (the command and what it said). Output
formats are asked explicitly (`-o` fields joined by '|', `--parsable`), never scraped from Slurm's default tables.
"""

from __future__ import annotations

import getpass
import shutil
import subprocess
import time
from dataclasses import dataclass

__all__ = ["SlurmError", "JobInfo", "Partition", "available", "sbatch", "squeue", "squeue_job", "sacct", "sinfo",
           "scancel",
           "requeue", "release", "hostnames", "parse_squeue", "parse_sinfo", "parse_sacct", "parse_slurm_time",
           "TIMEOUT_S"]

TIMEOUT_S = 30.0
_SQUEUE_FIELDS = "%i|%A|%F|%K|%T|%r|%N|%S|%V"       # key, job id, array job, array index, state, reason, nodes,
                                                    # start, submit


class SlurmError(RuntimeError):
    """A Slurm command failed or is missing; one line."""


@dataclass(frozen=True)
class JobInfo:
    """One job, or one task of a job array, as squeue / sacct report it."""
    key: str                                        # "123" or "120_4": what scancel and scontrol accept
    job_id: str                                     # the task's own job id
    state: str                                      # PENDING, RUNNING, COMPLETED, ... (Slurm's base state)
    reason: str = ""                                # why it pends (Priority, Resources, JobHeldUser ...), "" if none
    nodes: str = ""                                 # the node list while it runs
    array_job: str | None = None
    array_index: int | None = None
    start: float | None = None                      # when it started (or is expected to), epoch seconds
    submit: float | None = None


@dataclass(frozen=True)
class Partition:
    name: str
    gres: tuple[str, ...]                           # e.g. ("gpu:a100:4",); () for a CPU partition
    nodes: tuple[str, ...]                          # node names (hostnames of the nodes)
    default: bool
    up: bool

    @property
    def has_gpus(self) -> bool:
        return any(g.split(":", 1)[0] == "gpu" for g in self.gres)


def available(command: str = "sbatch") -> bool:
    return shutil.which(command) is not None


def _run(argv: list[str], *, timeout: float = TIMEOUT_S) -> str:
    if shutil.which(argv[0]) is None:
        raise SlurmError(f"no {argv[0]} on PATH: this machine cannot reach a Slurm cluster (run difftui on the "
                         f"cluster's login node)")
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise SlurmError(f"{argv[0]} did not answer within {timeout:g} s (is slurmctld up?)") from None
    except OSError as e:
        raise SlurmError(f"{argv[0]}: {e.strerror or e}") from None
    if done.returncode != 0:
        said = " ".join((done.stderr or done.stdout or "").split()) or f"exit code {done.returncode}"
        raise SlurmError(f"{argv[0]} failed: {said}")
    return done.stdout


def parse_slurm_time(text: str) -> float | None:
    """squeue's times (2026-12-05T13:59:16, local time) as epoch seconds; None for N/A, Unknown, NONE."""
    text = text.strip()
    if not text or text in ("N/A", "Unknown", "NONE", "None", "(null)"):
        return None
    try:
        return time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None


def _base_state(state: str) -> str:
    """'CANCELLED by 0' -> 'CANCELLED'; 'RUNNING+' -> 'RUNNING'."""
    return state.split()[0].rstrip("+") if state.split() else ""


#----------------------------------------------------------------------------
# Submitting.

def sbatch(args: list[str], script: str) -> str:
    """Submit `script` with sbatch options `args` (argv elements); returns the job id."""
    out = _run(["sbatch", "--parsable", *args, script])
    job = out.strip().split(";", 1)[0]
    if not job.isdigit():
        raise SlurmError(f"sbatch answered {out.strip()!r}, not a job id")
    return job


#----------------------------------------------------------------------------
# Jobs.

def parse_squeue(text: str) -> dict[str, JobInfo]:
    """squeue -h -r -o _SQUEUE_FIELDS -> {key: JobInfo}."""
    jobs = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 9:
            continue
        key, job_id, array_job, index, state, reason, nodes, start, submit = (p.strip() for p in parts)
        array = index.isdigit() and "_" in key
        jobs[key] = JobInfo(key=key, job_id=job_id, state=_base_state(state),
                            reason="" if reason in ("None", "(null)") else reason, nodes=nodes,
                            array_job=array_job if array else None, array_index=int(index) if array else None,
                            start=parse_slurm_time(start), submit=parse_slurm_time(submit))
    return jobs


def squeue(user: str | None = None) -> dict[str, JobInfo]:
    """Every job of `user` (default: this user) that slurmctld still holds, ended ones included (for MinJobAge),
    one line per array task. One call, whatever the number of runs."""
    out = _run(["squeue", "--noheader", "--array", "--states=all", f"--user={user or getpass.getuser()}",
                f"--format={_SQUEUE_FIELDS}"])
    return parse_squeue(out)


def squeue_job(key: str) -> JobInfo | None:
    """One job by its key, whoever submitted it (`squeue` of this user's jobs did not list it); None when
    slurmctld does not know it (any more)."""
    try:
        out = _run(["squeue", "--noheader", "--array", "--states=all", f"--jobs={key}", f"--format={_SQUEUE_FIELDS}"])
    except SlurmError as e:
        if "invalid job id" in str(e).lower():
            return None
        raise
    return parse_squeue(out).get(key)


def parse_sacct(text: str) -> dict[str, JobInfo]:
    """sacct -n -X -P -o JobID,JobIDRaw,State,NodeList -> {key: JobInfo} (the allocation line of each job)."""
    jobs = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 4 or not parts[0]:
            continue
        key, raw, state, nodes = parts
        array_job, _, index = key.partition("_")
        array = index.isdigit()
        jobs[key] = JobInfo(key=key, job_id=raw, state=_base_state(state), nodes=nodes,
                            array_job=array_job if array else None, array_index=int(index) if array else None)
    return jobs


def sacct(keys: list[str]) -> dict[str, JobInfo] | None:
    """The accounting record of jobs slurmctld has forgotten; None where the cluster keeps no accounting."""
    if not keys or shutil.which("sacct") is None:
        return None
    try:
        out = _run(["sacct", "--noheader", "--allocations", "--parsable2", "--format=JobID,JobIDRaw,State,NodeList",
                    f"--jobs={','.join(keys)}"])
    except SlurmError as e:
        if "accounting storage is disabled" in str(e).lower() or "slurmdbd" in str(e).lower():
            return None
        raise
    return parse_sacct(out)


#----------------------------------------------------------------------------
# The cluster.

def parse_sinfo(text: str) -> dict[str, Partition]:
    """sinfo -h -o '%R|%G|%a|%N' (one line per partition and node state) -> {name: Partition}."""
    parts: dict[str, dict] = {}
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) != 4:
            continue
        name, gres, avail, nodes = (f.strip() for f in fields)
        default = name.endswith("*")
        name = name.rstrip("*")
        p = parts.setdefault(name, {"gres": set(), "nodes": [], "default": default, "up": False})
        p["default"] = p["default"] or default
        p["up"] = p["up"] or avail == "up"
        p["gres"].update(g for g in gres.split(",") if g and g != "(null)")
        if nodes and nodes != "(null)":
            p["nodes"].append(nodes)
    return {name: Partition(name, tuple(sorted(p["gres"])), tuple(p["nodes"]), p["default"], p["up"])
            for name, p in parts.items()}


def sinfo() -> dict[str, Partition]:
    """The cluster's partitions (the default one marked), with their GRES and node lists."""
    partitions = parse_sinfo(_run(["sinfo", "--noheader", "--format=%P|%G|%a|%N"]))
    for name, p in partitions.items():             # node lists as hostnames (node[01-02] -> node01, node02)
        names = tuple(h for spec in p.nodes for h in hostnames(spec))
        partitions[name] = Partition(p.name, p.gres, names, p.default, p.up)
    return partitions


def hostnames(nodelist: str) -> list[str]:
    """Slurm's compact node list as hostnames (scontrol show hostnames)."""
    if not nodelist:
        return []
    return _run(["scontrol", "show", "hostnames", nodelist]).split()


#----------------------------------------------------------------------------
# Acting on jobs.

def scancel(key: str, *, signal: str | None = None) -> None:
    """Cancel job (or array task) `key`; with `signal`, send it to the job's steps instead."""
    _run(["scancel", *([f"--signal={signal}"] if signal else []), key])


def requeue(key: str) -> None:
    """`scontrol requeue`: the job goes back to the queue (its processes get SIGTERM first)."""
    _run(["scontrol", "requeue", key])


def release(key: str) -> None:
    """Make a pending job eligible now (`scontrol update StartTime=now`): Slurm holds a requeued job back for about
    two minutes (reason BeginTime)."""
    _run(["scontrol", "update", f"JobId={key}", "StartTime=now"])

