"""Judge a run: every rule that applies to its config, on what runs.db holds (issue 18 item 1).

    diagnose(store, run_id) -> Diagnosis           one judgement (`difftui doctor`, the report)
    Doctor(store, run_id).check() -> Diagnosis     for a dashboard poll: judges again only when the run's tables
                                                   moved (new metric, evals, samples or GPU rows, a new step or
                                                   status), otherwise returns the last judgement at the cost of one
                                                   indexed query; `budget` paces a run that moves on every poll

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
    """A run's judgement kept up to date cheaply: `check()` re-reads only when the run's tables moved.

    `budget` (a fraction of one core, e.g. 0.01) paces a run whose tables move on every poll: after a judgement that
    took t seconds the next one waits at least t / budget seconds (a change of status is judged at once); meanwhile
    `check()` returns the last judgement and `stale` says that newer rows wait. `rules` narrows the judgement (the
    re-check judges one rule)."""

    def __init__(self, store: Any, run_id: int, preset_dirs: tuple = (), *, rules=RULES,
                 budget: float | None = None, clock=time.monotonic):
        self.store = store
        self.run_id = run_id
        self.preset_dirs = tuple(preset_dirs)
        self.rules = tuple(rules)
        self.budget = budget
        self.clock = clock
        self.cursors: tuple | None = None
        self.diagnosis: Diagnosis | None = None
        self.judged = 0                             # how many times the rules ran (the rest were cursor checks)
        self.stale = False                          # the tables moved since the last judgement (paced by budget)
        self._next_at = 0.0

    def check(self, store: Any = None) -> Diagnosis:
        """The current judgement; `store`: the calling thread's Store (a worker opens its own per poll)."""
        store = store if store is not None else self.store
        cursors = run_cursors(store, self.run_id)
        if cursors is None:
            from difftui.engine.store import StoreError
            raise StoreError(f"{store.path}: no run {self.run_id}")
        if cursors == self.cursors and self.diagnosis is not None:
            self.stale = False
            return self.diagnosis
        # cursors: (step, status, newest metric/eval/sample/gpu ids); only a change of status skips the pacing (the
        # step moves on every poll of a running run, as its rows do)
        status_changed = self.cursors is None or cursors[1] != self.cursors[1]
        if self.diagnosis is not None and not status_changed and self.clock() < self._next_at:
            self.stale = True
            return self.diagnosis
        self.diagnosis = diagnose(store, self.run_id, rules=self.rules, preset_dirs=self.preset_dirs)
        self.cursors = cursors
        self.judged += 1
        self.stale = False
        if self.budget:
            self._next_at = self.clock() + self.diagnosis.seconds / self.budget
        return self.diagnosis

    def new_findings(self, before: Diagnosis | None) -> tuple[Finding, ...]:
        """The findings of the current judgement whose rule had none in `before` (for a badge or a bell)."""
        if self.diagnosis is None:
            return ()
        seen = {f.rule for f in before.findings} if before is not None else set()
        return tuple(f for f in self.diagnosis.findings if f.rule not in seen)
