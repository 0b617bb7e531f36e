"""Creating, starting, stopping, resuming, retrying and growing sweeps; cloning a run. What every front end calls.

A sweep's state lives in runs.db: the `sweeps` row (status, grid, base options, slots, supervisor) and its member
runs (`runs.sweep_id`, their axis values, slot and off-grid mark). A member waiting in the queue is a 'queued' run
with no pid. The supervisor (`python -m difftui.engine sweep SWEEP_ID --db PATH`, supervisor.py) is started here
like an engine: an argv list, stdin from /dev/null, output appended to sweeps/<id>/supervisor.log, its own session
(closing the TUI or the terminal does not stop it), and claimed in one transaction, so two launchers give one
supervisor and one refusal (`Owned`). A member is started only through `launch.start_run`, whose claim means a member
can never be started twice, whoever starts it.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterable

from difftui.engine.launch import liveness
from difftui.engine.launch.liveness import is_waiting
from difftui.engine.launch.lock import Owned, holder, process_start_time
from difftui.engine.launch.outcome import LaunchError
from difftui.engine.launch.runs import create_run, request_stop
from difftui.engine.numbers import format_setting
from difftui.engine.store import ACTIVE_STATUSES, SWEEP_STATUSES, Store, StoreError, sweep_lock_path
from difftui.engine.sweeps.errors import SweepError
from difftui.engine.sweeps.plan import SweepPlan, grid_record, member_label, parse_value, resolve_member
from difftui.engine.sweeps.slots import Slots
from difftui.engine.sweeps.spec import RunSpec

__all__ = ["create_sweep", "start_supervisor", "ensure_supervised", "launch_sweep", "stop_sweep", "resume_sweep",
           "retry_members", "add_value", "sweep_slots", "sweep_grid", "supervisor_argv", "clone_run",
           "is_waiting"]


def _get(store: Store, sweep_id: int) -> dict[str, Any]:
    sweep = store.get_sweep(sweep_id)
    if sweep is None:
        raise SweepError(f"no sweep {sweep_id} in {store.path}")
    return sweep


def sweep_slots(sweep: dict[str, Any]) -> Slots:
    return Slots(tuple(json.loads(sweep["devices"] or '["cpu"]')), int(sweep["runs_per_device"] or 1),
                 threads=sweep.get("cpu_threads") or None)


def sweep_grid(sweep: dict[str, Any]) -> dict[str, Any]:
    return json.loads(sweep["grid"])


#----------------------------------------------------------------------------
# Creating a sweep.

def create_sweep(db_path: str | os.PathLike[str], plan: SweepPlan, slots: Slots, *, name: str = "") -> int:
    """Insert the sweep and every member as a waiting run (nothing starts). Returns the sweep id."""
    if not plan.members:
        raise SweepError(f"grid '{plan.grid.name}': no member to run")
    from difftui.engine.config.catalog import config_to_dict
    base = plan.members[0].config
    with Store(db_path) as store:
        sweep_id = store.create_sweep(name=name or plan.grid.name, preset=plan.grid.name,
                                      base_config=config_to_dict(base), grid=grid_record(plan),
                                      spec=dataclasses.replace(plan.spec, device=plan.spec.device if slots.on_slurm
                                                               else slots.member_device).to_dict(),
                                      runs_per_device=slots.runs_per_device, devices=slots.to_list(),
                                      cpu_threads=slots.cpu_threads() if slots.on_cpu else None)
        if not name:
            store.update_sweep(sweep_id, name=f"{plan.grid.name}-{sweep_id}")
    _add_members(db_path, sweep_id, [(m.axis_values, m.off_grid, m.config) for m in plan.members])
    return sweep_id


def _add_members(db_path, sweep_id: int, members: Iterable[tuple[dict[str, Any], bool, Any]]) -> list[int]:
    ids = []
    for axis_values, off_grid, config in members:
        config = dataclasses.replace(config, name=f"s{sweep_id}-{member_label(axis_values).replace(' ', '-')}")
        run_id = create_run(db_path, config, sweep_id=sweep_id)
        with Store(db_path) as store:
            store.set_member(run_id, axis_values=axis_values, off_grid=off_grid)
        ids.append(run_id)
    return ids


def supervisor_argv(db_path: str | os.PathLike[str], sweep_id: int) -> list[str]:
    return [sys.executable, "-m", "difftui.engine", "sweep", str(sweep_id), "--db", str(Path(db_path).resolve())]


def start_supervisor(db_path: str | os.PathLike[str], sweep_id: int) -> subprocess.Popen:
    """Spawn the sweep's supervisor and claim the sweep in one write transaction. Raises `Owned` (one line) when a
    supervisor already owns it."""
    with Store(db_path, create=False) as store:
        with store.atomic():
            sweep = _get(store, sweep_id)
            if liveness.sweep_alive(sweep):
                owner = holder(sweep_lock_path(sweep))
                who = owner.describe() if owner else f"starting as pid {sweep['pid']}"
                raise Owned(f"sweep {sweep_id} is already supervised ({who})")
            folder = Path(sweep["sweep_dir"])
            folder.mkdir(parents=True, exist_ok=True)
            argv = supervisor_argv(db_path, sweep_id)
            with open(folder / "supervisor.log", "ab") as log, open(os.devnull, "rb") as devnull:
                log.write(f"--- launch {time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(argv)}\n".encode())
                log.flush()
                proc = subprocess.Popen(argv, stdin=devnull, stdout=log, stderr=subprocess.STDOUT, cwd=folder,
                                        start_new_session=True, close_fds=True)
            store.claim_sweep(sweep_id, pid=proc.pid, pid_start=process_start_time(proc.pid),
                              host=socket.gethostname())
    return proc


def _carry_on(db_path: str | os.PathLike[str], sweep_id: int) -> str:
    """After members were queued again or added: a Slurm sweep submits them as a new job array, a local one makes
    sure its supervisor runs. Returns what was done, for the user's line ("" when nothing new)."""
    with Store(db_path, create=False) as store:
        on_slurm = bool(_get(store, sweep_id).get("slurm"))
    if on_slurm:
        from difftui.engine.sweeps.slurm import submit_waiting
        job = submit_waiting(db_path, sweep_id)
        return f"submitted to Slurm as job array {job}" if job else "no member waits to be submitted"
    proc = ensure_supervised(db_path, sweep_id)
    return f"supervisor pid {proc.pid}" if proc else ""


def ensure_supervised(db_path: str | os.PathLike[str], sweep_id: int) -> subprocess.Popen | None:
    """Start a supervisor unless one owns the sweep (a live one picks new work up by itself). Returns the new
    process, or None."""
    try:
        return start_supervisor(db_path, sweep_id)
    except Owned:
        return None


def launch_sweep(db_path: str | os.PathLike[str], plan: SweepPlan, slots: Slots, *, name: str = "",
                 slurm: Any = None) -> tuple[int, subprocess.Popen | str]:
    """Create the sweep and start its supervisor; a start that fails marks the sweep crashed with its reason. With
    `slurm` (SlurmOptions; `slots` then Slots(("slurm",), K)) its members go to Slurm as one job array instead
    (sweeps/slurm.py): returns (sweep id, the array's job id).

    The launch checks of a new run come first (the device exists, the data files are there; engine/launch/checks.py;
    on Slurm: launch/slurm/checks.py), on the first member: its members share them, and a sweep that would fail
    creates nothing (SweepError)."""
    from difftui.engine.launch.checks import launch_checks
    if slurm is not None:
        from difftui.engine.sweeps.slurm import check_slurm_sweep, submit_waiting
        check_slurm_sweep(db_path, plan.members[0].config, slurm)
        sweep_id = create_sweep(db_path, plan, slots, name=name)
        try:
            job = submit_waiting(db_path, sweep_id, slurm)
        except Exception as e:
            with Store(db_path) as store:
                store.end_sweep(sweep_id, "crashed", error=f"sbatch refused the array: {e}", only_from=SWEEP_STATUSES)
            raise
        return sweep_id, job
    report = launch_checks(plan.members[0].config)
    if not report.ok:
        raise SweepError(report.errors[0])
    sweep_id = create_sweep(db_path, plan, slots, name=name)
    try:
        proc = start_supervisor(db_path, sweep_id)
    except Exception as e:
        with Store(db_path) as store:
            store.end_sweep(sweep_id, "crashed", error=f"supervisor did not start: {e}")
        raise
    return sweep_id, proc


#----------------------------------------------------------------------------
# Stop, resume, retry, add.

def stop_sweep(db_path: str | os.PathLike[str], sweep_id: int) -> str:
    """Hold the queue and ask every running member to checkpoint and stop. Returns one line."""
    with Store(db_path, create=False) as store:
        liveness.reap_dead_runs(store)
        liveness.reap_dead_sweeps(store)
        sweep = _get(store, sweep_id)
        members = store.sweep_members(sweep_id)
        running = [m for m in members if not is_waiting(m) and liveness.run_alive(m)]
        waiting = [m for m in members if is_waiting(m)]
        if sweep["status"] in ("stopped", "completed") and not running:
            raise SweepError(f"sweep {sweep_id} is not running ({sweep['status']})")
        if liveness.sweep_alive(sweep):
            store.mark_sweep_stopping(sweep_id)
        else:
            store.end_sweep(sweep_id, "stopped", only_from=SWEEP_STATUSES)
    cancelled = 0
    for m in running:
        try:
            outcome = request_stop(db_path, m["id"])
        except LaunchError:
            continue                                # it ended meanwhile
        cancelled += outcome.message.startswith(f"run {m['id']} stopped")     # a pending Slurm job: cancelled
    if sweep.get("slurm"):
        return (f"sweep {sweep_id}: {cancelled} pending member(s) cancelled, stop requested for "
                f"{len(running) - cancelled} running member(s) (scancel if they have not ended after the grace "
                f"period); sweep resume {sweep_id} submits the stopped ones again")
    return (f"sweep {sweep_id}: stop requested for {len(running)} running member(s); {len(waiting)} waiting "
            f"member(s) held (sweep resume {sweep_id} continues)")


def resume_sweep(db_path: str | os.PathLike[str], sweep_id: int) -> str:
    """Release the queue, put stopped and crashed members back in it, and make sure a supervisor runs. A member
    that is still training is left alone (its engine owns it); nothing is started twice."""
    with Store(db_path, create=False) as store:
        liveness.reap_dead_runs(store)
        liveness.reap_dead_sweeps(store)
        sweep = _get(store, sweep_id)
        if sweep["status"] == "stopping":
            raise SweepError(f"sweep {sweep_id} is still stopping (members are checkpointing); resume it once it "
                             f"has stopped")
        again = store.requeue_members(sweep_id, ("stopped", "crashed"))
        members = store.sweep_members(sweep_id)
        left = [m for m in members if m["status"] in ACTIVE_STATUSES]
        if not left:
            store.end_sweep(sweep_id, "completed", only_from=SWEEP_STATUSES)
            raise SweepError(f"sweep {sweep_id} has nothing left to run (sweep retry {sweep_id} re-runs failed "
                             f"members)")
    waiting = sum(is_waiting(m) for m in left)
    who = _carry_on(db_path, sweep_id) or "its supervisor was already running"
    return (f"sweep {sweep_id} resumed ({who}): {waiting} member(s) waiting"
            + (f", {len(again)} stopped or crashed member(s) queued again" if again else ""))


def retry_members(db_path: str | os.PathLike[str], sweep_id: int, run_ids: Iterable[int] | None = None) -> str:
    """Queue failed and crashed members again (or the given members, stopped ones too): each resumes from its
    newest checkpoint, or starts afresh where it has none. Starts a supervisor when none runs."""
    with Store(db_path, create=False) as store:
        liveness.reap_dead_runs(store)
        liveness.reap_dead_sweeps(store)
        sweep = _get(store, sweep_id)
        if sweep["status"] == "stopping":
            raise SweepError(f"sweep {sweep_id} is stopping; retry once it has stopped")
        if run_ids is not None:
            run_ids = list(run_ids)
            members = {m["id"]: m for m in store.sweep_members(sweep_id)}
            for run_id in run_ids:
                if run_id not in members:
                    raise SweepError(f"run {run_id} is not a member of sweep {sweep_id}")
                if members[run_id]["status"] in ACTIVE_STATUSES:
                    raise SweepError(f"run {run_id} is {members[run_id]['status']}; nothing to retry")
            ids = store.requeue_members(sweep_id, ("failed", "crashed", "stopped"), run_ids)
        else:
            ids = store.requeue_members(sweep_id, ("failed", "crashed"))
        if not ids:
            raise SweepError(f"sweep {sweep_id} has no failed or crashed member to retry")
    done = _carry_on(db_path, sweep_id)
    return (f"sweep {sweep_id}: run{'s' * (len(ids) != 1)} {', '.join(map(str, ids))} queued again"
            + (f" ({done})" if done else ""))


def add_value(db_path: str | os.PathLike[str], catalog: Any, sweep_id: int, value: str, *, axis: str | None = None,
              off_grid: bool = False) -> str:
    """Add a value to one axis of a sweep: new members for it with every chosen value of the other axes, queued.
    An off-grid value needs `off_grid`. A running sweep picks them up; a stopped one holds them."""
    with Store(db_path, create=False) as store:
        liveness.reap_dead_sweeps(store)
        sweep = _get(store, sweep_id)
    grid_rec = sweep_grid(sweep)
    paper: dict[str, list[Any]] = grid_rec["paper"]
    axes: dict[str, list[Any]] = grid_rec["axes"]
    if axis is None:
        if len(axes) != 1:
            raise SweepError(f"sweep {sweep_id} has {len(axes)} axes ({', '.join(axes)}); name one")
        axis = next(iter(axes))
    if axis not in axes:
        raise SweepError(f"sweep {sweep_id} has no axis {axis!r} (axes: {', '.join(axes)})")
    parsed = parse_value(value)
    grid = catalog.get("sweeps", grid_rec["preset"])
    from difftui.engine.config.model import same_value
    if any(same_value(parsed, v) for v in axes[axis]):
        raise SweepError(f"sweep {sweep_id} already has {axis}={format_setting(parsed)}")
    on_grid = any(same_value(parsed, v) for v in paper[axis])
    if not on_grid and not off_grid:
        raise SweepError(f"{axis}={format_setting(parsed)} is off the '{grid.name}' grid (playbook "
                         f"{grid_rec['playbook']}: {', '.join(format_setting(v) for v in paper[axis])}); add it as "
                         f"off-grid (--off-grid) to run it anyway")
    spec = RunSpec.from_dict(json.loads(sweep["spec"]))
    others = {k: v for k, v in axes.items() if k != axis}
    off = {k: list(v) for k, v in (grid_rec.get("off_grid") or {}).items()}
    new = []
    for point in itertools.product(*others.values()):
        axis_values = {k: (parsed if k == axis else dict(zip(others, point, strict=False))[k]) for k in axes}
        is_off = (not on_grid) or any(any(same_value(v, o) for o in off.get(k, ())) for k, v in axis_values.items())
        config = resolve_member(catalog, grid, spec, axis_values)          # validated before anything is created
        new.append((axis_values, is_off, config))
    axes[axis] = [*axes[axis], parsed]
    if not on_grid:
        off.setdefault(axis, []).append(parsed)
    grid_rec.update(axes=axes, off_grid=off)
    with Store(db_path) as store:
        store.update_sweep(sweep_id, grid=json.dumps(grid_rec))
    ids = _add_members(db_path, sweep_id, new)
    with Store(db_path) as store:
        held = _get(store, sweep_id)["status"] in ("stopping", "stopped")
    if held:
        return (f"sweep {sweep_id}: {axis}={format_setting(parsed)} added as run{'s' * (len(ids) != 1)} "
                f"{', '.join(map(str, ids))}, held while the sweep is stopped (sweep resume {sweep_id})")
    done = _carry_on(db_path, sweep_id)
    return (f"sweep {sweep_id}: {axis}={format_setting(parsed)}{' (off-grid)' if not on_grid else ''} added as "
            f"run{'s' * (len(ids) != 1)} {', '.join(map(str, ids))}"
            + (f" ({done})" if done else ""))


#----------------------------------------------------------------------------
# Clone.

def clone_run(db_path: str | os.PathLike[str], catalog: Any, run_id: int, *, sets: Iterable[str] = (),
              max_steps: int | None = None, device: str | None = None, name: str = "", start: bool = True
              ) -> tuple[int, subprocess.Popen | None]:
    """A new run with the config of run `run_id` (plus `sets`), recording its parent; started unless `start` is
    False. Returns (run id, process)."""
    from difftui.engine.data import check_available
    from difftui.engine.launch.runs import start_run
    with Store(db_path, create=False) as store:
        run = store.get_run(run_id)
        if run is None:
            raise StoreError(f"{store.path}: no run {run_id}")
        data = json.loads(run["config"])
    spec = RunSpec.from_config(data, catalog)
    replace: dict[str, Any] = {"name": name}
    if max_steps is not None:
        replace["max_steps"] = max_steps
    if device is not None:
        replace["device"] = device
    config = spec.resolve(catalog, list(sets), **replace)
    check_available(config.dataset)
    new_id = create_run(db_path, config, parent_id=run_id)
    proc = start_run(db_path, new_id) if start else None
    return new_id, proc
