"""The dashboard's findings panel (issue 18 item 2): what the doctor (difftui.engine.doctor) found on this run.

Each finding is one entry of a list: its severity and title, what was seen (the numbers, over which steps), the
playbook section, why it matters and the suggested edit (the first of its alternatives, as `--set` arguments, or the
grid when the fix is a sweep). Enter or `?` opens the whole text (FindingScreen), `f` the fix: the fork review with
the edit applied, or the sweep setup with the grid (the dashboard's `fix_finding`). The panel never reads runs.db:
the dashboard's poll worker judges the run (`Doctor.check`, which costs one indexed query when nothing moved) and
hands the Diagnosis to `show`.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from difftui.engine.doctor.finding import Diagnosis, Finding, set_args
from difftui.engine.numbers import format_setting
from difftui.tui import bindings

__all__ = ["FindingsPanel", "FindingsList", "finding_summary", "finding_text", "fix_words", "SEVERITY_STYLES"]

SEVERITY_STYLES = {"warning": "bold yellow", "info": "cyan"}


def fix_words(finding: Finding) -> str:
    """The suggested change in one line: the first edit as `--set` arguments, else the grid, else the advice."""
    if finding.edits:
        return " ".join(set_args(finding.edits[0]))
    if finding.grid is not None:
        return grid_words(finding.grid)
    return finding.advice or (finding.actions[0] if finding.actions else "")


def grid_words(grid: Any) -> str:
    """A fix grid in words: 'sweep backbone.arch.dropout in 0.1, 0.2, 0.3 (preset ...)'."""
    axes = "; ".join(f"{k} in {', '.join(format_setting(v) for v in values)}" for k, values in grid.axes.items())
    return f"sweep {axes}" + (f" (preset {grid.preset})" if grid.preset else "")


def finding_summary(finding: Finding) -> Text:
    """A finding as the panel's entry: four short lines (severity + title, seen, section + why, fix)."""
    text = Text()
    text.append(f"{finding.severity.upper()} ", style=SEVERITY_STYLES.get(finding.severity, ""))
    text.append(finding.title, style="bold")
    text.append(f"\n  seen: {finding.evidence.text}")
    text.append(f"\n  playbook {finding.section}: ", style="dim")
    text.append(finding.why, style="dim")
    fix = fix_words(finding)
    if fix:
        text.append("\n  fix: ", style="green")
        text.append(fix)
    return text


def finding_text(finding: Finding) -> Text:
    """The whole finding (the full-text view): every edit, the grid, the commands, the data used and lacked."""
    text = Text()
    text.append(f"{finding.severity.upper()}  ", style=SEVERITY_STYLES.get(finding.severity, ""))
    text.append(f"{finding.title}  ", style="bold")
    text.append(f"(rule {finding.rule}, playbook {finding.section})\n\n", style="dim")
    steps = finding.evidence.steps
    text.append("seen", style="bold")
    text.append(f" (steps {steps[0]:,}-{steps[1]:,})" if steps else "")
    text.append(f": {finding.evidence.text}\n")
    for name, value in finding.evidence.numbers.items():
        text.append(f"    {name} = {format_setting(value)}\n", style="dim")
    text.append("\nwhy", style="bold")
    text.append(f": {finding.why}\n")
    if finding.edits:
        text.append("\nsuggested edits (best first; f forks with the first):\n", style="bold")
        for i, edit in enumerate(finding.edits, 1):
            text.append(f"  {i}. --set {' --set '.join(set_args(edit))}\n")
    if finding.grid is not None:
        text.append(f"\nsweep ({'g' if finding.edits else 'f or g'} opens the sweep setup with it): ", style="bold")
        text.append(grid_words(finding.grid) + "\n")
    if finding.advice:
        text.append("\nadvice", style="bold")
        text.append(f": {finding.advice}\n")
    for command in finding.actions:
        text.append(f"  $ {command}\n", style="cyan")
    if finding.used:
        text.append(f"\nread: {', '.join(finding.used)}\n", style="dim")
    if finding.lacked:
        text.append(f"would sharpen it, not there: {', '.join(finding.lacked)}\n", style="dim")
    return text


class FindingsList(OptionList):
    """The findings, one option each; Enter / ? the full text, f the fix (the messages below, for the screen)."""

    BINDINGS = bindings.FINDINGS

    class Chosen(Message):
        """A finding to act on: `what` is "details", "fix" or "grid" (its sweep, when it has one)."""

        def __init__(self, finding: Finding, what: str) -> None:
            super().__init__()
            self.finding = finding
            self.what = what

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, markup=False)
        self.findings: tuple[Finding, ...] = ()

    def set_findings(self, findings: tuple[Finding, ...]) -> None:
        if findings == self.findings:
            return
        keep = self.highlighted_option.id if self.highlighted_option is not None else None
        self.findings = findings
        self.clear_options()
        self.add_options([Option(finding_summary(f), id=f.rule) for f in findings])
        if findings:
            ids = [f.rule for f in findings]
            self.highlighted = ids.index(keep) if keep in ids else 0

    def current(self) -> Finding | None:
        i = self.highlighted
        return self.findings[i] if i is not None and 0 <= i < len(self.findings) else None

    def _chosen(self, what: str) -> None:
        finding = self.current()
        if finding is not None:
            self.post_message(self.Chosen(finding, what))

    def action_details(self) -> None:
        self._chosen("details")

    def action_fix(self) -> None:
        self._chosen("fix")

    def action_grid(self) -> None:
        self._chosen("grid")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self._chosen("details")


class FindingsPanel(Vertical):
    """A header line (how many, how many rules lack data, whether judging waits) and the findings list."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.diagnosis: Diagnosis | None = None
        self.stale = False
        self.drawn = False

    def compose(self):
        yield Static(Text("judging ...", style="dim"), id="findings-head")
        yield FindingsList(id="findings-list")

    def show(self, diagnosis: Diagnosis | None, *, stale: bool = False) -> None:
        """Draw a judgement (None: the doctor could not judge this run; said in the header)."""
        if diagnosis is self.diagnosis and stale == self.stale and self.drawn:
            return                                  # the poll brought no new judgement: nothing is redrawn
        self.diagnosis, self.stale, self.drawn = diagnosis, stale, True
        head = Text()
        if diagnosis is None:
            head.append("the doctor could not judge this run", style="dim")
        else:
            warnings = len(diagnosis.warnings)
            infos = len(diagnosis.findings) - warnings
            if not diagnosis.findings:
                head.append(f"no finding at step {diagnosis.step:,}", style="green")
            else:
                head.append(f"{warnings} warning(s)", style=SEVERITY_STYLES["warning"] if warnings else "dim")
                head.append(f", {infos} note(s) at step {diagnosis.step:,}")
            if diagnosis.needs:
                head.append(f"; {len(diagnosis.needs)} rule(s) lack data (difftui doctor {diagnosis.run_id})",
                            style="dim")
            if stale:
                head.append("; newer rows wait", style="dim")
            head.append("\nEnter/?: in full   f: fix (fork or sweep)", style="dim")
        self.query_one("#findings-head", Static).update(head)
        self.query_one(FindingsList).set_findings(diagnosis.findings if diagnosis is not None else ())

    @property
    def count(self) -> int:
        return len(self.diagnosis.findings) if self.diagnosis is not None else 0


def worst(diagnosis: Any) -> str:
    """'warning', 'info' or '' (the history's column reads the same word)."""
    if diagnosis is None or not diagnosis.findings:
        return ""
    return "warning" if diagnosis.warnings else "info"
