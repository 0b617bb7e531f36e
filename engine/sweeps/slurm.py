"""A sweep on Slurm: its members as one job array, throttled to the sweep's concurrency (`--array=0-(N-1)%K`), so that
Slurm, not a supervisor of ours, decides what runs (DESIGN.md; issue 17 item 5).

    launch      the launch checks and Slurm's on the first member, the sweep and its members created, then every
                member submitted as task i of one array (sweeps/<id>/slurm/array-1.json maps index i to its run);
                each member's row records its job "<array>_<i>" (launch/runs.py's claim for Slurm)
    submit      the members that wait (a new sweep, `sweep resume` / `retry` after stop, crash or failure, `sweep add`)
                go out as a new array of their own, throttled to K itself (Slurm throttles within an array, not across
                two: an `add` while the first array still runs may have up to 2K members running)

No supervisor: the sweep lives while one of its members is active, and ends when none is (launch/liveness.py). A
member's job wrapper requeues a crashed engine up to max_retries times and never a diverged one (launch/slurm/task.py);
`sweep stop` cancels pending tasks and asks running members to checkpoint and stop (launch/runs.py's stop for Slurm).
"""

from __future__ import annotations

import json
import os
from typing import Any

from difftui.engine.launch import liveness
from difftui.engine.launch.plan import LaunchPlan
from difftui.engine.launch.slurm.options import SlurmOptions, options_from_mapping
from difftui.engine.launch.slurm.submit import submit_array
from difftui.engine.store import Store
from difftui.engine.sweeps.errors import SweepError

__all__ = ["sweep_options", "submit_waiting", "check_slurm_sweep"]


def sweep_options(sweep: dict[str, Any]) -> SlurmOptions | None:
    """The Slurm options a sweep was launched with (None: a local sweep)."""
    if not sweep.get("slurm"):
        return None
    return options_from_mapping(json.loads(sweep["slurm"]), f"sweep {sweep['id']}'s Slurm options")


def check_slurm_sweep(db_path: str | os.PathLike[str], config: Any, options: SlurmOptions) -> list[str]:
    """The checks of a submission (launch/slurm/checks.py) on a member's config: SweepError with the first failure;
    returns the warnings."""
    from difftui.engine.launch.slurm.checks import check_submission
    report = check_submission(db_path, config, options)
    if not report.ok:
        raise SweepError(report.errors[0])
    return list(report.warnings)


def submit_waiting(db_path: str | os.PathLike[str], sweep_id: int, options: SlurmOptions | None = None) -> str | None:
    """Submit the sweep's waiting members (queued, never started) as one new job array, at most K (the sweep's
    concurrency) at once; returns the array's job id, or None when nothing waits. Every member's claim and the sweep's
    are made in the transaction that submits, so two front ends never submit a member twice."""
    with Store(db_path, create=False) as store:
        with store.atomic():
            sweep = store.get_sweep(sweep_id)
            if sweep is None:
                raise SweepError(f"no sweep {sweep_id} in {store.path}")
            options = options or sweep_options(sweep)
            if options is None:
                raise SweepError(f"sweep {sweep_id} is not a Slurm sweep")
            waiting = [m for m in store.sweep_members(sweep_id) if liveness.is_waiting(m)]
            if not waiting:
                return None
            job, submitted = submit_array(sweep, waiting, options, int(sweep["runs_per_device"] or 1))
            launch = LaunchPlan(slurm=options.to_dict()).to_json()
            for index, member in enumerate(waiting):
                store.claim_for_slurm(member["id"], job=f"{job}_{index}", index=index, launch=launch,
                                      submitted=submitted)
            store.claim_slurm_sweep(sweep_id, json.dumps(options.to_dict()))
    return job
