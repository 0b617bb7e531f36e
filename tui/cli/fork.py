"""`difftui fork ID --step S --set KEY=VALUE ...` and `difftui recheck CHILD`: a run continued from another run's
checkpoint with changed settings (issue 18 item 3), and the playbook 5.6 re-check of the parent's findings on it
(item 4).

Both are the engine's calls (difftui.engine.launch.fork.fork_run, difftui.engine.doctor.recheck), the ones the TUI
makes; a refusal is one line `difftui: error: ...` and exit 2 (the CLI's rule).
"""

from __future__ import annotations

import sys
from typing import Optional

import typer

from difftui.tui.cli.common import UserError, ctx_obj, launch_plan, out, print_json, user_command
from difftui.tui.cli.follow import follow
from difftui.tui.cli.runs import _check_data_in_process

__all__ = ["register"]


def fork(
    ctx: typer.Context,
    run_id: int = typer.Argument(..., metavar="ID", help="the run to fork"),
    step: Optional[str] = typer.Option(None, "--step", metavar="S",
                                       help="start at its checkpoint at this step, or the nearest one before it "
                                            "(default: its newest checkpoint)"),
    set_: Optional[list[str]] = typer.Option(None, "--set", metavar="KEY=VALUE",
                                             help="change a config key: section.key=value (repeatable)"),
    fresh: bool = typer.Option(False, "--fresh", help="start the changed settings from step 0 (needed when the "
                                                      "change alters the network's shape)"),
    max_steps: Optional[str] = typer.Option(None, "--max-steps", metavar="N",
                                            help="train the fork to this step (default: the parent's end)"),
    name: str = typer.Option("", "--name", metavar="NAME", help="run name (default: dataset-backbone-id)"),
    gpus: Optional[str] = typer.Option(None, "--gpus", metavar="0,1",
                                       help="GPUs to train on (default: as the parent was launched)"),
    nproc_per_node: Optional[int] = typer.Option(None, "--nproc-per-node", metavar="K", min=1,
                                                 help="processes on this machine (default: the parent's)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="say what the fork would do, and create nothing"),
    detach: bool = typer.Option(False, "--detach", help="start the fork and return at once"),
) -> None:
    """Fork a run: a new run from its checkpoint at --step with --set changes (weights, EMA, optimizer, data
    position and x_T carried over); its parent and step are recorded."""
    from difftui.engine.launch.fork import fork_run, plan_fork
    c = ctx_obj(ctx)
    if not c.db.exists():
        raise UserError(f"no run database at {c.db}")
    plan = launch_plan(gpus, nproc_per_node) if gpus is not None or nproc_per_node is not None else None
    if dry_run:
        fork_plan = plan_fork(c.db, run_id, step, set_ or [], fresh=fresh, max_steps=max_steps, name=name)
        out.print(f"would fork run {run_id} {fork_plan.where()} to step {fork_plan.config.recipe.total_steps:,}; "
                  f"{fork_plan.describe_changes()}", markup=False, soft_wrap=True)
        return
    import difftui.engine.data  # noqa: F401  (torch, once: the data check and the device probe)
    done = fork_run(c.db, run_id, step, set_ or [], fresh=fresh, max_steps=max_steps, name=name, plan=plan,
                    check_data=_check_data_in_process)
    out.print(done.message, markup=False, soft_wrap=True)
    if detach:
        out.print(f"watch: difftui show {done.run_id}   re-check: difftui recheck {done.run_id}", markup=False)
        return
    raise typer.Exit(follow(c, done.run_id, done.proc))


def recheck(
    ctx: typer.Context,
    run_id: int = typer.Argument(..., metavar="ID", help="the fork (or clone) to re-check against its parent"),
    rule: Optional[list[str]] = typer.Option(None, "--rule", metavar="RULE",
                                             help="the rule to judge again (repeatable; default: every rule with a "
                                                  "finding on the parent)"),
    evaluate: bool = typer.Option(False, "--evaluate", help="first evaluate parent and child under the same fixed "
                                                            "protocol (playbook 5.6), when the rules read evaluations"),
    as_json: bool = typer.Option(False, "--json", help="the verdicts as JSON"),
) -> None:
    """Re-check a fork (playbook 5.6): the parent's findings judged again on the child, each 'symptom gone', 'still
    there' or 'not enough data yet'. Exit 1 while a symptom is still there."""
    from difftui.engine.doctor.recheck import recheck as judge_again
    from difftui.engine.doctor.rules import RULES
    from difftui.engine.eval.start import start_recheck
    c = ctx_obj(ctx)
    known = [r.id for r in RULES]
    for r in rule or ():
        if r not in known:
            raise UserError(f"--rule {r}: no such rule (rules: {', '.join(known)})")
    with c.reading_store() as store:
        run = store.get_run(run_id)
        if run is None:
            raise UserError(f"no run {run_id} in {c.db}")
        if not run.get("parent_id"):
            raise UserError(f"run {run_id} has no parent (it is no fork or clone); compare it with: difftui compare")
    if evaluate:
        for line in start_recheck(c.db, run["parent_id"], run_id, rules=tuple(rule or ())):
            out.print(line, markup=False, soft_wrap=True)
    with c.reading_store() as store:
        result = judge_again(store, run["parent_id"], run_id, rules=tuple(rule or ()))
    if as_json:
        print_json(result.as_dict())
    else:
        for line in result.lines():
            out.print(line, markup=False, soft_wrap=True)
    sys.stdout.flush()
    raise typer.Exit(1 if result.still_there else 0)


def register(app: typer.Typer) -> None:
    """Add `fork` and `recheck` to the CLI (root.py calls this once)."""
    app.command("fork")(user_command(fork))
    app.command("recheck")(user_command(recheck))
