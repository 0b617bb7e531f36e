"""The fixed-x_T EMA grid against the data's statistics (evals kind "grid", engine/eval/diagnostics.py): playbook
0.0 / 1.0 (the loss falls but the samples stay far from the data: the normalisation, the chain's terms) and 3.4 / 5.4
(systematic colour drift, over-saturation: a stochastic sampler's S_churn first, then EDM's p_train / lambda(sigma))."""

from __future__ import annotations

import math

from difftui.engine.doctor.finding import Evidence, Finding, Needs
from difftui.engine.doctor.rule import fmt, rule
from difftui.engine.doctor.thresholds import (
    COLOUR_CAST,
    GRID_MEAN_SHIFT,
    GRID_STD_RATIO,
    GRID_VALUE_W1,
    LOSS_PROGRESS,
    SATURATION_EXCESS,
    STILL_IMPROVING,
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
    """The newest two grids' statistics, oldest first."""
    return v.grids(2)


def _needs_grids(rule_id: str, section: str, title: str, v: RunView) -> Needs:
    why = ("latent data sets are not compared (the grid is decoded pixels, the data latents)"
           if v.cfg("dataset.latents") else "grid statistics (logged with every grid by this difftui)")
    return Needs(rule_id, section, title, (why,), "the next grid drawn by this difftui records them")


def _far(g: dict[str, float]) -> tuple[float, list[str]]:
    """How far one grid is from the data: the largest of its measures over their thresholds (> 1: far), and what
    is far, in words."""
    std = g.get("grid_data_std", math.nan)
    w1 = g.get("grid_w1", math.nan) / std if std > 0 else math.nan
    shift = abs(g.get("grid_mean", math.nan) - g.get("grid_data_mean", math.nan)) / std if std > 0 else math.nan
    ratio = g.get("grid_std", math.nan) / std if std > 0 else math.nan
    spread = max(ratio, 1 / ratio) if ratio > 0 else math.inf
    score = max(x / t.value for x, t in ((w1, GRID_VALUE_W1), (shift, GRID_MEAN_SHIFT), (spread, GRID_STD_RATIO)))
    words = []
    if exceeds(w1, GRID_VALUE_W1):
        words.append(f"pixel-value distance {fmt(w1)} data std (W1, > {GRID_VALUE_W1.value:g})")
    if exceeds(shift, GRID_MEAN_SHIFT):
        words.append(f"mean {fmt(g['grid_mean'])} vs the data's {fmt(g['grid_data_mean'])} ({fmt(shift)} data std)")
    if exceeds(spread, GRID_STD_RATIO):
        words.append(f"std {fmt(g['grid_std'])} vs the data's {fmt(std)} (x{fmt(ratio)})")
    return score, words


def _drift(g: dict[str, float]) -> tuple[float, list[str]]:
    """Colour drift and over-saturation of one grid: the larger measure over its threshold (> 1: drifting)."""
    excess = g.get("grid_saturated", math.nan) - g.get("grid_data_saturated", math.nan)
    cast = g.get("grid_colour_cast", math.nan)
    score = max((x / t.value for x, t in ((excess, SATURATION_EXCESS), (cast, COLOUR_CAST)) if x == x),
                default=math.nan)
    words = []
    if exceeds(excess, SATURATION_EXCESS):
        words.append(f"{100 * g['grid_saturated']:.0f}% of values at the ends of [-1, 1] vs the data's "
                     f"{100 * g['grid_data_saturated']:.0f}%")
    if exceeds(cast, COLOUR_CAST):
        words.append(f"a colour cast of {fmt(cast)} data std")
    return score, words


def _stuck(older: float, newer: float) -> bool:
    """Both beyond their thresholds (score > 1) and the newer not better by more than STILL_IMPROVING."""
    return older > 1 and newer > 1 and newer >= older * (1 - STILL_IMPROVING.value)


def _after_the_loss_fell(v: RunView, grids: list[tuple[int, dict[str, float]]]
                         ) -> list[tuple[int, dict[str, float]]]:
    """The grids drawn once the loss had fallen to LOSS_PROGRESS of its first level: before that a grid shows a
    network still learning (noise pushed to the ends of [-1, 1]), not a symptom (0.0's 'the loss falls')."""
    first_loss = v.loss_level_at(0)
    return [(s, g) for s, g in grids if first_loss > 0 and v.loss_level_at(s) / first_loss <= LOSS_PROGRESS.value]


@rule("grid-off-data", "0.0, 1.0", "the loss falls but the EMA grid stays far from the data's statistics")
def grid_off_data(v: RunView) -> Finding | Needs | None:
    grids = _grids(v)
    if not grids:
        return _needs_grids("grid-off-data", "0.0, 1.0", "the grid against the data's statistics", v)
    first_loss = v.loss_level_at(0)
    judged = _after_the_loss_fell(v, grids)[-2:]        # the newest two ("stays")
    if len(judged) < 2:
        if judged and _far(judged[-1][1])[0] > 1:
            return Needs("grid-off-data", "0.0, 1.0", "whether the grid stays far from the data",
                         (f"a second grid after the loss fell (the grid at step {judged[-1][0]:,} is far from the "
                          f"data; one grid cannot say it stays so)",), "the run's next grid (recipe.grid_every)")
        return None                                 # the loss has not fallen to half yet, or the one grid is fine
    (s0, g0), (s1, g1) = judged
    (score0, _), (score1, words) = _far(g0), _far(g1)
    if not _stuck(score0, score1):
        return None
    loss_now = v.loss_level_at(s1)
    evidence = Evidence(
        f"{v.loss_name} fell from {fmt(first_loss)} to {fmt(loss_now)}, yet the EMA grid stays far from the training "
        f"images: at step {s1:,} {'; '.join(words)} (at step {s0:,}: {fmt(score0)} x its thresholds, now "
        f"{fmt(score1)} x)", {**g1, "far_score": score1, "far_score_before": score0, "loss_first": first_loss,
                              "loss_now": loss_now}, (s0, s1))
    return Finding("grid-off-data", "warning", "The loss falls but the grid stays far from the data", "0.0, 1.0",
                   WHY_0_0, evidence, advice=ADVICE_0_0, actions=(f"difftui eval {v.run_id}",),
                   used=(f"metric {v.loss_name}", "grid statistics (metrics grid_*)"))


@rule("colour-drift", "3.4, 5.4", "systematic colour drift or over-saturation in the grid")
def colour_drift(v: RunView) -> Finding | Needs | None:
    drawn = _grids(v)
    if not drawn:
        return _needs_grids("colour-drift", "3.4, 5.4", "colour drift and over-saturation", v)
    grids = _after_the_loss_fell(v, drawn)
    if len(grids) < 2:
        newest = (grids or drawn)[-1]
        if _drift(newest[1])[0] > 1:
            wanted = (f"a second grid (the grid at step {newest[0]:,} drifts; one grid cannot say it is systematic)"
                      if grids else f"grids after the loss has fallen to half its first level (the grid at step "
                                    f"{newest[0]:,} drifts, but the network is still learning)")
            return Needs("colour-drift", "3.4, 5.4", "whether the grid's drift is systematic", (wanted,),
                         "the run's next grid (recipe.grid_every)")
        return None
    (s0, g0), (s1, g) = grids[-2:]
    (score0, _), (score1, words) = _drift(g0), _drift(g)
    if not _stuck(score0, score1):
        return None                                 # "systematic": in the newest two grids, not shrinking
    step = s1
    grid = v.cfg("sampler.grid", {}) or {}
    churn = float(grid.get("S_churn", 0.0) or 0.0)
    edits: tuple[dict, ...] = ()
    if grid.get("kind") == "edm_stochastic" and churn > 0:
        section, why, title = "5.4, 3.4", WHY_5_4, "The stochastic sampler's grid drifts in colour or saturates"
        edits = ({"sampler.grid.S_churn": 0.0},)
        if v.cfg("dataset.name") == "cifar10" and any(grid.get(k.split(".")[-1]) != x
                                                      for k, x in P3_CIFAR10_CHURN.items()):
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
    evidence = Evidence(f"grid at step {step:,} ({grid.get('kind', '?')}, S_churn {churn:g}): {'; '.join(words)}; at "
                        f"step {s0:,} {fmt(score0)} x its thresholds, now {fmt(score1)} x",
                        {**g, "drift_score": score1, "drift_score_before": score0}, (s0, step))
    return Finding("colour-drift", "warning", title, section, why, evidence, edits=edits, advice=advice,
                   used=("grid statistics (metrics grid_*)", "config sampler.grid, recipe.loss"))
