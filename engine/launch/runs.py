"""Starting, resuming and stopping engine processes: the launch backends behind one function (DESIGN.md, process model).

The TUI, the CLI and the sweep scheduler never train in their own process. They create a `runs` row and call
`start_run`, which spawns the engine with an argv list (never a shell string), stdin from /dev/null, stdout and stderr
appended to runs/<id>/engine.log, in a new session so that closing the terminal or the TUI does not stop the run:

    local     python -m difftui.engine train RUN_ID --db PATH                                   one GPU or the CPU
    torchrun  python -m torch.distributed.run --standalone --nproc-per-node K -m difftui.engine train RUN_ID --db PATH
              (--nnodes N --rdzv-endpoint HOST:PORT instead of --standalone for several machines)

Ownership: the engine (rank 0) holds runs/<id>/lock for its whole life (difftui.engine.launch.lock). Before it has
taken the lock, `start_run` claims the run in one database transaction (status 'queued', the launched pid and its
start time), so two launchers racing for one run give one engine and one refusal (`Owned`, one line), whichever path
started them (resume, sweep, TUI, two terminals at once).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from difftui.engine.atomic import atomic_write_text
from difftui.engine.config.catalog import config_to_dict
from difftui.engine.config.model import RunConfig
from difftui.engine.launch import signals
from difftui.engine.launch.lock import Owned, holder, pid_alive, process_start_time
from difftui.engine.store import ACTIVE_STATUSES, Store, StoreError, run_lock_path

__all__ = ["LaunchPlan", "plan_from_options", "Owned", "StepsExhausted", "create_run", "engine_argv", "start_run",
           "launch", "resume", "request_stop", "force_stop", "run_dir", "STOP_GRACE_S"]

STOP_GRACE_S = 30.0                                 # `stop --force`: SIGTERM, then SIGKILL after this long


class StepsExhausted(RuntimeError):
    """`resume` refused: the run has no step left to train, or the new end asked for is behind it. The message is
    the CLI's line; `step`, `total_steps` and `asked` let another front end (the TUI asks for a new end) say its own."""

    def __init__(self, message: str, *, run_id: int, step: int, total_steps: int | None,
                 asked: int | None = None) -> None:
        super().__init__(message)
        self.run_id, self.step, self.total_steps, self.asked = run_id, step, total_steps, asked


@dataclass(frozen=True)
class LaunchPlan:
    """How a run's engine is started; stored with the run (runs.launch) so that a resume starts it the same way.

    `gpus` become CUDA_VISIBLE_DEVICES (inside the engine they are cuda:0..K-1); `nproc_per_node` > 1 or `nnodes` > 1
    goes through torchrun (DDP; gloo on the CPU). `env` adds environment variables (e.g. a sweep member's thread
    count)."""
    nproc_per_node: int = 1
    gpus: tuple[int, ...] | None = None
    nnodes: int = 1
    rdzv_endpoint: str | None = None
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.nproc_per_node < 1:
            raise ValueError(f"--nproc-per-node: expected >= 1, got {self.nproc_per_node}")
        if self.nnodes < 1:
            raise ValueError(f"--nnodes: expected >= 1, got {self.nnodes}")
        if self.nnodes > 1 and not self.rdzv_endpoint:
            raise ValueError("--nnodes > 1 needs --rdzv-endpoint HOST:PORT (the machine that runs rank 0)")
        if self.gpus is not None and len(self.gpus) != len(set(self.gpus)):
            raise ValueError(f"--gpus: a GPU is named twice ({','.join(map(str, self.gpus))})")

    @property
    def distributed(self) -> bool:
        return self.nproc_per_node > 1 or self.nnodes > 1

    def to_json(self) -> str:
        data = asdict(self)
        data["gpus"] = list(self.gpus) if self.gpus is not None else None
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str | None) -> "LaunchPlan":
        if not text:
            return cls()
        data = json.loads(text)
        gpus = data.get("gpus")
        return cls(nproc_per_node=int(data.get("nproc_per_node", 1)), gpus=tuple(gpus) if gpus is not None else None,
                   nnodes=int(data.get("nnodes", 1)), rdzv_endpoint=data.get("rdzv_endpoint"),
                   env=dict(data.get("env") or {}))

    def describe(self) -> str:
        parts = []
        if self.gpus is not None:
            parts.append(f"GPUs {','.join(map(str, self.gpus))}")
        if self.distributed:
            parts.append(f"{self.nproc_per_node} process(es) per node" + (f" x {self.nnodes} nodes" if self.nnodes > 1
                                                                         else ""))
        return ", ".join(parts) or "one process"


def plan_from_options(gpus: str | None = None, nproc_per_node: int | None = None, nnodes: int = 1,
                      rdzv_endpoint: str | None = None) -> LaunchPlan:
    """`--gpus 0,1` / `--nproc-per-node K` / `--nnodes N` / `--rdzv-endpoint HOST:PORT` (or the review screen's GPUs
    field) as a LaunchPlan; ValueError with one line for a bad value. One process per named GPU."""
    ids = None
    if gpus is not None and gpus.strip():
        try:
            ids = tuple(int(g) for g in gpus.split(",") if g.strip())
        except ValueError:
            raise ValueError(f"--gpus {gpus!r}: expected GPU numbers separated by commas, e.g. 0,1") from None
        if not ids:
            raise ValueError(f"--gpus {gpus!r}: no GPU named")
    nproc = nproc_per_node or (len(ids) if ids else 1)
    if ids and nproc != len(ids):
        raise ValueError(f"--gpus names {len(ids)} GPU(s) but --nproc-per-node is {nproc}: one process per GPU")
    return LaunchPlan(nproc_per_node=nproc, gpus=ids, nnodes=nnodes, rdzv_endpoint=rdzv_endpoint)


def run_dir(store: Store, run_id: int) -> Path:
    run = store.get_run(run_id)
    if run is None:
        raise StoreError(f"{store.path}: no run {run_id}")
    return Path(run["run_dir"])


def _get(store: Store, run_id: int) -> dict[str, Any]:
    run = store.get_run(run_id)
    if run is None:
        raise StoreError(f"{store.path}: no run {run_id}")
    return run


def create_run(db_path: str | os.PathLike[str], config: RunConfig, *, sweep_id: int | None = None,
               parent_id: int | None = None, plan: LaunchPlan | None = None) -> int:
    """Insert a queued run with its resolved config; write runs/<id>/config.yaml. Returns the run id."""
    data = config_to_dict(config)
    with Store(db_path) as store:
        run_id = store.create_run(data, name=config.name or "", total_steps=config.recipe.total_steps,
                                  device=config.device, sweep_id=sweep_id, parent_id=parent_id)
        name = config.name or f"{config.dataset.name}-{config.backbone.name}-{run_id}"
        store.update_run(run_id, name=name, launch=(plan or LaunchPlan()).to_json())
        folder = run_dir(store, run_id)
    atomic_write_text(folder / "config.yaml", yaml.safe_dump(data, sort_keys=False))
    return run_id


def engine_argv(db_path: str | os.PathLike[str], run_id: int, plan: LaunchPlan | None = None) -> list[str]:
    """The engine's command line: one process, or torchrun for several (the launch backends)."""
    plan = plan or LaunchPlan()
    engine = ["-m", "difftui.engine", "train", str(run_id), "--db", str(Path(db_path).resolve())]
    if not plan.distributed:
        return [sys.executable, *engine]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(plan.nproc_per_node),
                "--max-restarts", "0"]
    if plan.nnodes == 1 and not plan.rdzv_endpoint:
        torchrun.append("--standalone")
    else:
        torchrun += ["--nnodes", str(plan.nnodes), "--rdzv-backend", "c10d", "--rdzv-endpoint", plan.rdzv_endpoint,
                     "--rdzv-id", f"difftui-run-{run_id}"]
    return [*torchrun, *engine]


def engine_env(plan: LaunchPlan) -> dict[str, str]:
    env = dict(os.environ)
    env.update(plan.env)
    if plan.gpus is not None:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, plan.gpus))
    if plan.distributed:
        # torchrun sets OMP_NUM_THREADS=1 with a warning; the engine sets its own thread count per rank.
        env.setdefault("OMP_NUM_THREADS", "1")
    return env


def start_run(db_path: str | os.PathLike[str], run_id: int, plan: LaunchPlan | None = None) -> subprocess.Popen:
    """Start the engine of an existing run (the one function every front end calls).

    Refuses with `Owned` (one line) when the run is alive: its engine holds the lock, or a launcher has just started
    one that has not taken it yet. The check, the spawn and the claim happen in one write transaction, so launchers
    racing for the same run are serialised by SQLite: the first spawns, the others see its claim."""
    with Store(db_path) as store:
        with store.atomic():
            run = _get(store, run_id)
            if store.is_alive(run):
                owner = holder(run_lock_path(run))
                who = owner.describe() if owner else f"starting as pid {run['pid']}"
                raise Owned(f"run {run_id} is already {run['status']} ({who}); stop it first")
            plan = plan or LaunchPlan.from_json(run.get("launch"))
            folder = Path(run["run_dir"])
            folder.mkdir(parents=True, exist_ok=True)
            with open(folder / "engine.log", "ab") as log, open(os.devnull, "rb") as devnull:
                log.write(f"--- launch {time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(engine_argv(db_path, run_id, plan))}"
                          f"\n".encode())
                log.flush()
                with signals.blocked():             # delivered once the engine's handlers are in place
                    proc = subprocess.Popen(engine_argv(db_path, run_id, plan), stdin=devnull, stdout=log,
                                            stderr=subprocess.STDOUT, cwd=folder, env=engine_env(plan),
                                            start_new_session=True, close_fds=True)
            store.db.execute(
                "UPDATE runs SET status = 'queued', pid = ?, pid_start = ?, host = ?, launch = ?, error = NULL,"
                " ended = NULL WHERE id = ?",
                [proc.pid, process_start_time(proc.pid), socket.gethostname(), plan.to_json(), run_id])
    return proc


def launch(db_path: str | os.PathLike[str], config: RunConfig, *, plan: LaunchPlan | None = None,
           sweep_id: int | None = None, parent_id: int | None = None) -> int:
    """Create a run and start its engine; returns the run id (the process runs on after this returns)."""
    run_id = create_run(db_path, config, sweep_id=sweep_id, parent_id=parent_id, plan=plan)
    start_run(db_path, run_id, plan)
    return run_id


def resume(db_path: str | os.PathLike[str], run_id: int, *, total_steps: int | None = None,
           plan: LaunchPlan | None = None) -> subprocess.Popen:
    """Continue a run from its newest loadable checkpoint in a new engine. Refuses a run that is alive (`Owned`).

    `total_steps` (optional) sets a new end, e.g. to train a completed run further; `plan` changes how it is
    launched (e.g. on more GPUs; the data position and the global batch are kept)."""
    with Store(db_path, create=False) as store:
        store.reap_dead_runs()
        run = _get(store, run_id)
        if store.is_alive(run):
            owner = holder(run_lock_path(run))
            raise Owned(f"run {run_id} is still {run['status']} ({owner.describe() if owner else 'starting'}); "
                        f"stop it first")
        if total_steps is not None:
            if total_steps < run["step"]:
                raise StepsExhausted(f"run {run_id} is already at step {run['step']}, past --max-steps {total_steps}",
                                     run_id=run_id, step=run["step"], total_steps=run["total_steps"],
                                     asked=total_steps)
            config = json.loads(run["config"])
            config["recipe"]["total_steps"] = total_steps
            store.update_run(run_id, config=json.dumps(config), total_steps=total_steps)
            atomic_write_text(Path(run["run_dir"]) / "config.yaml", yaml.safe_dump(config, sort_keys=False))
            run = _get(store, run_id)
        if run["status"] == "completed" and run["step"] >= (run["total_steps"] or 0):
            raise StepsExhausted(f"run {run_id} already completed all {run['total_steps']} steps "
                                 f"(resume with a larger --max-steps to train further)",
                                 run_id=run_id, step=run["step"], total_steps=run["total_steps"])
    return start_run(db_path, run_id, plan)


def request_stop(db_path: str | os.PathLike[str], run_id: int) -> None:
    """Ask a live engine to checkpoint and exit; it answers by setting status 'stopped'."""
    with Store(db_path, create=False) as store:
        store.reap_dead_runs()
        run = _get(store, run_id)
        if not store.is_alive(run):
            raise RuntimeError(f"run {run_id} is not running (status {run['status']})")
        store.send_command(run_id, "stop")
        # Only a running engine's status becomes 'stopping' (never overwrite its final status; a queued engine has
        # no heartbeat yet, and takes the command as soon as it owns the run).
        with store.atomic():
            store.db.execute("UPDATE runs SET status = 'stopping' WHERE id = ? AND status = 'running'", [run_id])


def _owner_pid(run: dict[str, Any]) -> int | None:
    owner = holder(run_lock_path(run))
    if owner is not None and owner.pid and owner.host == socket.gethostname():
        return owner.pid
    if run["pid"] and run["host"] == socket.gethostname() and pid_alive(run["pid"], run.get("pid_start")):
        return run["pid"]
    return None


def force_stop(db_path: str | os.PathLike[str], run_id: int, *, grace_s: float = STOP_GRACE_S,
               poll_s: float = 0.2) -> str:
    """`stop --force`: SIGTERM to the engine's process group (the engine checkpoints and stops, as for a stop
    command), then SIGKILL to the group if it still owns the run after `grace_s`. Returns what happened, one line."""
    with Store(db_path, create=False) as store:
        store.reap_dead_runs()
        run = _get(store, run_id)
        if not store.is_alive(run):
            raise RuntimeError(f"run {run_id} is not running (status {run['status']})")
        pid = _owner_pid(run)
        if pid is None:
            raise RuntimeError(f"run {run_id} is owned on host {run['host']}; stop it from there")
        try:
            pgid = os.getpgid(pid)
        except ProcessLookupError:
            store.reap_dead_runs()
            return f"run {run_id}'s engine had already exited"
        store.add_event(run_id, "warning", f"stop --force: SIGTERM to process group {pgid}")
        with store.atomic():
            store.db.execute("UPDATE runs SET status = 'stopping' WHERE id = ? AND status = 'running'", [run_id])
    _killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    with Store(db_path, create=False) as store:
        while time.monotonic() < deadline:
            run = _get(store, run_id)
            if run["status"] not in ACTIVE_STATUSES or not store.is_alive(run):
                break
            time.sleep(poll_s)
        else:
            _killpg(pgid, signal.SIGKILL)
            time.sleep(poll_s)
            message = f"killed with SIGKILL after {grace_s:g} s (stop --force)"
            with store.atomic():
                store.db.execute("UPDATE runs SET status = 'crashed', error = ?, ended = ? WHERE id = ? AND status IN"
                                 " ('queued', 'running', 'stopping')", [message, time.time(), run_id])
                store.db.execute("INSERT INTO events (run_id, time, level, message) VALUES (?,?,?,?)",
                                 [run_id, time.time(), "error", message])
            return f"run {run_id} {message}"
        store.reap_dead_runs()
        run = _get(store, run_id)
    return f"run {run_id} {run['status']} at step {run['step']} after SIGTERM"


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
