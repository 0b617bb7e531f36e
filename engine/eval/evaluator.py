"""The evaluator: `python -m difftui.engine eval RUN_ID --db PATH [...]`, one run's evaluation in a process of its own
(playbook 5.5-5.8; DESIGN.md, process model).

It needs only what an evaluation needs: the run's config, the objective, the network with the EMA weights of a
checkpoint or snapshot, the run's x_T and the data set's images. No Trainer, no optimizer, no training stream; no
global RNG is seeded (every draw has its own torch.Generator). What it measures:

    the panel      every sampler of the run's panel from the fixed x_T: grid, NFE, seconds, NLL of ancestral chains
    held-out NLL   bits/dim over the whole chain on the test split (count shown; `--nll-images N` a fixed subset)
    --fid          FID and improved precision/recall (k = 3) of `--samples` images (default 50,000; `--quick`: the
                   recipe's quick count) from the fixed deterministic sampler, against the whole training split
                   (cached statistics, no x-flips); `--repeats K` reports the minimum and the spread (playbook 5.5)
    --curve        the few-step curve: FID and NLL at 5/10/15/20 steps for every covariance the model has
                   (heuristic beta_tilde and beta, learned, OCM), all from the same x_T, with grids (playbook 5.7-5.8)
    --pending-snapshots   FID at the quick count of every snapshot not yet evaluated, then the best one marked
                   (playbook 5.6); what a training run starts after writing a snapshot

One evaluation at a time per run: an OS lock on runs/<id>/eval.lock (a second one is refused with one line). Progress
goes to its `jobs` row, results to `evals` with their protocol, events to the run's event log. An evaluator of a
spool-mode run (`--spool RUN_DIR`, started by its engine on a compute node) never opens runs.db: the same writes go as
records to its own file runs/<id>/spool/eval.<key>.jsonl, and its job is named by that key (store/spool.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Iterator

from difftui.engine.config.model import RunConfig
from difftui.engine.eval.protocol import (
    CURVE_VARIANCES,
    QUICK_NLL_IMAGES,
    REPORT_SAMPLES,
    EvalError,
    EvalOptions,
    Evaluation,
    selection_spec,
)
from difftui.engine.launch import liveness
from difftui.engine.launch.lock import process_start_time
from difftui.engine.store import Store, StoreError
from difftui.engine.store.spool import SpoolSink
from difftui.engine.text import error_line, one_line

__all__ = ["REPORT_SAMPLES", "QUICK_NLL_IMAGES", "CURVE_VARIANCES", "EvalError", "EvalBusy", "EvalOptions",
           "selection_spec", "eval_lock", "evaluate", "main"]

PROGRESS_EVERY_S = 0.5                              # job row writes at most twice a second


class EvalBusy(EvalError):
    """Another evaluation of the same run holds its lock."""


class Stopped(Exception):
    """The evaluator was asked to stop (SIGTERM / SIGINT); its job ends as failed with this line."""



#----------------------------------------------------------------------------
# The lock and the progress rows.

@contextlib.contextmanager
def eval_lock(run_dir: Path, run_id: int) -> Iterator[None]:
    """Hold runs/<id>/eval.lock (flock, released by the OS when the process dies); EvalBusy when it is taken."""
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / "eval.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise EvalBusy(f"run {run_id} is already being evaluated (pid {holder}); one evaluation at a time per "
                           f"run") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


class Progress:
    """done/total units and a message on the job row (throttled), and on stdout for the log."""

    def __init__(self, store: Store, job_id: int):
        self.store, self.job_id = store, job_id
        self.done, self.total, self.message = 0, 0, ""
        self.last = 0.0

    def plan(self, units: int) -> None:
        self.total += units
        self.write(force=True)

    def say(self, message: str) -> None:
        self.message = message
        print(message, flush=True)
        self.write(force=True)

    def advance(self, units: int = 1, message: str | None = None) -> None:
        self.done = min(self.done + units, self.total)
        if message is not None:
            self.message = message
        self.write()

    def write(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last >= PROGRESS_EVERY_S:
            self.store.report_progress(self.job_id, self.done, self.total, self.message)
            self.last = now



#----------------------------------------------------------------------------
# Entry points.

def _load_run(store: Store | SpoolSink, run_id: int) -> tuple[dict[str, Any], RunConfig]:
    from difftui.engine.config.catalog import config_from_dict
    if isinstance(store, Store):
        liveness.reap_dead_runs(store)
    run = store.get_run(run_id)
    if run is None:
        raise EvalError(f"{store.path}: no run {run_id}")
    return run, config_from_dict(json.loads(run["config"]), f"run {run_id} config")


def evaluate(db_path: str | os.PathLike[str] | None, run_id: int, opts: EvalOptions, *, job_id: int | None = None,
             feature_net=None, spool: str | os.PathLike[str] | None = None) -> list[str]:
    """Evaluate run `run_id` in this process as `opts` asks; returns the result lines. Raises EvalError (one line)
    for what the user can fix, InceptionWeightsMissing when FID's weights are not there. `feature_net` replaces
    Inception (tests use a small stand-in through this same path). `spool`: the run's folder, in spool mode."""
    if opts.repeats < 1:
        raise EvalError(f"--repeats must be >= 1, got {opts.repeats}")
    if opts.samples is not None and opts.samples < 2:
        raise EvalError(f"--samples must be >= 2, got {opts.samples}")
    with (SpoolSink.for_evaluator(spool, run_id) if spool is not None else Store(db_path, create=False)) as store:
        run, config = _load_run(store, run_id)
        if job_id is None:
            job_id = store.create_job(run_id, "eval", dataclasses.asdict(opts))
        store.claim_job(job_id, pid=os.getpid(), pid_start=process_start_time(os.getpid()),
                        message="starting")
        progress = Progress(store, job_id)
        try:
            if opts.snapshot is None and not opts.pending_snapshots and liveness.run_alive(run):
                raise EvalError(f"run {run_id} is {run['status']}: its engine evaluates its panel (difftui eval "
                                f"{run_id} sends the command); evaluate one of its snapshots with --snapshot STEP")
            with eval_lock(Path(run["run_dir"]), run_id):
                ev = Evaluation(store, run, config, opts, job_id, progress, feature_net)
                ev.setup()
                if opts.pending_snapshots:
                    tried: set[int] = set()
                    lines = ev.run_pending_snapshots(tried)
                else:
                    lines = ev.run_weights()
            if opts.pending_snapshots:
                # A snapshot written while the lock was held was refused its own evaluator: take it now.
                with contextlib.suppress(EvalBusy):
                    with eval_lock(Path(run["run_dir"]), run_id):
                        lines += ev.run_pending_snapshots(tried)
        except EvalBusy as e:
            store.finish_job(job_id, "refused", error=str(e))
            raise
        except BaseException as e:
            store.finish_job(job_id, "failed", error=one_line(e))
            store.add_event(run_id, "error", f"evaluation failed: {one_line(e)}")
            raise
        progress.write(force=True)
        store.finish_job(job_id, "done", message="\n".join(lines) or "nothing to evaluate")
        for line in lines[1:]:
            store.add_event(run_id, "info", f"eval: {line}")
    return lines


def main(args) -> int:
    """`python -m difftui.engine eval` (argparse namespace from __main__): 0 done, 2 a user error (one line on
    stderr), 1 an unexpected failure (traceback in the log)."""
    from difftui.engine.eval.metrics.weights import InceptionWeightsMissing
    try:
        from difftui.engine.config.model import PresetError
        from difftui.engine.data import DataError
        from difftui.engine.run.device import DeviceError
    except ImportError:                               # pragma: no cover
        raise
    opts = EvalOptions(fid=args.fid or args.curve or args.pending_snapshots, samples=args.samples, quick=args.quick
                       or args.pending_snapshots, repeats=args.repeats, inception=args.inception,
                       snapshot=args.snapshot, pending_snapshots=args.pending_snapshots, curve=args.curve,
                       panel=not args.no_panel and not args.pending_snapshots,
                       nll=not args.no_nll and not args.pending_snapshots, nll_images=args.nll_images,
                       batch=args.batch, device=args.device, seed=args.seed)
    def stop(signum, frame):                        # SIGTERM / SIGINT: end with a status, not a silent death
        raise Stopped(f"stopped by {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"--- evaluator pid {os.getpid()} run {args.run_id} at {time.strftime('%Y-%m-%d %H:%M:%S')}: "
          f"{' '.join(sys.argv[1:])}", flush=True)
    try:
        for line in evaluate(args.db, args.run_id, opts, job_id=args.job, spool=args.spool):
            print(line, flush=True)
        return 0
    except (EvalError, StoreError, InceptionWeightsMissing, PresetError, DataError, DeviceError) as e:
        print(error_line(e, "difftui eval"), file=sys.stderr, flush=True)
        return 2
    except BaseException as e:
        traceback.print_exc()
        print(error_line(e, "difftui eval", word="failed"), file=sys.stderr, flush=True)
        return 1
