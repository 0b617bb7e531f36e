"""The sweep scheduler: `python -m difftui.engine sweep SWEEP_ID --db PATH`, one detached process per sweep.

It owns its sweep the way an engine owns its run (sweeps/<id>/lock, an OS lock held for its whole life: a second
supervisor is refused with one line), and loops about once a second:

1. reap members whose engine is gone (crashed);
2. a member occupies its slot while it is active or its engine still holds its run lock;
3. while the sweep runs, start waiting members (queued, no pid) in queue order on the free slots, each through
   `launch.start_run` (its own process, session and CUDA_VISIBLE_DEVICES or thread share; the claim means a member is
   never started twice, whoever else tries);
4. when nothing waits and nothing runs, end the sweep (completed, or partial when a member did not complete) and
   exit; when the sweep is stopping, start nothing and mark it stopped once its members have checkpointed and exited.

A member that crashes, fails or diverges is marked so by its engine (or the reaper) and the others run on. The members
are their own processes: killing the supervisor (even with kill -9) leaves them training, and `sweep resume` starts a
new supervisor that finds them in their slots and picks up the queue.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from difftui.engine.launch import liveness, signals
from difftui.engine.launch.liveness import is_waiting
from difftui.engine.launch.lock import Owned, OwnerLock, process_start_time
from difftui.engine.launch.runs import start_run
from difftui.engine.store import ACTIVE_STATUSES, Store, StoreError
from difftui.engine.sweeps.control import sweep_slots
from difftui.engine.text import one_line

__all__ = ["supervise", "POLL_S", "occupied_slots"]

POLL_S = 1.0                                        # how often the supervisor looks at runs.db


def _log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def _occupies(run: dict[str, Any]) -> bool:
    """Started and not finished: active in runs.db, or its engine is still exiting (it holds its run lock)."""
    if is_waiting(run):
        return False
    return run["status"] in ACTIVE_STATUSES or liveness.holds_lock(run)


def occupied_slots(members: list[dict[str, Any]], slot_count: int) -> set[int]:
    """Slots in use. A member started outside the supervisor (no slot recorded) still takes one: the first free."""
    used = {m["sweep_slot"] for m in members if _occupies(m) and m["sweep_slot"] is not None}
    for m in members:
        if _occupies(m) and m["sweep_slot"] is None:
            free = [s for s in range(slot_count) if s not in used]
            used.add(free[0] if free else -1)
    return used


class Supervisor:
    def __init__(self, db_path: str | os.PathLike[str], sweep_id: int, poll_s: float = POLL_S):
        self.db_path = Path(db_path)
        self.sweep_id = sweep_id
        self.poll_s = poll_s
        self.store = Store(db_path, create=False)
        self.children: list[subprocess.Popen] = []
        sweep = self.store.get_sweep(sweep_id)
        if sweep is None:
            raise StoreError(f"{db_path}: no sweep {sweep_id}")
        self.slots = sweep_slots(sweep)
        self.cpu_threads = self.slots.cpu_threads() if self.slots.on_cpu else None

    def reap_children(self) -> None:
        """Collect the exit status of members this process started (they are never killed here)."""
        self.children = [p for p in self.children if p.poll() is None]

    def step(self) -> str | None:
        """One look at the sweep; returns the final status when the supervisor's work is done."""
        store = self.store
        self.reap_children()
        liveness.reap_dead_runs(store)
        sweep = store.get_sweep(self.sweep_id)
        if sweep is None:
            return "deleted"
        if sweep["status"] not in ("running", "stopping"):
            return sweep["status"]                  # stopped or completed by someone else
        members = store.sweep_members(self.sweep_id)
        busy = occupied_slots(members, self.slots.count)
        if sweep["status"] == "stopping":
            if not busy:
                store.end_sweep(self.sweep_id, "stopped")
                return "stopped"
            return None
        waiting = [m for m in members if is_waiting(m)]
        if not waiting and not busy:
            with store.atomic():                    # an `add` that lands now is seen by this check
                members = store.sweep_members(self.sweep_id)
                if not any(is_waiting(m) for m in members) and not occupied_slots(members, self.slots.count):
                    # completed only when every member completed; partial when one stopped, failed or crashed
                    ended = store.finish_sweep(self.sweep_id, only_from=("running",))
                    if ended is not None:
                        return ended
            return None
        free = [s for s in range(self.slots.count) if s not in busy]
        for slot, member in zip(free, waiting, strict=False):
            if not store.assign_slot(member["id"], slot):
                continue                            # no longer waiting (stopped, retried, started elsewhere)
            try:
                proc = start_run(self.db_path, member["id"], self.slots.plan(slot, self.cpu_threads))
            except Owned as e:
                _log(f"run {member['id']}: {e}")
                continue
            except Exception as e:                  # the engine could not be spawned: that member fails alone
                message = f"sweep {self.sweep_id} could not start it: {type(e).__name__}: {e}"
                with store.atomic():
                    store.finish_run(member["id"], "failed", error=message)
                    store.add_event(member["id"], "error", message)
                _log(f"run {member['id']}: {message}")
                continue
            self.children.append(proc)
            _log(f"run {member['id']} started on slot {slot} ({self.slots.device_of(slot)}), pid {proc.pid}")
        return None

    def run(self) -> str:
        while True:
            if signals.received():
                return "signal"
            status = self.step()
            if status is not None:
                return status
            time.sleep(self.poll_s)


def supervise(db_path: str | os.PathLike[str], sweep_id: int, poll_s: float = POLL_S) -> int:
    """The supervisor process's body; returns its exit code (0 done or stopped, 1 failed, 2 bad input, 3 owned)."""
    try:
        sup = Supervisor(db_path, sweep_id, poll_s)
    except StoreError as e:
        print(f"difftui sweep: {e}", file=sys.stderr)
        return 2
    store = sup.store
    sweep = store.get_sweep(sweep_id)
    try:
        lock = OwnerLock(Path(sweep["sweep_dir"]) / "lock").acquire(f"sweep {sweep_id}")
    except Owned as e:
        print(f"difftui sweep: {e}; this supervisor exits", file=sys.stderr)
        return 3
    pid = os.getpid()
    store.update_sweep(sweep_id, pid=pid, pid_start=process_start_time(pid), host=socket.gethostname())
    _log(f"supervisor pid {pid} owns sweep {sweep_id}: {sup.slots.describe()}")
    try:
        status = sup.run()
        if status == "signal":
            why = signals.describe(signals.received())
            store.end_sweep(sweep_id, "crashed", error=f"supervisor stopped by {why}; started members train on "
                                                       f"(sweep resume restarts it)")
            _log(f"stopped by {why}")
            return 0
        _log(f"sweep {sweep_id} {status}")
        return 0
    except BaseException as e:
        traceback.print_exc(file=sys.stderr)
        message = one_line(e, named=True)
        try:
            store.end_sweep(sweep_id, "crashed", error=f"supervisor failed: {message}")
        except Exception:
            traceback.print_exc(file=sys.stderr)
        return 1
    finally:
        store.close()
        lock.release()
