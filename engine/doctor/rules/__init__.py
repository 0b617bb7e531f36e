"""The playbook's rules, one small function each, one module per chapter (issue 18 item 1).

    data        1.2 / 1.5  train/test overlap, near-duplicates (the data check's cached table)
    losses      3.3  the VLB curve jitters under uniform timestep sampling
    optim       4.3  skipped non-finite steps under mixed precision; clipping active most of the time
                4.2 / 1.8  the loss oscillates or diverges after a change of width or batch, lr off the tier's rule
    dynamic     4.4 / 3.5  DyDiT's router collapses or leaves the lambda band after the warm-up
    overfit     1.4 / 4.5 / 2.9  held-out NLL or FID rising while the loss falls; samples nearing training images
    grids       0.0 / 1.0  the EMA grid far from the data's statistics; 3.4 / 5.4 colour drift, over-saturation
    sampling    3.6 / 5.7  the few-step curve collapses; 5.2 DDIM consistency; 5.6 the best snapshot is older
    throughput  a GPU run starved by its data loader; MFU far below the tier's usual

`RULES` lists them in that order (the order findings are shown in).
"""

from __future__ import annotations

from difftui.engine.doctor.rule import REGISTERED, Rule
from difftui.engine.doctor.rules import data, dynamic, grids, losses, optim, overfit, sampling, throughput

__all__ = ["RULES", "rule_by_id"]

_ORDER = (data, losses, optim, dynamic, overfit, grids, sampling, throughput)
RULES: tuple[Rule, ...] = tuple(sorted(REGISTERED, key=lambda r: [m.__name__ for m in _ORDER].index(
    r.check.__module__)))


def rule_by_id(rule_id: str) -> Rule:
    for r in RULES:
        if r.id == rule_id:
            return r
    raise KeyError(rule_id)
