"""What the doctor says about a run: findings (the playbook's "common problem" seen on the run's own numbers) and needs
notes (a rule that could not judge because the run lacks the data it reads).

    Finding    rule id, severity (warning | info), title, evidence (numbers and the step range), playbook section,
               why (one sentence of that section, in English), suggested edits (config keys and values, the first
               one being the playbook's first fix), a named grid when the fix is a sweep, commands to run, and which
               data the rule used and which it lacked
    Needs      rule id, section, the data that is missing and how to get it
    Diagnosis  every finding and needs note of one judgement, with the rules that ran clean and the cursors read

Plain data (frozen dataclasses of str / float / tuples / dicts): `as_dict()` gives the JSON `difftui doctor --json`
prints, and the TUI (a later part of issue 18) reads the same objects. No torch, no Textual.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SEVERITIES", "Evidence", "Grid", "Finding", "Needs", "Diagnosis", "set_args"]

SEVERITIES = ("warning", "info")                    # a warning makes `difftui doctor` exit 1


@dataclass(frozen=True)
class Evidence:
    """What was seen: named numbers (floats; NaN allowed), the step range they cover, and one line saying it."""
    text: str
    numbers: dict[str, float] = field(default_factory=dict)
    steps: tuple[int, int] | None = None            # first and last training step the numbers come from


@dataclass(frozen=True)
class Grid:
    """A fix that is a small sweep (e.g. playbook 4.5's dropout values): a preset of presets/sweeps/ when one holds
    the grid, and the axes themselves ({"recipe.dropout": [0.1, 0.2, 0.3]})."""
    preset: str | None
    axes: dict[str, tuple[Any, ...]]
    section: str


@dataclass(frozen=True)
class Finding:
    rule: str                                       # stable id, e.g. "vlb-jitter"; one finding per rule and run
    severity: str                                   # "warning" | "info"
    title: str
    section: str                                    # playbook section(s), e.g. "3.3" or "1.4, 4.5, 2.9"
    why: str                                        # one sentence of that section, in English
    evidence: Evidence
    edits: tuple[dict[str, Any], ...] = ()          # alternatives, best first: {"recipe.importance_sampling": True}
    grid: Grid | None = None
    actions: tuple[str, ...] = ()                   # commands that measure or report (e.g. "difftui eval 3 --fid")
    advice: str = ""                                # what the playbook says that no config key expresses
    used: tuple[str, ...] = ()                      # the data the rule read
    lacked: tuple[str, ...] = ()                    # data that would sharpen it, not there

    def __post_init__(self):
        if self.severity not in SEVERITIES:
            raise ValueError(f"finding {self.rule}: severity {self.severity!r} is not one of {SEVERITIES}")

    def as_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))


@dataclass(frozen=True)
class Needs:
    """A rule that could not judge: which data it lacks and how to get it (never a guess)."""
    rule: str
    section: str
    title: str                                      # what the rule would check
    missing: tuple[str, ...]
    how: str = ""                                   # e.g. "difftui eval 3 --curve"

    def as_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))


@dataclass(frozen=True)
class Diagnosis:
    run_id: int
    step: int
    findings: tuple[Finding, ...]
    needs: tuple[Needs, ...]
    clean: tuple[str, ...]                          # rules that had their data and found nothing
    not_applicable: tuple[str, ...]                 # rules that do not apply to this run's config
    seconds: float = math.nan                       # time spent reading and judging

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "warning")

    def as_dict(self) -> dict[str, Any]:
        return {"run": self.run_id, "step": self.step, "findings": [f.as_dict() for f in self.findings],
                "needs": [n.as_dict() for n in self.needs], "clean": list(self.clean),
                "not_applicable": list(self.not_applicable), "seconds": self.seconds}


def set_args(edit: dict[str, Any]) -> list[str]:
    """An edit as `--set KEY=VALUE` arguments (VALUE as YAML reads it back: true, null, 0.0005, quadratic)."""
    def text(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if v is None:
            return "null"
        if isinstance(v, float):
            return f"{v:g}"
        return str(v)
    return [f"{k}={text(v)}" for k, v in edit.items()]


def _plain(value: Any) -> Any:
    """Tuples as lists, recursively (JSON has no tuples)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
