"""DyDiT's router and its FLOPs budget: playbook 4.4 (warm-up against router collapse) and 3.5 (the budget term)."""

from __future__ import annotations

import numpy as np

from difftui.engine.doctor.finding import Evidence, Finding, Needs
from difftui.engine.doctor.measures import finite
from difftui.engine.doctor.rule import fmt, rule, span_text
from difftui.engine.doctor.thresholds import FLOPS_BAND, MIN_ROWS, ROUTER_PINNED, ROUTER_STAYS, below, exceeds
from difftui.engine.doctor.view import RunView

A2_WARMUP_STEPS = 30_000                            # playbook A.2 (P5 Table 6): DiT-XL's warm-up, the only one given

# playbook 4.4, why: 动态 mask 引入离散决策与额外优化难度; warm-up 让主干保持可靠梯度, 再逐步让路由器接管。
WHY_4_4 = ("Dynamic masks bring discrete decisions and extra optimisation difficulty; a warm-up keeps reliable "
           "gradients for the backbone before the routers gradually take over.")
# playbook 3.5, why: 动态路由会自然倾向“多算力以降损失”; FLOPs 约束项把训练目标显式绑定到推理预算, 让效率-质量 tradeoff 可控。
WHY_3_5 = ("Dynamic routing naturally tends to spend more compute to lower the loss; the FLOPs term binds the "
           "training objective explicitly to the inference budget, so the efficiency-quality trade-off stays "
           "controllable.")
ADVICE = ("Playbook 4.4 fix 1: stabilise training with a warm-up that keeps the complete model's loss L_complete, and "
          "remove it only once the router no longer collapses and the budget term is met (A.2 gives DiT-XL 30,000 "
          "warm-up steps). Playbook 3.5 fix 2: if quality holds but the budget does not, adjust the target lambda "
          "(A.2's grid) or weigh the FLOPs term more, and check that F_dynamic is counted the same way.")


@rule("router", "4.4, 3.5", "DyDiT's router collapses or leaves the lambda band after the warm-up",
      applies=lambda v: v.cfg("backbone.family") == "dydit")
def router(v: RunView) -> Finding | Needs | None:
    warmup = int(v.cfg("backbone.arch.warmup_steps", 0) or 0)
    target = v.cfg("recipe.flops_lambda")
    if v.step <= warmup:
        return Needs("router", "4.4, 3.5", "the router after the warm-up",
                     (f"training past the warm-up (step {v.step:,} of warm-up {warmup:,})",), "let the run train")
    s = v.tail("flops_ratio").after(warmup)
    if len(s):
        # The latter half of what was logged after the warm-up: the router has had time to move.
        s = s.after(int(s.steps[0] + (s.steps[-1] - s.steps[0]) / 2))
    ratios = finite(s.values)
    if below(ratios.size, MIN_ROWS) or target is None:
        return Needs("router", "4.4, 3.5", "the router after the warm-up",
                     (f"flops_ratio after step {warmup:,}: at least {MIN_ROWS.value:g} logged values in the judged "
                      f"half (has {ratios.size})",), "let the run train longer")
    pin = ROUTER_PINNED.value
    pinned = float(np.mean((ratios <= pin) | (ratios >= 1 - pin)))
    median = float(np.median(ratios))
    target = float(target)
    numbers = {"median_ratio": median, "lambda": target, "pinned_fraction": pinned, "warmup_steps": float(warmup)}
    longer = A2_WARMUP_STEPS if warmup < A2_WARMUP_STEPS else 2 * warmup
    edits = ({"backbone.arch.warmup_steps": longer},)
    used = ("config backbone.family, backbone.arch.warmup_steps, recipe.flops_lambda", "metric flops_ratio")
    if not below(pinned, ROUTER_STAYS):
        side = "1 (every head, channel group and token on)" if median >= 0.5 else "0 (everything off)"
        evidence = Evidence(f"F_dyn/F_static is pinned near {side} in {100 * pinned:.0f}% of {ratios.size} logged "
                            f"values after the warm-up ({span_text(s.span)}), median {fmt(median)}, target lambda "
                            f"{target:g}", numbers, s.span)
        return Finding("router", "warning", "DyDiT's router collapsed", "4.4, 3.5", WHY_4_4, evidence, edits=edits,
                       advice=ADVICE, used=used)
    if exceeds(abs(median - target), FLOPS_BAND):
        evidence = Evidence(f"F_dyn/F_static median {fmt(median)} over {ratios.size} logged values after the warm-up "
                            f"({span_text(s.span)}) is {fmt(abs(median - target))} from lambda {target:g}, outside "
                            f"the +-{FLOPS_BAND.value:g} band", numbers, s.span)
        return Finding("router", "warning", "DyDiT's FLOPs ratio is outside the lambda band", "3.5, 4.4", WHY_3_5,
                       evidence, edits=edits, advice=ADVICE, used=used)
    return None
