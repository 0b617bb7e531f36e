"""Overfitting: playbook 1.4 (when regularisation is needed), 4.5 (the dropout grid), 2.9 (the cosine schedule)."""

from __future__ import annotations

import numpy as np

from difftui.engine.doctor.finding import Evidence, Finding, Grid, Needs
from difftui.engine.doctor.rule import fmt, rule
from difftui.engine.doctor.thresholds import EVAL_NOISE, LOSS_FALLS, MEMORISATION, MIN_EVALS, below
from difftui.engine.doctor.view import RunView

# playbook 4.5 (1)-(2): P1's CIFAR-10 grid and P3 Table 7's single values per data set.
P1_DROPOUT_GRID = (0.1, 0.2, 0.3)
P3_DROPOUT = {"cifar10": 0.13, "ffhq64": 0.05, "afhq64": 0.25, "imagenet64": 0.10}
P3_AUGMENT = {"cifar10": 0.12, "ffhq64": 0.15, "afhq64": 0.15}          # playbook 1.3 (5): augment probability
DROPOUT_FAMILIES = ("unet", "adm", "ddpmpp", "ncsnpp")                   # presets/sweeps/p1-dropout.yaml applies_to

# playbook 1.4 (2): 若训练 loss 下降但固定采样器下 FID 在后期持续变差, 视为过拟合/泛化退化信号(P3)。
WHY_1_4 = ("If the training loss falls while the FID under a fixed sampler keeps getting worse late in training, "
           "treat it as a sign of overfitting and degraded generalisation (P3).")
ADVICE = ("Playbook 1.4 fix 1 / 1.3: once overfitting is confirmed, regularise, preferably with non-leaky "
          "augmentation; 4.5: run the dropout grid one knob at a time and judge it with a fixed sampler, NFE and "
          "sample count, not by training loss; 2.9 fix 2: when the loss falls but FID rises, prefer regularisation or "
          "early stopping (the best snapshot, 5.6) over more compute.")
ADVICE_COSINE = (" This run uses the cosine schedule, which P1 finds may overfit sooner (less noise, weaker "
                 "regularisation, faster optimisation; playbook 2.9): tune dropout for this schedule (4.5 (4), the "
                 "p1-dropout-schedule grid).")


def _rising(points: list[tuple[int, float, dict]]) -> tuple[tuple, tuple] | None:
    """(best, newest) when the newest two evaluations after the best (lowest) both lie more than the evaluation
    noise above it ('keeps getting worse'); else None."""
    if below(len(points), MIN_EVALS):
        return None
    best = min(points, key=lambda p: (p[1], p[0]))
    after = [p for p in points if p[0] > best[0]]
    if len(after) < 2:
        return None
    limit = best[1] * (1 + EVAL_NOISE.value)
    if all(p[1] > limit for p in after[-2:]):
        return best, after[-1]
    return None


def _loss_fell(v: RunView, start: int, end: int) -> tuple[bool, float, float]:
    a, b = v.loss_level_at(start), v.loss_level_at(end)
    return (b < a * (1 - LOSS_FALLS.value)), a, b


@rule("overfitting", "1.4, 4.5, 2.9", "held-out NLL or FID rising while the loss falls; samples nearing training "
      "images")
def overfitting(v: RunView) -> Finding | Needs | None:
    signals: list[str] = []
    numbers: dict[str, float] = {}
    steps: list[int] = []
    used, lacked = [f"metric {v.loss_name}"], []
    for label, series in (("held-out NLL (bits/dim)", v.eval_series("nll", "nll_bpd") +
                           v.eval_series("panel", "nll_bpd")),
                          ("FID", v.eval_series("fid", "fid"))):
        series = sorted(series, key=len, reverse=True)
        if not series or below(len(series[0]), MIN_EVALS):
            lacked.append(f"{label} at {MIN_EVALS.value:g}+ training steps under one protocol")
            continue
        used.append(f"{label} at {len(series[0])} steps")
        found = _rising(series[0])
        if found is None:
            continue
        (s0, best, _), (s1, last, row) = found
        fell, l0, l1 = _loss_fell(v, s0, s1)
        if not fell:
            continue
        key = "nll" if label.startswith("held") else "fid"
        numbers.update({f"{key}_best": best, f"{key}_best_step": float(s0), f"{key}_newest": last,
                        f"{key}_newest_step": float(s1), f"loss_at_{key}_best": l0, f"loss_at_{key}_newest": l1})
        steps += [s0, s1]
        signals.append(f"{label} rose from {fmt(best)} (step {s0:,}) to {fmt(last)} (step {s1:,}; "
                       f"{row.get('sampler') or 'fixed protocol'}) while {v.loss_name} fell from {fmt(l0)} to "
                       f"{fmt(l1)}")
    nn = v.overview("grid_nn_ratio")
    if len(nn) and np.isfinite(nn.mean).any():
        ok = np.isfinite(nn.mean)
        s0, first = int(nn.first[ok][0]), float(nn.mean[ok][0])
        newest_row = v.tail("grid_nn_ratio", 1)
        s1, newest = int(newest_row.steps[-1]), float(newest_row.values[-1])
        used.append(f"the grid's nearest-training-image ratio ({int(nn.rows.sum())} grids)")
        if below(newest, MEMORISATION) and newest < first:
            numbers.update({"nn_ratio_first": first, "nn_ratio_newest": newest})
            steps += [s0, s1]
            signals.append(f"the grid's samples drew near their nearest training images: distance ratio "
                           f"{fmt(first)} (step {s0:,}) -> {fmt(newest)} (step {s1:,}), below "
                           f"{MEMORISATION.value:g}")
    else:
        lacked.append("the grid's nearest-training-image distance (logged with each grid)")
    if not signals:
        if len(lacked) >= 2:
            return Needs("overfitting", "1.4, 4.5, 2.9", "held-out NLL / FID over training",
                         tuple(lacked), f"difftui eval {v.run_id} at several training steps, or "
                                        f"recipe.snapshot_eval: true to measure FID of every snapshot")
        return None
    family = v.cfg("backbone.family")
    dataset = v.cfg("dataset.name")
    edits: list[dict] = []
    grid = None
    if family in DROPOUT_FAMILIES:
        grid = Grid("p1-dropout", {"recipe.dropout": P1_DROPOUT_GRID}, "4.5")
        if dataset in P3_DROPOUT and v.cfg("recipe.dropout") != P3_DROPOUT[dataset]:
            edits.append({"recipe.dropout": P3_DROPOUT[dataset]})
    if v.cfg("recipe.loss") == "edm" and family in ("ddpmpp", "ncsnpp") and not v.cfg("recipe.augment_p") \
            and (v.cfg("backbone.arch.augment_dim", 0) or 0) == 9:
        edits.append({"recipe.augment_p": P3_AUGMENT.get(dataset, 0.12)})
    advice = ADVICE + (ADVICE_COSINE if v.cfg("recipe.schedule") == "cosine" else "")
    evidence = Evidence("; ".join(signals), numbers, (min(steps), max(steps)) if steps else None)
    return Finding("overfitting", "warning", "Signs of overfitting", "1.4, 4.5, 2.9", WHY_1_4, evidence,
                   edits=tuple(edits), grid=grid, advice=advice,
                   actions=(f"difftui eval {v.run_id} --fid --snapshot STEP (the best snapshot, playbook 5.6)",),
                   used=tuple(used), lacked=tuple(lacked))
