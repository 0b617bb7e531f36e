"""How a rule is declared: `@rule(id, section, title, applies=...)` on a small function of a `RunView`.

`applies(view)` says whether the run's config is one the rule is about (a DyDiT rule on a U-Net run does not apply);
the function returns a `Finding` when it sees the symptom, a `Needs` note when the run lacks the data it reads, and
None when it had its data and the run is clean. Rules read a `RunView` only (no SQL, no torch) and take every number
from `thresholds`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union

from difftui.engine.doctor.finding import Finding, Needs
from difftui.engine.doctor.view import RunView

__all__ = ["Rule", "REGISTERED", "rule", "fmt", "span_text"]

Result = Union[Finding, Needs, None]


@dataclass(frozen=True)
class Rule:
    id: str
    section: str
    title: str
    check: Callable[[RunView], Result]
    applies: Callable[[RunView], bool]


REGISTERED: list[Rule] = []


def _always(view: RunView) -> bool:
    return True


def rule(rule_id: str, section: str, title: str, *, applies: Callable[[RunView], bool] = _always):
    """Register a rule function (in import order: the order findings are listed in)."""
    def register(fn: Callable[[RunView], Result]) -> Callable[[RunView], Result]:
        if any(r.id == rule_id for r in REGISTERED):
            raise ValueError(f"rule {rule_id!r} registered twice")
        REGISTERED.append(Rule(rule_id, section, title, fn, applies))
        return fn
    return register


def fmt(x: float, digits: int = 3) -> str:
    """A number for an evidence line: 3 significant digits, NaN as 'nan'."""
    if x != x:
        return "nan"
    return f"{x:.{digits}g}"


def span_text(steps: tuple[int, int] | None) -> str:
    return f"steps {steps[0]:,}-{steps[1]:,}" if steps else "no steps"
