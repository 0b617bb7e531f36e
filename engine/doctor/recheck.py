"""The re-check (issue 18 item 4; playbook 5.6's fixed protocol): after a fork or a fix, is the symptom gone?

    recheck(store, parent_id, child_id, rules=()) -> Recheck
        each rule (default: every rule with a finding on the parent) judged again on the child, on the child's own
        rows (a fork's metrics start at its step): "symptom gone", "still there", or "not enough data yet (needs
        ...)"; and the two runs' newest evaluations under one protocol, side by side
    recheck_protocol(parent_config, child_config, rules) -> Protocol
        the one evaluation both runs get: the same deterministic sampler and NFE (eval/selection.py, the evaluator's
        rule), the same sample count and held-out images (the parent's quick count), the few-step curve when a rule
        reads it; engine/eval/start.py's `start_recheck` starts it for both

No torch, no Textual: the compare view asks `recheck` from its poll worker, `difftui recheck` from the shell.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable

from difftui.engine.doctor.finding import Diagnosis, Finding
from difftui.engine.doctor.judge import diagnose
from difftui.engine.doctor.rules import RULES, rule_by_id
from difftui.engine.numbers import format_number

__all__ = ["GONE", "STILL", "WAITING", "Verdict", "Recheck", "Protocol", "recheck", "recheck_protocol",
           "EVAL_RULES"]

GONE, STILL, WAITING = "symptom gone", "still there", "not enough data yet"
# The rules that read evaluations (the rest judge the training rows and grids the child logs anyway), and what each
# needs of the fixed-protocol evaluation beyond the panel, the held-out NLL and FID.
EVAL_RULES = {"overfitting": {}, "few-step-collapse": {"curve": True}, "ddim-consistency": {},
              "best-snapshot": {}}
# The numbers shown side by side: (evaluation kind, metric), each under one protocol for both runs.
SIDE_BY_SIDE = (("fid", "fid"), ("fid", "precision"), ("fid", "recall"), ("nll", "nll_bpd"),
                ("consistency", "consistency"))


@dataclass(frozen=True)
class Verdict:
    rule: str
    section: str
    title: str
    state: str                                      # GONE | STILL | WAITING
    parent: str                                     # what the parent showed (the finding's evidence)
    child: str                                      # what the child shows (evidence, needs, or why it is gone)
    needs: tuple[str, ...] = ()

    def words(self) -> str:
        if self.state == WAITING and self.needs:
            return f"{WAITING} (needs {'; '.join(self.needs)})"
        return self.state

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "section": self.section, "title": self.title, "state": self.state,
                "words": self.words(), "parent": self.parent, "child": self.child, "needs": list(self.needs)}


@dataclass(frozen=True)
class Recheck:
    parent_id: int
    child_id: int
    fork_step: int | None
    child_step: int
    verdicts: tuple[Verdict, ...]
    side_by_side: tuple[dict[str, Any], ...] = ()   # {kind, metric, sampler, nfe, samples, parent, child} (values, steps)
    parent_clean: bool = False                      # the parent had no finding: nothing to re-check
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def still_there(self) -> bool:
        return any(v.state == STILL for v in self.verdicts)

    def headline(self) -> str:
        where = f" (fork at step {self.fork_step:,})" if self.fork_step else ""
        if self.parent_clean:
            return f"run {self.parent_id} had no finding to re-check on run {self.child_id}{where}"
        counts = {s: sum(v.state == s for v in self.verdicts) for s in (GONE, STILL, WAITING)}
        parts = [f"{n} {s}" for s, n in counts.items() if n]
        return f"re-check of run {self.child_id}{where} against run {self.parent_id}: {', '.join(parts)}"

    def lines(self) -> list[str]:
        out = [self.headline()]
        for v in self.verdicts:
            out.append(f"  {v.rule} (playbook {v.section}): {v.words()}")
            out.append(f"    parent: {v.parent}")
            if v.state != WAITING:
                out.append(f"    child:  {v.child}")
        for row in self.side_by_side:
            out.append(f"  {row['metric']} ({row['sampler']}, NFE {row['nfe']}, {format_number(row['samples'])} "
                       f"samples): run {self.parent_id} {_value(row['parent'])}, run {self.child_id} "
                       f"{_value(row['child'])}")
        out += [f"  note: {n}" for n in self.notes]
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"parent": self.parent_id, "child": self.child_id, "fork_step": self.fork_step,
                "child_step": self.child_step, "verdicts": [v.as_dict() for v in self.verdicts],
                "side_by_side": list(self.side_by_side), "parent_clean": self.parent_clean,
                "still_there": self.still_there, "notes": list(self.notes), "headline": self.headline()}


def _value(point: tuple[float, int] | None) -> str:
    return f"{format_number(point[0])} at step {point[1]:,}" if point else "not evaluated"


#----------------------------------------------------------------------------
# The verdict.

def _verdict(rule_id: str, before: Finding | None, after: Diagnosis) -> Verdict:
    r = rule_by_id(rule_id)
    parent = before.evidence.text if before is not None else "no finding"
    found = next((f for f in after.findings if f.rule == rule_id), None)
    if found is not None:
        return Verdict(rule_id, r.section, r.title, STILL, parent, found.evidence.text)
    needs = next((n for n in after.needs if n.rule == rule_id), None)
    if needs is not None:
        how = f"; to measure: {needs.how}" if needs.how else ""
        return Verdict(rule_id, r.section, r.title, WAITING, parent, f"needs {'; '.join(needs.missing)}{how}",
                       needs=tuple(needs.missing))
    if rule_id in after.not_applicable:
        return Verdict(rule_id, r.section, r.title, GONE, parent, "the rule no longer applies to the child's config")
    return Verdict(rule_id, r.section, r.title, GONE, parent, "judged on the child's own rows: not seen")


def recheck(store: Any, parent_id: int, child_id: int, *, rules: Iterable[str] = (),
            preset_dirs: tuple = ()) -> Recheck:
    """The parent's findings (or `rules`) judged again on the child; a StoreError when either run is gone."""
    child_run = store.require_run(child_id)
    wanted = tuple(rules)
    parent_diag = diagnose(store, parent_id, preset_dirs=preset_dirs,
                           rules=[rule_by_id(r) for r in wanted] if wanted else RULES)
    if not wanted:
        wanted = tuple(f.rule for f in parent_diag.findings)
    for r in wanted:
        rule_by_id(r)                               # an unknown id: KeyError, said by the caller
    child_diag = diagnose(store, child_id, rules=[rule_by_id(r) for r in wanted], preset_dirs=preset_dirs)
    before = {f.rule: f for f in parent_diag.findings}
    verdicts = tuple(_verdict(r, before.get(r), child_diag) for r in wanted)
    notes = []
    parent_cfg, child_cfg = _config(store, parent_id), _config(store, child_id)
    try:
        mismatch = recheck_protocol(parent_cfg, child_cfg, wanted).mismatch
    except Exception as e:                          # a config this difftui cannot read: said, not fatal
        mismatch = f"the fixed protocol could not be derived ({type(e).__name__}: {e})"
    if mismatch:
        notes.append(mismatch)
    return Recheck(parent_id, child_id, child_run.get("fork_step"), int(child_run["step"] or 0), verdicts,
                   side_by_side=tuple(_side_by_side(store, parent_id, child_id)),
                   parent_clean=not parent_diag.findings and not rules, notes=tuple(notes))


def _config(store: Any, run_id: int) -> dict[str, Any]:
    return json.loads(store.require_run(run_id)["config"])


def _side_by_side(store: Any, parent_id: int, child_id: int) -> list[dict[str, Any]]:
    """The newest value of each SIDE_BY_SIDE metric under a protocol (sampler, NFE, sample count) both runs were
    evaluated with; the parent's newest protocol first."""
    rows = {run: store.eval_results(run) for run in (parent_id, child_id)}
    out = []
    for kind, metric in SIDE_BY_SIDE:
        newest: dict[int, dict[tuple, tuple[float, int]]] = {}
        for run, rs in rows.items():
            for r in rs:
                if r.get("kind") == kind and r["metric"] == metric and r.get("snapshot") is None:
                    newest.setdefault(run, {})[(r["sampler"], r["nfe"], r.get("samples"))] = (float(r["value"]),
                                                                                            int(r["step"]))
        shared = [k for k in newest.get(parent_id, {}) if k in newest.get(child_id, {})]
        if shared:
            key = shared[-1]
            out.append({"kind": kind, "metric": metric, "sampler": key[0], "nfe": key[1], "samples": key[2],
                        "parent": newest[parent_id][key], "child": newest[child_id][key]})
    return out


#----------------------------------------------------------------------------
# The fixed protocol both runs are evaluated under.

@dataclass(frozen=True)
class Protocol:
    """The one evaluation both runs get (engine/eval/start.py's `start_recheck` turns it into an EvalRequest)."""
    samples: int                                    # FID's generated images: the parent's quick count (playbook 5.5)
    curve: bool                                     # the few-step curve too (a rule reads it)
    line: str                                       # the protocol in words
    mismatch: str | None                            # why the two runs cannot share the fixed sampler, or None


def recheck_protocol(parent: dict[str, Any], child: dict[str, Any], rules: Iterable[str] = ()) -> Protocol:
    """The same deterministic sampler and NFE (eval/selection.py, the evaluator's rule), the same sample count and
    held-out images (the quick counts), the few-step curve when a rule reads it."""
    from difftui.engine.config.catalog import config_from_dict
    from difftui.engine.eval.selection import selection_spec
    pc, cc = config_from_dict(parent, "parent config"), config_from_dict(child, "child config")
    spec, child_spec = selection_spec(pc), selection_spec(cc)
    samples = pc.recipe.eval_quick_samples
    curve = any(EVAL_RULES.get(r, {}).get("curve") for r in rules)
    line = (f"{spec.describe()} (NFE {spec.nfe}), {format_number(samples)} samples, held-out NLL on the quick "
            f"count" + (", the few-step curve" if curve else ""))
    mismatch = None
    if spec != child_spec:
        mismatch = (f"the fork changed the fixed sampler ({spec.describe()} -> {child_spec.describe()}): each run is "
                    f"evaluated with its own, so FID is not compared under one protocol (playbook 5.6)")
    return Protocol(samples, curve, line, mismatch)
