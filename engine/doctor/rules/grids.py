"""The fixed-x_T EMA grid against the data's statistics (evals kind "grid", engine/eval/diagnostics.py): playbook
0.0 / 1.0 (the loss falls but the samples stay far from the data: the normalisation, the chain's terms) and 3.4 / 5.4
(systematic colour drift, over-saturation: a stochastic sampler's S_churn first, then EDM's p_train / lambda(sigma))."""

from __future__ import annotations

import math

from difftui.engine.doctor.finding import Evidence, Finding, Needs
from difftui.engine.doctor.rule import fmt, rule
from difftui.engine.doctor.thresholds import (
    COLOUR_CAST,
    GRID_HIST_TV,
    GRID_MEAN_SHIFT,
    GRID_STD_RATIO,
    LOSS_PROGRESS,
    SATURATION_EXCESS,
    exceeds,
)
from difftui.engine.doctor.view import RunView

# playbook 0.0, common problem: 训练 loss 下降但采样像噪声, 常见原因是 alpha_bar_t/广播维度/采样均值方差项写错, 或可视化时归一化口径不一致。
WHY_0_0 = ("When the training loss falls but the samples look like noise, the usual causes are a wrong alpha_bar_t, "
           "broadcast dimensions or sampling mean/variance terms, or a normalisation that differs at visualisation.")
ADVICE_0_0 = ("Playbook 0.0 fixes: unit-test alpha_bar_t (decreasing in t, near 1 at t=0 and near 0 at t=T-1) and run "
              "the fixed-x_T consistency diagnostic (5.2); playbook 1.0 fix 1: one normalisation to [-1, 1] for "
              "training, sampling and visualisation alike (difftui's data sets all map to [-1, 1]: a custom data "
              "set or network that rescales its input is the first suspect).")
# playbook 5.4, why: P3 指出随机性有助于纠正采样误差, 但也会引入图像退化(例如过饱和 drift)。
WHY_5_4 = ("P3 points out that stochasticity helps correct sampling errors but also brings image degradation, such as "
           "over-saturation drift.")
# playbook 3.4, common problem: 生成结果出现系统性偏色/过饱和 drift。
WHY_3_4 = "Generated samples show a systematic colour cast or over-saturation drift."
# playbook 1.0, common problem: 归一化口径不一致(例如训练用 [0,1], 采样/可视化按 [-1,1])会导致样本偏色或对比度异常。
WHY_1_0 = ("An inconsistent normalisation (e.g. [0,1] in training, [-1,1] in sampling or visualisation) gives samples a "
           "colour cast or abnormal contrast.")
P3_P_MEAN, P3_P_STD = -1.2, 1.2                    # playbook 3.4: ln(sigma) ~ N(-1.2, 1.2^2)
P3_CIFAR10_CHURN = {"sampler.grid.S_tmin": 0.01, "sampler.grid.S_tmax": 1.0}   # playbook 5.4 (4): CIFAR-10 (Table 5)


def _grids(v: RunView) -> list[tuple[int, dict[str, float]]]:
    """The recorded grid statistics, one dict per grid step, oldest first."""
    by_step: dict[int, dict[str, float]] = {}
    for r in v.evals("grid"):
        by_step.setdefault(int(r["step"]), {})[r["metric"]] = float(r["value"])
    return sorted(by_step.items())


def _needs_grids(rule_id: str, section: str, title: str, v: RunView) -> Needs:
    why = ("latent data sets are not compared (the grid is decoded pixels, the data latents)"
           if v.cfg("dataset.latents") else "grid statistics (recorded with every grid by this difftui)")
    return Needs(rule_id, section, title, (why,), "the next grid records them (or run difftui with this version)")


def _off(g: dict[str, float]) -> list[str]:
    """What is far from the data in one grid's statistics."""
    out = []
    std = g.get("data_std", math.nan)
    if exceeds(g.get("hist_tv", math.nan), GRID_HIST_TV):
        out.append(f"pixel histogram distance {fmt(g['hist_tv'])} (TV, > {GRID_HIST_TV.value:g})")
    shift = abs(g.get("grid_mean", math.nan) - g.get("data_mean", math.nan)) / std if std > 0 else math.nan
    if exceeds(shift, GRID_MEAN_SHIFT):
        out.append(f"mean {fmt(g['grid_mean'])} vs the data's {fmt(g['data_mean'])} ({fmt(shift)} data std)")
    ratio = g.get("grid_std", math.nan) / std if std > 0 else math.nan
    if exceeds(ratio, GRID_STD_RATIO) or exceeds(1 / ratio if ratio > 0 else math.inf, GRID_STD_RATIO):
        out.append(f"std {fmt(g['grid_std'])} vs the data's {fmt(std)} (x{fmt(ratio)})")
    return out


@rule("grid-off-data", "0.0, 1.0", "the loss falls but the EMA grid stays far from the data's statistics")
def grid_off_data(v: RunView) -> Finding | Needs | None:
    grids = _grids(v)
    if not grids:
        return _needs_grids("grid-off-data", "0.0, 1.0", "the grid against the data's statistics", v)
    first_loss = v.loss_level_at(0)
    # Grids drawn once the loss had fallen to LOSS_PROGRESS of its first level; the newest two of them ("stays").
    judged = [(s, g) for s, g in grids
              if first_loss > 0 and v.loss_level_at(s) / first_loss <= LOSS_PROGRESS.value][-2:]
    if not judged:
        return None                                 # the loss has not fallen to half yet: not this symptom
    offs = [_off(g) for _, g in judged]
    if not all(offs):
        return None
    step, g = judged[-1]
    loss_now = v.loss_level_at(step)
    evidence = Evidence(
        f"{v.loss_name} fell from {fmt(first_loss)} to {fmt(loss_now)}, yet the EMA grid at step {step:,} is far from "
        f"the training images: {'; '.join(offs[-1])}" + (f" (and at step {judged[0][0]:,})" if len(judged) > 1 else ""),
        {**g, "loss_first": first_loss, "loss_now": loss_now}, (judged[0][0], step))
    return Finding("grid-off-data", "warning", "The loss falls but the grid stays far from the data", "0.0, 1.0",
                   WHY_0_0, evidence, advice=ADVICE_0_0, actions=(f"difftui eval {v.run_id}  (the panel and its 5.2 "
                                                                  f"consistency score)",),
                   used=(f"metric {v.loss_name}", "grid statistics (evals kind grid)"))


@rule("colour-drift", "3.4, 5.4", "systematic colour drift or over-saturation in the grid")
def colour_drift(v: RunView) -> Finding | Needs | None:
    grids = _grids(v)
    if not grids:
        return _needs_grids("colour-drift", "3.4, 5.4", "colour drift and over-saturation", v)
    judged = grids[-2:]
    seen = []
    for _, g in judged:
        excess = g.get("grid_saturated", math.nan) - g.get("data_saturated", math.nan)
        what = []
        if exceeds(excess, SATURATION_EXCESS):
            what.append(f"{100 * g['grid_saturated']:.0f}% of values at the ends of [-1, 1] vs the data's "
                        f"{100 * g['data_saturated']:.0f}%")
        if exceeds(g.get("colour_cast", math.nan), COLOUR_CAST):
            what.append(f"a colour cast of {fmt(g['colour_cast'])} data std")
        seen.append(what)
    if not all(seen):
        return None                                 # "systematic": in every judged grid (the newest two)
    step, g = judged[-1]
    grid = v.cfg("sampler.grid", {}) or {}
    churn = float(grid.get("S_churn", 0.0) or 0.0)
    edits: tuple[dict, ...] = ()
    if grid.get("kind") == "edm_stochastic" and churn > 0:
        section, why, title = "5.4, 3.4", WHY_5_4, "The stochastic sampler's grid drifts in colour or saturates"
        edits = ({"sampler.grid.S_churn": 0.0},)
        if v.cfg("dataset.name") == "cifar10":
            edits += (P3_CIFAR10_CHURN,)
        advice = ("Playbook 5.4 fix 1: go back to S_churn = 0 as the aligned baseline and open the stochastic knobs "
                  "one at a time; fix 2: if it over-saturates, restrict S_tmin/S_tmax so that no noise is added at "
                  "the lowest noise levels.")
    elif v.cfg("recipe.loss") == "edm":
        section, why, title = "3.4, 5.4", WHY_3_4, "The grid drifts in colour or saturates (deterministic sampler)"
        if (v.cfg("recipe.P_mean"), v.cfg("recipe.P_std")) != (P3_P_MEAN, P3_P_STD):
            edits = ({"recipe.P_mean": P3_P_MEAN, "recipe.P_std": P3_P_STD},)
        advice = ("Playbook 3.4 fix 1: with the network and optimiser fixed, sweep p_train(sigma) and lambda(sigma) as "
                  "one group (with the preconditioning), evaluating each with a deterministic sampler and a fixed "
                  "NFE and keeping a fixed-x_T grid.")
    else:
        section, why, title = "1.0, 3.4", WHY_1_0, "The grid drifts in colour or saturates"
        advice = ("Playbook 1.0 fix 1: one normalisation to [-1, 1] for training, sampling and visualisation; a custom "
                  "data set or network that rescales its input is the first suspect.")
    evidence = Evidence(f"grid at step {step:,} ({grid.get('kind', '?')}, S_churn {churn:g}): {'; '.join(seen[-1])}"
                        + (f"; also at step {judged[0][0]:,}" if len(judged) > 1 else ""), g, (judged[0][0], step))
    return Finding("colour-drift", "warning", title, section, why, evidence, edits=edits, advice=advice,
                   used=("grid statistics (evals kind grid)", "config sampler.grid, recipe.loss"))
