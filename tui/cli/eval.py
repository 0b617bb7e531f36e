"""`difftui eval` and `difftui report`: the playbook's evaluation protocol from the shell (playbook 5.5-5.8).

`eval` starts the evaluator in its own process (`python -m difftui.engine eval ...`, own session) and follows its
progress row in runs.db with a progress bar; Ctrl-C detaches (the evaluation goes on; `difftui show ID` lists its
results). A live run evaluates its panel in its own engine (the "evaluate" command); its snapshots can be evaluated
any time. Missing Inception weights are one line naming the file and where to put it, exit 2.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Optional

import typer

from difftui.tui.cli.common import UserError, ctx_obj, fail, out, user_command

__all__ = ["register"]

POLL_S = 0.5


def follow_job(out, store, job_id: int, proc, title: str) -> dict:
    """A progress bar on the job row until the job ends (or its process is gone); returns the final row."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from difftui.engine.eval.jobs import job_finished
    from difftui.engine.launch.liveness import reap_dead_jobs
    columns = [TextColumn(f"{title} [bold]{{task.fields[status]}}[/]"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("{task.fields[message]}")]
    with Progress(*columns, console=out, transient=False, refresh_per_second=4) as progress:
        task = progress.add_task("", total=None, status="queued", message="starting the evaluator")
        while True:
            job = store.get_job(job_id)
            progress.update(task, completed=job["done"], total=job["total"] or None, status=job["status"],
                            message=(job["message"] or "").splitlines()[0][:80] if job["message"] else "")
            if job_finished(job):
                return job
            if proc.poll() is not None:
                time.sleep(POLL_S)                  # its final write, then the reaper decides
                reap_dead_jobs(store)
                job = store.get_job(job_id)
                if job_finished(job):
                    return job
            time.sleep(POLL_S)


ACCEPT_TIMEOUT_S = 300.0                            # the evaluator imports torch and builds the network first


def wait_accepted(store, job_id: int, proc, timeout_s: float = ACCEPT_TIMEOUT_S) -> dict:
    """`eval --detach`: the job row once its evaluator has passed its checks and planned its work (total > 0), or
    has ended (refused, failed or already done), or its process is gone (reaped), so that "evaluating" is never said
    of a job that is then refused (issue 16 item 10). On timeout, the row as it is."""
    from difftui.engine.eval.jobs import job_finished
    from difftui.engine.launch.liveness import reap_dead_jobs
    deadline = time.monotonic() + timeout_s
    while True:
        job = store.get_job(job_id)
        if job_finished(job) or (job["status"] == "running" and job["total"]) or time.monotonic() > deadline:
            return job
        if proc.poll() is not None:
            time.sleep(POLL_S)                      # its final write, then the reaper decides
            reap_dead_jobs(store)
            return store.get_job(job_id)
        time.sleep(POLL_S / 2)


def register(app: typer.Typer) -> None:
    """Add `eval` and `report` to the CLI (root.py calls this once)."""

    @app.command("eval")
    @user_command
    def eval_(
        ctx: typer.Context,
        run_id: int = typer.Argument(..., metavar="ID", help="run id"),
        fid: bool = typer.Option(False, "--fid", help="FID and improved precision/recall (k=3), playbook 5.5"),
        samples: Optional[int] = typer.Option(None, "--samples", min=2, metavar="N",
                                              help="generated images per FID (default 50,000)"),
        quick: bool = typer.Option(False, "--quick", help="the recipe's quick count (10,000) instead of 50,000"),
        repeats: int = typer.Option(1, "--repeats", min=1, metavar="K", help="compute FID K times; the minimum and the spread"),
        inception: Optional[Path] = typer.Option(None, "--inception", metavar="PATH", help="Inception weights file for FID"),
        snapshot: Optional[int] = typer.Option(None, "--snapshot", metavar="STEP", help="evaluate this snapshot step"),
        curve: bool = typer.Option(False, "--curve", help="the few-step curve: FID and NLL at 5/10/15/20 steps"),
        nll_images: Optional[int] = typer.Option(None, "--nll-images", min=1, metavar="N",
                                                 help="held-out images for NLL (default 8, about a minute on the CPU demo; "
                                                      "a count above the test split's size: all of it)"),
        batch: Optional[int] = typer.Option(None, "--batch", min=1, metavar="N", help="images per batch (default: the recipe's, at least 64)"),
        device: Optional[str] = typer.Option(None, "--device", metavar="DEVICE", help="auto | cpu | cuda | cuda:K (default: the run's)"),
        detach: bool = typer.Option(False, "--detach", help="start the evaluation and return at once"),
    ) -> None:
        """Evaluate a run: its sampler panel, held-out NLL, and with --fid / --curve FID and precision/recall."""
        from difftui.engine.eval.jobs import EVAL_EXIT_USER_ERROR
        from difftui.engine.eval.start import EvalRequest, start_evaluation
        c = ctx_obj(ctx)
        request = EvalRequest(fid=fid, curve=curve, quick=quick, samples=samples, repeats=repeats, inception=inception,
                              snapshot=snapshot, nll_images=nll_images, device=device, batch=batch)
        # The cost first (issue 16 item 5), once the request has passed its checks; LaunchError: one line, exit 2.
        # `--detach` says it with "evaluating", once the evaluator has taken the job (nothing said of a refused one).
        estimate: list[str] = []

        def said(cost) -> None:
            estimate.append(cost.describe())
            if not detach:
                out.print(estimate[0], markup=False, soft_wrap=True)

        started = start_evaluation(c.db, run_id, request, on_estimate=said)
        if started.proc is None:
            out.print(started.message, markup=False)
            return
        job_id, proc = started.job_id, started.proc
        if detach:
            with c.store() as store:
                job = wait_accepted(store, job_id, proc)
            if job["status"] in ("refused", "failed"):
                code = proc.poll()
                fail(job["error"] or f"the evaluator ended with code {code}",
                     code=1 if code not in (None, EVAL_EXIT_USER_ERROR) and job["status"] == "failed" else 2)
            out.print(started.message + (f"; {job['total']:,} units of work planned" if job["total"] else ""),
                      markup=False)
            for line in estimate:
                out.print(line, markup=False, soft_wrap=True)
            if job["status"] == "done":             # done already: its results, as the foreground prints them
                for line in (job["message"] or "").splitlines():
                    out.print(line, markup=False)
            return
        try:
            with c.store() as store:
                job = follow_job(out, store, job_id, proc, f"eval run {run_id}")
                log = Path(store.require_run(run_id)["run_dir"]) / "eval.log"
        except KeyboardInterrupt:
            out.print(f"detached from the evaluation of run {run_id} (job {job_id}); it goes on. Results: "
                      f"difftui show {run_id}")
            return
        code = proc.wait()
        if job["status"] == "done":
            for line in (job["message"] or "").splitlines():
                out.print(line, markup=False)
            return
        message = job["error"] or f"the evaluator ended with code {code}; see {log}"
        if code < 0:
            message += f" (exit: {signal.Signals(-code).name})"
        fail(message, code=2 if code == EVAL_EXIT_USER_ERROR else 1)

    @app.command("report")
    @user_command
    def report(
        ctx: typer.Context,
        run_id: int = typer.Argument(..., metavar="ID", help="run id"),
        output: Optional[Path] = typer.Option(None, "--out", "-o", metavar="PATH",
                                              help="markdown file (default: runs/<id>/report/report.md)"),
    ) -> None:
        """Write a run's report: config with playbook sections, protocols, metric tables, loss curves, grids."""
        from difftui.engine.eval.report import write_report
        c = ctx_obj(ctx)
        if not c.db.exists():
            raise UserError(f"{c.db}: no such run database")
        path = write_report(c.db, run_id, output)
        out.print(f"report of run {run_id}: {path}")


def show_evaluations(out, c, run: dict) -> None:
    """`difftui show`'s evaluation lines: the newest number of each kind with its protocol, the best snapshot,
    and any evaluation still at work."""
    from difftui.engine.store import open_for_reading
    with open_for_reading(c.db) as store:                   # read-only where it must be (show said so already)
        rows = store.eval_results(run["id"])
        jobs = store.jobs_for(run["id"], active=True)
        best = store.get_run(run["id"]).get("best_snapshot")
    for line in evaluation_lines(rows, best):
        out.print(line, markup=False, soft_wrap=True)
    for job in jobs:
        out.print(f"  eval job  {job['id']} {job['status']}: {job['done']}/{job['total']} {job['message'] or ''}",
                  markup=False, soft_wrap=True)


def evaluation_lines(rows: list[dict], best_snapshot: int | None) -> list[str]:
    """One line per evaluation kind (its newest result) plus the best snapshot, protocol beside every number."""
    from difftui.engine.eval.rows import format_metric
    lines = []
    latest: dict[str, dict] = {}
    for r in rows:
        if r["metric"] in ("fid", "nll_bpd") and r.get("kind") in ("fid", "nll"):
            latest[r["kind"]] = r
    if "fid" in latest:
        r = latest["fid"]
        same = {x["metric"]: x["value"] for x in rows if x.get("job_id") == r.get("job_id") and x["step"] == r["step"]
                and x.get("snapshot") == r.get("snapshot") and x.get("kind") == "fid"}
        quick = " quick" if r["protocol"].get("quick") else ""
        rep = f" min of {r['repeats']}, spread {format_metric('spread', r['spread'])}," if (r.get("repeats") or 1) > 1 \
            else ""
        where = f"snapshot {r['snapshot']}" if r.get("snapshot") is not None else f"step {r['step']}"
        lines.append(f"  FID       {format_metric('fid', r['value'])} ({rep} {r['samples']:,} samples{quick}, "
                     f"{r['sampler']}, NFE {r['nfe']}, {where})  precision "
                     f"{format_metric('precision', same.get('precision'))}  recall "
                     f"{format_metric('recall', same.get('recall'))}".replace("( ", "("))
    if "nll" in latest:
        r = latest["nll"]
        lines.append(f"  NLL       {format_metric('nll_bpd', r['value'])} bits/dim on {r['samples']:,} held-out images "
                     f"({r['sampler']}, step {r['step']})")
    if best_snapshot is not None:
        fid = [r for r in rows if r.get("snapshot") == best_snapshot and r["metric"] == "fid" and r.get("kind") == "fid"]
        text = f"  best      snapshot {best_snapshot}"
        if fid:
            r = fid[-1]
            text += (f": FID {format_metric('fid', r['value'])} ({r['samples']:,} samples, {r['sampler']}, NFE "
                     f"{r['nfe']}; lowest FID of the run's snapshots, playbook 5.6)")
        lines.append(text)
    return lines
