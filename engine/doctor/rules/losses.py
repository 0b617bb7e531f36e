"""Chapter 3, the losses: playbook 3.3 (the VLB term's variance and importance sampling)."""

from __future__ import annotations

import math

from difftui.engine.doctor.finding import Evidence, Finding, Needs
from difftui.engine.doctor.measures import finite, per_image_cv
from difftui.engine.doctor.rule import fmt, rule, span_text
from difftui.engine.doctor.thresholds import EARLY_FRACTION, IS_WARMUP, MIN_ROWS, VLB_JITTER, below, exceeds
from difftui.engine.doctor.view import RunView

# playbook 3.3, "why": P1 观察到 VLB 各时间步项的贡献差异大, 均匀采样会引入不必要噪声; 重要性采样能显著降低目标方差并改进优化。
WHY_3_3 = ("P1 observes that the VLB terms of different timesteps contribute very differently, so uniform sampling "
           "adds needless noise; importance sampling markedly lowers the objective's variance and improves "
           "optimisation.")
# playbook 3.3, fix 2 (and 3.0 fix 2 for the lambda step).
ADVICE_3_3 = ("Playbook 3.3 fix 2: if the VLB still jitters, lower lambda, enlarge the batch, or delay the VLB term "
              "(warm up with L_simple until the backbone is stable); the playbook names no size for 'one notch' of "
              "lambda, difftui suggests halving it. An L_simple warm-up is not one config key: a learned variance "
              "needs L_hybrid from the start, so it means a first run with loss simple / variance fixed_small.")


@rule("vlb-jitter", "3.3", "the VLB curve jitters (timestep sampling)",
      applies=lambda v: v.cfg("recipe.loss") in ("hybrid", "vlb"))
def vlb_jitter(v: RunView) -> Finding | Needs | None:
    importance = bool(v.cfg("recipe.importance_sampling"))
    start = v.early_end(EARLY_FRACTION.value)
    if importance:                                  # P1's resampler draws t uniformly until it is warm (a fork's
        # resampler warms up afresh unless its parent's was warm: counted from the fork, the cautious choice)
        start = max(start, v.first_step + math.ceil(IS_WARMUP.value * 10 * int(v.cfg("recipe.diffusion_steps", 1000))
                                                    / int(v.cfg("recipe.batch_size", 1))))
    s = v.tail("L_vlb").after(start)
    n = finite(s.values).size
    if below(n, MIN_ROWS):
        after = f" after step {start:,} (" + ("the importance sampler's warm-up" if importance else
                                              "the first 20% of the run's own training") + ")"
        return Needs("vlb-jitter", "3.3", "the VLB curve's jitter",
                     (f"L_vlb: at least {MIN_ROWS.value:g} logged values{after} (has {n})",),
                     "let the run train longer")
    cv = per_image_cv(s.values, v.images_per_value)
    if not exceeds(cv, VLB_JITTER):
        return None
    loss = v.cfg("recipe.loss")
    lam = float(v.cfg("recipe.hybrid_lambda", 0.001))
    batch = int(v.cfg("recipe.batch_size", 1))
    smaller_lambda = ({"recipe.hybrid_lambda": lam / 2},) if loss == "hybrid" else ()
    if importance:
        title = "The VLB curve jitters even with importance sampling"
        edits = (*smaller_lambda, {"recipe.batch_size": 2 * batch})
    else:
        title = "The VLB curve jitters under uniform timestep sampling"
        edits = ({"recipe.importance_sampling": True}, *smaller_lambda)
    evidence = Evidence(
        f"L_vlb's per-image coefficient of variation is {fmt(cv)} over the last {n} logged values "
        f"({span_text(s.span)}), above {VLB_JITTER.value:g}; timestep sampling is "
        f"{'importance (P1)' if importance else 'uniform'}, loss {loss}",
        {"per_image_cv": cv, "threshold": VLB_JITTER.value, "values": float(n),
         "images_per_value": v.images_per_value}, s.span)
    return Finding("vlb-jitter", "warning", title, "3.3", WHY_3_3, evidence, edits=edits, advice=ADVICE_3_3,
                   used=("config recipe.loss, recipe.importance_sampling, recipe.batch_size, recipe.log_every",
                         "metric L_vlb"))
