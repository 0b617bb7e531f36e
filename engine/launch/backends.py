"""The launch backends: how an engine process is spawned for a `LaunchPlan` (DESIGN.md, process model).

    local     python -m difftui.engine train RUN_ID --db PATH                                   one GPU or the CPU
    torchrun  python -m torch.distributed.run --standalone --nproc-per-node K -m difftui.engine train RUN_ID --db PATH
              (--nnodes N --rdzv-endpoint HOST:PORT instead of --standalone for several machines)

Every backend starts the engine from an argv list (never a shell string), stdin from /dev/null, stdout and stderr
appended to runs/<id>/engine.log, in a new session (closing the terminal or the TUI does not stop the run), with the
stop signals blocked until the engine's handlers are in place (launch/signals.py). A backend is a `Backend`:
`argv` and `env` for the plan, and `spawn`; `backend_for(plan)` picks it.

    slurm     sbatch job.sh (one job; a sweep's members: one job array, sweeps/slurm.py), whose wrapper runs
              srun python -m difftui.engine train RUN_ID --spool RUN_DIR    (engine/launch/slurm/)
              `submit` instead of `spawn`: no process here; the run's liveness is its job's (launch/liveness.py)
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from difftui.engine.launch import signals
from difftui.engine.launch.plan import LaunchPlan

__all__ = ["Backend", "LocalBackend", "TorchrunBackend", "SlurmBackend", "SlurmJob", "backend_for", "engine_argv",
           "engine_env",
           "spool_engine_tail"]


def _engine_tail(db_path: str | os.PathLike[str], run_id: int) -> list[str]:
    return ["-m", "difftui.engine", "train", str(run_id), "--db", str(Path(db_path).resolve())]


def spool_engine_tail(run_id: int, run_dir: str | os.PathLike[str]) -> list[str]:
    """The engine's arguments in spool mode (after the interpreter or torchrun): it never opens runs.db and writes
    records to RUN_DIR/spool/ (what a backend for another machine starts, e.g. Slurm)."""
    return ["-m", "difftui.engine", "train", str(run_id), "--spool", str(Path(run_dir).resolve())]


class Backend(Protocol):
    name: str
    sink: str                                       # where its engines write: "db" (runs.db) or "spool" (files)

    def argv(self, db_path: str | os.PathLike[str], run_id: int, plan: LaunchPlan) -> list[str]: ...

    def env(self, plan: LaunchPlan) -> dict[str, str]: ...

    def spawn(self, db_path: str | os.PathLike[str], run_id: int, plan: LaunchPlan, folder: Path
              ) -> subprocess.Popen: ...


class LocalBackend:
    """One engine process on this machine (one GPU or the CPU). It writes runs.db directly: SQLite in WAL mode is
    safe for processes on one host, and every reader (ls, show, the sweep supervisor, the TUI) sees its rows at once
    without an ingest (README, "On a Slurm cluster")."""
    name = "local"
    sink = "db"

    def argv(self, db_path: str | os.PathLike[str], run_id: int, plan: LaunchPlan) -> list[str]:
        return [sys.executable, *_engine_tail(db_path, run_id)]

    def env(self, plan: LaunchPlan) -> dict[str, str]:
        env = dict(os.environ)
        env.update(plan.env)
        if plan.gpus is not None:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, plan.gpus))
        return env

    def spawn(self, db_path: str | os.PathLike[str], run_id: int, plan: LaunchPlan, folder: Path
              ) -> subprocess.Popen:
        """Start the engine in `folder` (runs/<id>/), its output appended to engine.log after a launch line."""
        argv = self.argv(db_path, run_id, plan)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "engine.log", "ab") as log, open(os.devnull, "rb") as devnull:
            log.write(f"--- launch {time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(argv)}\n".encode())
            log.flush()
            with signals.blocked():                 # delivered once the engine's handlers are in place
                return subprocess.Popen(argv, stdin=devnull, stdout=log, stderr=subprocess.STDOUT, cwd=folder,
                                        env=self.env(plan), start_new_session=True, close_fds=True)


class TorchrunBackend(LocalBackend):
    """K processes per node through torchrun (DDP; gloo on the CPU), one node or several."""
    name = "torchrun"

    def argv(self, db_path: str | os.PathLike[str], run_id: int, plan: LaunchPlan) -> list[str]:
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(plan.nproc_per_node),
                    "--max-restarts", "0"]
        if plan.nnodes == 1 and not plan.rdzv_endpoint:
            torchrun.append("--standalone")
        else:
            torchrun += ["--nnodes", str(plan.nnodes), "--rdzv-backend", "c10d", "--rdzv-endpoint",
                         plan.rdzv_endpoint, "--rdzv-id", f"difftui-run-{run_id}"]
        return [*torchrun, *_engine_tail(db_path, run_id)]

    def env(self, plan: LaunchPlan) -> dict[str, str]:
        env = super().env(plan)
        # torchrun sets OMP_NUM_THREADS=1 with a warning; the engine sets its own thread count per rank.
        env.setdefault("OMP_NUM_THREADS", "1")
        return env


class SlurmBackend:
    """One Slurm job (sbatch; its wrapper runs one srun task per GPU, engine/launch/slurm/task.py). Its engines run
    on compute nodes in spool mode: they never open runs.db, and a front end ingests their records."""
    name = "slurm"
    sink = "spool"

    def submit(self, run: dict, plan: LaunchPlan) -> "SlurmJob":
        from difftui.engine.launch.slurm.submit import submit_run
        job, submitted = submit_run(run, plan.slurm_options(), env=plan.env)
        return SlurmJob(job, submitted)


@dataclass(frozen=True)
class SlurmJob:
    """What `start_run` gives for a run submitted to Slurm (a local backend gives its process)."""
    key: str                                        # the job id ("123"; "120_4" for a sweep's array task)
    submitted: float
    pid = None                                      # no process on this machine

    def poll(self) -> None:
        return None                                 # its end is the run's status, not a local exit code


def backend_for(plan: LaunchPlan) -> Backend | SlurmBackend:
    """Slurm for a plan with Slurm options, torchrun for a distributed plan, else one local process."""
    if plan.slurm is not None:
        return SlurmBackend()
    return TorchrunBackend() if plan.distributed else LocalBackend()


def engine_argv(db_path: str | os.PathLike[str], run_id: int, plan: LaunchPlan | None = None) -> list[str]:
    """The engine's command line for `plan` (its backend's)."""
    plan = plan or LaunchPlan()
    return backend_for(plan).argv(db_path, run_id, plan)


def engine_env(plan: LaunchPlan) -> dict[str, str]:
    """The engine's environment for `plan` (its backend's)."""
    return backend_for(plan).env(plan)
