"""The evaluate use case (playbook 5.5-5.8): the one engine call the TUI's `v` and the CLI's `difftui eval` make.

    a live run, no snapshot asked      its engine evaluates its panel between two steps (the "evaluate" command);
                                       FID is refused: it evaluates weights on disk (pass a snapshot, or stop the run)
    any other run                      the evaluator process (`python -m difftui.engine eval`, eval/jobs.py), unless
                                       one is already at work on this run
    FID asked                          an explicit Inception path that is not there is refused now, in one line
    FID if found (the TUI's key)       FID at the quick count when the Inception weights are found, else skipped
                                       with a note saying where to put them

Returns an `Outcome` (one line, and the evaluator's process and job), or raises `LaunchError` (one line). No torch
here: the TUI and the CLI call it in their own light process.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from difftui.engine.eval.cost import Cost, EvalCounts, evaluation_parts, training_rate
from difftui.engine.eval.counts import DEFAULT_NLL_IMAGES, LIVE_PANEL_NLL_IMAGES, fid_sample_count
from difftui.engine.eval.jobs import spawn_evaluator
from difftui.engine.eval.metrics.weights import InceptionWeightsMissing, locate_inception, missing_message
from difftui.engine.launch import liveness
from difftui.engine.launch.outcome import LaunchError, Outcome
from difftui.engine.store import Store
from difftui.engine.store.spool import send_command

__all__ = ["EvalRequest", "Pricing", "pricing", "start_evaluation", "estimate_evaluation", "start_recheck"]


@dataclass(frozen=True)
class EvalRequest:
    """What to evaluate (the evaluator's options, `python -m difftui.engine eval --help`)."""
    fid: bool = False                               # FID and improved precision/recall (k=3), playbook 5.5
    fid_if_found: bool = False                      # FID only when the Inception weights are found (else a note)
    curve: bool = False                             # the few-step curve: FID and NLL at 5/10/15/20 steps
    quick: bool = False                             # the recipe's quick count (10,000) instead of 50,000
    samples: int | None = None
    repeats: int = 1
    inception: Path | None = None
    snapshot: int | None = None
    nll_images: int | None = None
    device: str | None = None
    batch: int | None = None

    @property
    def needs_fid(self) -> bool:
        return self.fid or self.curve

    def argv(self, *, fid: bool | None = None) -> list[str]:
        """The evaluator's options as an argv tail (`fid` overrides whether --fid is passed)."""
        args: list[str] = []
        if self.fid if fid is None else fid:
            args.append("--fid")
        if self.quick:
            args.append("--quick")
        if self.curve:
            args.append("--curve")
        inception = Path(self.inception).expanduser().resolve() if self.inception else None
        for flag, value in (("--samples", self.samples), ("--repeats", self.repeats if self.repeats != 1 else None),
                            ("--inception", inception), ("--snapshot", self.snapshot),
                            ("--nll-images", self.nll_images), ("--device", self.device), ("--batch", self.batch)):
            if value is not None:
                args += [flag, str(value)]
        return args


def _fid_found(inception: Path | None) -> bool:
    try:
        return locate_inception(inception) is not None
    except InceptionWeightsMissing:
        return False


@dataclass(frozen=True)
class Pricing:
    """What pricing an evaluation of one run needs, read once (the TUI's dialog reprices as the counts change)."""
    run_id: int
    config: Any                                     # the run's RunConfig
    live: bool                                      # its engine evaluates its panel (the counts do not apply)
    fid_found: bool                                 # the Inception weights are where the evaluator looks
    rate: float | None
    basis: str

    def counts(self, request: EvalRequest) -> EvalCounts:
        """What `request` measures, in counts: a live run's engine evaluates its panel (NLL of its ancestral chains
        on LIVE_PANEL_NLL_IMAGES images), any other run's evaluator what the request asks."""
        if self.live and request.snapshot is None:
            return EvalCounts(panel=True, nll=False, nll_images=LIVE_PANEL_NLL_IMAGES, panel_nll=True)
        fid = request.needs_fid or (request.fid_if_found and self.fid_found)
        return EvalCounts(panel=True, nll=True, nll_images=request.nll_images or DEFAULT_NLL_IMAGES,
                          fid_samples=fid_sample_count(self.config.recipe, request.samples, request.quick) if fid
                          else 0, repeats=request.repeats, curve=request.curve)

    def cost(self, request: EvalRequest) -> Cost:
        return Cost(evaluation_parts(self.config, self.counts(request)), self.rate, self.basis)


def pricing(db_path: str | os.PathLike[str], run_id: int, inception: Path | None = None) -> Pricing:
    """Run `run_id`'s config, liveness and training speed (eval/cost.py prices at it); LaunchError: no such run."""
    from difftui.engine.config.catalog import config_from_dict
    with Store(db_path, create=False) as store:
        run = store.get_run(run_id)
        if run is None:
            raise LaunchError(f"no run {run_id} in {store.path}")
        config = config_from_dict(json.loads(run["config"]), f"run {run_id} config")
        rate, basis = training_rate(store, run)
    return Pricing(run_id, config, liveness.run_alive(run), _fid_found(inception), rate, basis)


def estimate_evaluation(db_path: str | os.PathLike[str], run_id: int, request: EvalRequest = EvalRequest()) -> Cost:
    """What `start_evaluation(db_path, run_id, request)` will cost, before it starts (eval/cost.py), priced at the
    run's own training speed; the evaluator times a batch and says its own estimate as it starts."""
    return pricing(db_path, run_id, request.inception).cost(request)


def start_evaluation(db_path: str | os.PathLike[str], run_id: int, request: EvalRequest = EvalRequest(), *,
                     on_estimate: Callable[[Cost], None] | None = None) -> Outcome:
    """Evaluate run `run_id` as the module docstring says. The evaluator runs on after this returns. `on_estimate`
    is given the cost (`estimate_evaluation`) once the request has passed its checks, before anything starts."""
    if on_estimate is not None:
        estimate = estimate_evaluation(db_path, run_id, request)          # no such run: LaunchError, one line
    with Store(db_path, create=False) as store:
        liveness.reap_dead_runs(store)
        liveness.reap_dead_jobs(store)
        run = store.get_run(run_id)
        if run is None:
            raise LaunchError(f"no run {run_id} in {store.path}")
        if request.snapshot is None and liveness.run_alive(run):
            if request.needs_fid:
                raise LaunchError(f"run {run_id} is {run['status']}: FID evaluates weights on disk; pass --snapshot "
                                  f"STEP (a snapshot of this run), or stop the run first")
            if on_estimate is not None:
                on_estimate(estimate)
            send_command(store, run, "evaluate")          # a live engine evaluates its panel between two steps
            return Outcome(run_id, f"evaluate requested for run {run_id}; its engine evaluates the panel between two "
                                   f"steps (results arrive as events and panel grids)")
        busy = store.jobs_for(run_id, active=True)
        if busy:
            raise LaunchError(f"run {run_id} is already being evaluated (job {busy[-1]['id']}, "
                              f"{busy[-1]['status']}); one evaluation at a time per run")
    fid, note = request.needs_fid, ""
    if request.needs_fid:
        try:
            locate_inception(request.inception)      # an explicit path that is not there: one line now
        except InceptionWeightsMissing as e:
            raise LaunchError(str(e)) from None
    elif request.fid_if_found:
        try:
            fid = locate_inception(request.inception) is not None
            note = "" if fid else missing_message()
        except InceptionWeightsMissing as e:
            note = str(e)
    if on_estimate is not None:
        on_estimate(estimate)
    job_id, proc = spawn_evaluator(db_path, run_id, request.argv(fid=fid))
    message = f"evaluating run {run_id} (job {job_id}, pid {proc.pid}); log {Path(run['run_dir']) / 'eval.log'}"
    if note:
        message += f". FID skipped: {note}"
    return Outcome(run_id, message, proc=proc, job_id=job_id, fid_skipped=bool(note))


def start_recheck(db_path: str | os.PathLike[str], parent_id: int, child_id: int, *, rules: tuple[str, ...] = ()
                  ) -> list[str]:
    """The re-check's evaluation (issue 18 item 4, playbook 5.6): parent and child evaluated under one fixed protocol
    (difftui.engine.doctor.recheck.recheck_protocol: the same deterministic sampler, NFE, sample count and held-out
    images). One line per run: what started, or why not (a live run evaluates its panel between steps; FID waits
    until it stops). `rules`: the rules to re-check (default: the parent's findings)."""
    import json

    from difftui.engine.doctor import diagnose
    from difftui.engine.doctor.recheck import recheck_protocol
    with Store(db_path, create=False) as store:
        configs = []
        for run_id in (parent_id, child_id):
            run = store.get_run(run_id)
            if run is None:
                raise LaunchError(f"no run {run_id} in {store.path}")
            configs.append(json.loads(run["config"]))
        wanted = tuple(rules) or tuple(f.rule for f in diagnose(store, parent_id).findings)
    protocol = recheck_protocol(configs[0], configs[1], wanted)
    request = EvalRequest(quick=True, fid_if_found=True, samples=protocol.samples, curve=protocol.curve)
    lines = [f"fixed protocol (playbook 5.6): {protocol.line}"] + ([protocol.mismatch] if protocol.mismatch else [])
    for run_id in (parent_id, child_id):
        try:
            lines.append(start_evaluation(db_path, run_id, request).message)
        except LaunchError as e:
            lines.append(f"run {run_id}: {e}")
    return lines
