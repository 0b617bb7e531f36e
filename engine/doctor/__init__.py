"""The doctor (issue 18): the playbook's "common problem -> how to fix" pairs judged on a run's own numbers.

    from difftui.engine.doctor import diagnose, Doctor
    d = diagnose(store, run_id)          # Diagnosis: findings (warning | info), needs notes, clean rules
    for f in d.findings: f.rule, f.section, f.title, f.evidence, f.edits, f.grid, f.why

Layout: finding.py (the types) · thresholds.py (every threshold, named and cited) · measures.py (the numbers computed
from series, with their formulas) · view.py (the bounded reads of one run, through the Store API) · rule.py (how a
rule is declared) · rules/ (one module per playbook chapter) · judge.py (diagnose, and Doctor for dashboard polls).
No torch and no Textual here; the grid numbers the rules read are measured by the engine (engine/eval/diagnostics.py).
"""

from difftui.engine.doctor.finding import Diagnosis, Evidence, Finding, Grid, Needs
from difftui.engine.doctor.judge import Doctor, diagnose

__all__ = ["diagnose", "Doctor", "Diagnosis", "Finding", "Needs", "Evidence", "Grid"]
