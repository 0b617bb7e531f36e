"""What must hold before a run or a sweep is submitted to Slurm (issue 17 item 7), checked before anything is created;
each failure is one line, as the local launch checks (engine/launch/checks.py).

    sbatch          on PATH (else this machine cannot submit)
    partition       one the cluster has (sinfo); without --partition, the cluster must have a default one
    GPUs            --gpus-per-node only on a partition whose nodes have GPUs (sinfo's GRES)
    time limit      longer than one checkpoint interval (recipe.snapshot_every steps) plus the warning before the end
                    (signal_s), at the speed earlier runs of the same network and data measured (engine/sweeps/
                    estimate.py; scaled by the job's processes, so only a limit that is too short even then is
                    refused); not checked, with a warning, when no earlier run measured it
    shared folder   the runs folder must be on a filesystem the nodes see. Decided by its filesystem type (the mount
                    that holds it, /proc/self/mounts): nfs, lustre, gpfs, beegfs, cephfs, cifs, glusterfs ... are
                    shared; anything else (ext4, xfs, tmpfs, overlay ...) and anything under /tmp is not. Not shared
                    is refused, except on a one-node cluster whose node is this machine (a warning), or when the
                    profile says `shared_fs: true` (the user knows better, e.g. a disk this host exports)
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from difftui.engine.launch.checks import LaunchReport
from difftui.engine.launch.slurm import client
from difftui.engine.launch.slurm.options import SlurmOptions, format_time

__all__ = ["slurm_checks", "check_submission", "filesystem_type", "SHARED_FILESYSTEMS", "shared_folder_problem"]

SHARED_FILESYSTEMS = frozenset({
    "nfs", "nfs4", "lustre", "gpfs", "beegfs", "ceph", "cephfs", "fuse.cephfs", "cifs", "smb3", "smbfs",
    "glusterfs", "fuse.glusterfs", "panfs", "wekafs", "afs", "orangefs", "pvfs2", "fuse.juicefs", "fuse.sshfs",
    "9p", "virtiofs", "vast", "fuse.weka",
})


def _unescape(field: str) -> str:
    """/proc/mounts writes a space as \\040 (and tab, newline, backslash likewise)."""
    return (field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\"))


def filesystem_type(path: str | os.PathLike[str], mounts: str | None = None) -> str:
    """The type of the filesystem that holds `path` (the longest mount point above it), e.g. "ext4", "nfs4"."""
    real = os.path.realpath(path)
    if mounts is None:
        try:
            mounts = Path("/proc/self/mounts").read_text()
        except OSError:
            return "unknown"
    best, kind = "", "unknown"
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = _unescape(fields[1])
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind


def _under_tmp(path: str) -> bool:
    real = os.path.realpath(path)
    return real == "/tmp" or real.startswith("/tmp/")


def shared_folder_problem(folder: str | os.PathLike[str], nodes: tuple[str, ...], options: SlurmOptions,
                          *, mounts: str | None = None, host: str | None = None) -> tuple[str | None, str | None]:
    """(error, warning) about the runs folder being seen by the job's `nodes` (the module docstring's rule)."""
    folder = os.fspath(folder)
    if options.shared_fs:
        return None, None
    kind = filesystem_type(folder, mounts)
    tmp = _under_tmp(folder)
    if kind in SHARED_FILESYSTEMS and not tmp:
        return None, None
    where = "under /tmp" if tmp else f"on {kind}, a filesystem of this machine"
    host = host or socket.gethostname()
    short = host.split(".", 1)[0]
    if nodes and all(n.split(".", 1)[0] == short for n in nodes):
        return None, (f"the runs folder {folder} is {where}: fine on this one-node cluster whose node is this "
                      f"machine, but nodes elsewhere would not see it")
    return (f"the runs folder {folder} is {where}, which the compute nodes ({', '.join(nodes[:4]) or 'unknown'}"
            f"{' ...' if len(nodes) > 4 else ''}) do not see: put runs.db on a shared filesystem (nfs, lustre, "
            f"gpfs, beegfs ...), or set shared_fs: true in the Slurm profile if they do see it"), None


def _time_problem(config: Any, options: SlurmOptions, store: Any) -> tuple[str | None, str | None]:
    """(error, warning) about the time limit against one checkpoint interval at the measured speed."""
    if options.time_s is None or store is None:
        return None, None
    from difftui.engine.sweeps.estimate import measured_throughput
    rate = measured_throughput(store, config, options.device)
    r = config.recipe
    steps = min(r.snapshot_every, r.total_steps)
    if rate.img_per_s is None:
        return None, (f"--time {options.time} not checked against the checkpoint interval ({steps:,} steps): "
                      f"{rate.describe()}")
    ips = rate.img_per_s * options.processes                     # as if it scaled perfectly: refuse only the sure
    need = steps * r.batch_size / ips + options.signal_s
    if options.time_s >= need:
        return None, None
    return (f"--time {options.time} is shorter than one checkpoint interval: {steps:,} steps (recipe.snapshot_every) "
            f"of batch {r.batch_size} at {ips:,.0f} img/s ({rate.what}, {options.processes} process(es)) take "
            f"{format_time(need - options.signal_s)}, and the engine checkpoints {options.signal_s} s before the "
            f"end: ask for at least {format_time(need)}, or lower recipe.snapshot_every"), None


def slurm_checks(config: Any, options: SlurmOptions, *, runs_folder: str | os.PathLike[str],
                 store: Any = None) -> LaunchReport:
    """The module docstring's checks for a run (or a sweep's first member) about to be submitted; `store` (a Store
    or None) gives the measured speed."""
    errors: list[str] = []
    warnings: list[str] = []
    if not client.available("sbatch"):
        return LaunchReport(("no sbatch on PATH: this machine cannot submit Slurm jobs (run difftui on the cluster's "
                             "login node, or without --slurm)",), (), "Slurm")
    try:
        partitions = client.sinfo()
    except client.SlurmError as e:
        return LaunchReport((f"cannot ask Slurm for its partitions ({e})",), (), "Slurm")
    if options.partition is not None:
        partition = partitions.get(options.partition)
        if partition is None:
            errors.append(f"--partition {options.partition}: no such partition (sinfo: "
                          f"{', '.join(sorted(partitions)) or 'none'})")
    else:
        partition = next((p for p in partitions.values() if p.default), None)
        if partition is None:
            errors.append(f"this cluster has no default partition: name one with --partition (sinfo: "
                          f"{', '.join(sorted(partitions)) or 'none'})")
    if partition is not None and options.gpus_per_node and not partition.has_gpus:
        errors.append(f"--gpus-per-node {options.gpus_per_node}: partition {partition.name} has no GPUs (sinfo "
                      f"GRES: {', '.join(partition.gres) or 'none'}); drop it or pick a GPU partition")
    if config.device.startswith("cuda") and not options.gpus_per_node:
        errors.append(f"device {config.device} on Slurm needs --gpus-per-node (the job would get no GPU)")
    error, warning = _time_problem(config, options, store)
    errors += [error] if error else []
    warnings += [warning] if warning else []
    nodes = partition.nodes if partition is not None else ()
    error, warning = shared_folder_problem(runs_folder, nodes, options)
    errors += [error] if error else []
    warnings += [warning] if warning else []
    where = f"Slurm, {options.describe()}" + (f" (nodes {', '.join(nodes[:4])})" if nodes else "")
    return LaunchReport(tuple(errors), tuple(warnings), where)


def check_submission(db_path: str | os.PathLike[str], config: Any, options: SlurmOptions, *,
                     check_data: Any = "default") -> LaunchReport:
    """Everything a run (or a sweep's first member) of `db_path` must pass before it is submitted: the launch checks
    that hold here (the data, with `check_data` as launch_checks takes it; not this machine's devices) and Slurm's
    (above). What the CLI, the review screen and the sweeps all ask."""
    from difftui.engine.launch.checks import launch_checks
    from difftui.engine.store import Store
    from difftui.engine.store.layout import runs_root
    report = (launch_checks(config, device_here=False) if check_data == "default"
              else launch_checks(config, device_here=False, check_data=check_data))
    if not report.ok:
        return report
    folder = runs_root(Path(db_path)).parent
    if Path(db_path).exists():
        with Store(db_path, create=False) as store:
            slurm = slurm_checks(config, options, runs_folder=folder, store=store)
    else:
        slurm = slurm_checks(config, options, runs_folder=folder)
    return LaunchReport(slurm.errors, (*report.warnings, *slurm.warnings), slurm.device)
