"""`difftui doctor ID`: the playbook's findings on one run (issue 18), as a table or `--json`.

Exit code 0 when no warning stands (info findings and needs notes do not count), 1 when one does, 2 for a user
error (no such run or database). The judgement is engine/doctor's `diagnose`, the one the TUI and the report ask.
"""

from __future__ import annotations

import typer

from difftui.tui.cli.common import console, ctx_obj, get_run, print_json, print_table, user_command

__all__ = ["register", "finding_rows"]


def finding_rows(diagnosis) -> list[list[str]]:
    """One row per finding: severity, section, title, evidence (with its steps), suggested edits."""
    from difftui.engine.doctor.finding import set_args
    rows = []
    for f in diagnosis.findings:
        fixes = [" ".join(f"--set {a}" for a in set_args(e)) for e in f.edits]
        if f.grid is not None:
            axes = "; ".join(f"{k} in {list(v)}" for k, v in f.grid.axes.items())
            fixes.append(f"sweep {f.grid.preset or ''} ({axes})".replace("sweep  (", "sweep ("))
        fixes += list(f.actions)
        rows.append([f.severity, f.section, f.title, f.evidence.text, "\n".join(fixes) or "-"])
    return rows


def _section(section: str) -> str:
    return "no playbook section: difftui's own" if section == "-" else f"playbook {section}"


def register(app: typer.Typer) -> None:
    """Add `doctor` to the CLI (root.py calls this once)."""

    @app.command("doctor")
    @user_command
    def doctor(
        ctx: typer.Context,
        run_id: int = typer.Argument(..., metavar="ID", help="run id"),
        as_json: bool = typer.Option(False, "--json", help="the findings, needs notes and clean rules as JSON"),
        why: bool = typer.Option(False, "--why", help="also print each finding's playbook sentence and advice"),
    ) -> None:
        """Judge a run against the playbook: findings with evidence, section and the suggested --set edits.
        Exit 1 when a warning stands."""
        from rich.table import Table

        from difftui.engine.doctor import diagnose
        c = ctx_obj(ctx)
        with c.reading_store() as store:
            run = get_run(store, run_id)
            diagnosis = diagnose(store, run_id, preset_dirs=tuple(c.presets))
        code = 1 if diagnosis.warnings else 0
        if as_json:
            print_json(diagnosis.as_dict())
            raise typer.Exit(code)
        out = console()
        n_warn, n_info = len(diagnosis.warnings), len(diagnosis.findings) - len(diagnosis.warnings)
        out.print(f"run {run_id} {run['name']} ({run['status']}, step {diagnosis.step:,}): {n_warn} warning(s), "
                  f"{n_info} info; {len(diagnosis.clean)} rule(s) clean, {len(diagnosis.needs)} without their data, "
                  f"{len(diagnosis.not_applicable)} not applicable", markup=False, soft_wrap=True)
        if diagnosis.findings:
            table = Table(show_lines=True)
            for header in ("severity", "playbook", "finding", "evidence", "suggested"):
                table.add_column(header, overflow="fold")
            for row in finding_rows(diagnosis):
                table.add_row(*row)
            print_table(out, table)
        if why:
            for f in diagnosis.findings:
                out.print(f"{f.rule} ({_section(f.section)}): {f.why} {f.advice}".rstrip(), markup=False,
                          soft_wrap=True)
        for n in diagnosis.needs:
            how = f"; to measure: {n.how}" if n.how else ""
            out.print(f"not judged  {n.rule} ({_section(n.section)}): needs {'; '.join(n.missing)}{how}",
                      markup=False, soft_wrap=True)
        raise typer.Exit(code)
