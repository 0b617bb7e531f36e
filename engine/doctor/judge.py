"""Judge a run: every rule that applies to its config, on what runs.db holds (issue 18 item 1).

    diagnose(store, run_id) -> Diagnosis           one judgement (`difftui doctor`, the report)
    Doctor(store, run_id).check() -> Diagnosis     for a dashboard poll: judges again only when the run's tables
                                                   moved (new metric, evals, samples or GPU rows, a new step or
                                                   status), otherwise returns the last judgement at the cost of one
                                                   indexed query

A rule that raises is reported as a needs note naming the error (one rule's bug never hides the others' findings).
"""

from __future__ import annotations

import time
from typing import Any

from difftui.engine.doctor.finding import Diagnosis, Finding, Needs
from difftui.engine.doctor.rules import RULES
from difftui.engine.doctor.view import RunView
from difftui.engine.store.findings_reads import run_cursors

__all__ = ["diagnose", "Doctor"]


def diagnose(store: Any, run_id: int, *, rules=RULES, preset_dirs: tuple = ()) -> Diagnosis:
    """Every applicable rule on run `run_id` of `store` (a StoreError when there is no such run); `preset_dirs`: the
    user's preset folders (`--presets`), where a run's recipe and tier presets may live."""
    start = time.perf_counter()
    view = RunView(store, run_id, preset_dirs=preset_dirs)
    findings: list[Finding] = []
    needs: list[Needs] = []
    clean: list[str] = []
    not_applicable: list[str] = []
    for r in rules:
        try:
            if not r.applies(view):
                not_applicable.append(r.id)
                continue
            result = r.check(view)
        except Exception as e:                      # a rule's own fault: said, never hiding the other rules
            result = Needs(r.id, r.section, r.title, (f"the rule failed: {type(e).__name__}: {e}",))
        if result is None:
            clean.append(r.id)
        elif isinstance(result, Finding):
            findings.append(result)
        else:
            needs.append(result)
    findings.sort(key=lambda f: f.severity != "warning")          # warnings first, the rules' order kept
    return Diagnosis(run_id=run_id, step=view.step, findings=tuple(findings), needs=tuple(needs),
                     clean=tuple(clean), not_applicable=tuple(not_applicable),
                     seconds=time.perf_counter() - start)


class Doctor:
    """A run's judgement kept up to date cheaply: `check()` re-reads only when the run's tables moved."""

    def __init__(self, store: Any, run_id: int, preset_dirs: tuple = ()):
        self.store = store
        self.run_id = run_id
        self.preset_dirs = tuple(preset_dirs)
        self.cursors: tuple | None = None
        self.diagnosis: Diagnosis | None = None
        self.judged = 0                             # how many times the rules ran (the rest were cursor checks)

    def check(self) -> Diagnosis:
        cursors = run_cursors(self.store, self.run_id)
        if cursors is None:
            from difftui.engine.store import StoreError
            raise StoreError(f"{self.store.path}: no run {self.run_id}")
        if cursors != self.cursors or self.diagnosis is None:
            self.diagnosis = diagnose(self.store, self.run_id, preset_dirs=self.preset_dirs)
            self.cursors = cursors
            self.judged += 1
        return self.diagnosis

    def new_findings(self, before: Diagnosis | None) -> tuple[Finding, ...]:
        """The findings of the current judgement whose rule had none in `before` (for a badge or a bell)."""
        if self.diagnosis is None:
            return ()
        seen = {f.rule for f in before.findings} if before is not None else set()
        return tuple(f for f in self.diagnosis.findings if f.rule not in seen)
