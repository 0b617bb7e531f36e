"""Recorded runs.db files for the findings-in-the-TUI tests: a hybrid-loss run whose VLB jitters under uniform
timestep sampling (the doctor's vlb-jitter, playbook 3.3), with a checkpoint file to fork from, and its fork."""

from __future__ import annotations

import math
from pathlib import Path

from doctor_testkit import config, decaying, record, with_cv

from difftui.engine.doctor.thresholds import IS_WARMUP
from difftui.engine.store import Store

FORK = 2000
T, BATCH, EVERY = 4000, 128, 10                     # p1-hybrid-cosine's T and log_every; the batch set below
WARMUP = math.ceil(IS_WARMUP.value * 10 * T / BATCH)


def hybrid(*sets):
    return config(f"recipe.batch_size={BATCH}", *sets, recipe="p1-hybrid-cosine")


def jittery_run(db: Path, *, name: str = "jittery") -> int:
    """A finished hybrid run to step 2000 whose L_vlb jitters, with a checkpoint at 2000 (an empty file: planning a
    fork lists checkpoints, it never loads them)."""
    with Store(db) as store:
        run_id = record(store, hybrid(), series={"L_vlb": with_cv(200, 6.0, 40.0, BATCH * EVERY),
                                                 "L_simple": decaying(200)}, name=name)
        run_dir = Path(store.get_run(run_id)["run_dir"])
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    for step in (1000, FORK):
        (run_dir / "checkpoints" / f"ckpt-{step:07d}.pt").write_bytes(b"")
    return run_id


def calm_fork(db: Path, parent: int) -> int:
    """A fork of `parent` at 2000 with importance sampling on, whose VLB is steady past the sampler's warm-up."""
    steps = [FORK + EVERY * (k + 1) for k in range(WARMUP // EVERY + 100)]
    with Store(db) as store:
        child = record(store, hybrid("recipe.importance_sampling=true"),
                       series={"L_vlb": (steps, with_cv(len(steps), 6.0, 2.0, BATCH * EVERY, seed=1)),
                               "L_simple": (steps, decaying(len(steps), 0.2, 0.1))}, name="fork")
        store.update_run(child, parent_id=parent, fork_step=FORK)
    return child
