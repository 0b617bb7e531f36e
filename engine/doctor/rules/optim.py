"""Chapter 4, the optimiser: playbook 4.3 (mixed precision, gradient clipping) and 4.2 / 1.8 (the learning rate
and batch linked to the model's size)."""

from __future__ import annotations

import math

import numpy as np

from difftui.engine.doctor.finding import Evidence, Finding, Grid, Needs
from difftui.engine.doctor.measures import finite, level, per_image_cv
from difftui.engine.doctor.rule import fmt, rule, span_text
from difftui.engine.doctor.thresholds import (
    CLIP_ACTIVE,
    DIVERGENCE,
    EARLY_FRACTION,
    LOSS_JITTER,
    MIN_ROWS,
    SKIPPED_STEPS,
    below,
    exceeds,
)
from difftui.engine.doctor.view import RunView

# playbook 4.3, common problem: 盲目裁剪导致有效学习率被压低; FP16 在某些层出现数值不稳定导致训练崩或质量退化。
WHY_4_3_PRECISION = "FP16 becomes numerically unstable in some layers, which crashes training or degrades quality."
WHY_4_3_CLIP = "Clipping blindly pushes the effective learning rate down."
ADVICE_4_3_PRECISION = ("Playbook 4.3 fix 2: with NaN or divergence under mixed precision, first get the "
                        "train-and-sample loop working in FP32; then re-enable the lower precision only as a "
                        "throughput optimisation, and check with the same evaluation protocol that quality does not "
                        "drop. (Overflowing fp16 gradients that the loss scaler skips are not counted here; these "
                        "steps had a non-finite loss or gradient norm.)")
ADVICE_4_3_CLIP = ("Playbook 4.3 fix 1: ablate clipping on the baseline, changing nothing else (model, loss, sampler, "
                   "NFE, sample count), and keep it only if it clearly improves stability or quality; P3's default "
                   "is off.")
# playbook 4.2, why: 扩散训练的梯度噪声与有效 batch、目标项方差耦合明显; 固定 lr 往往会导致收敛变慢或不稳定。
WHY_4_2 = ("The gradient noise of diffusion training is clearly coupled with the effective batch and the variance of "
           "the objective; a fixed lr often makes convergence slower or unstable.")
ADVICE_4_2 = ("Playbook 4.2 fix 1: after enlarging the model (or changing the batch), first run a comparison that "
              "changes only the optimiser settings - fix the model and the sampling protocol, sweep "
              "batch/lr/warm-up/EMA time constant; playbook 1.8: scale only along the tier ladder, with its linked "
              "hyper-parameters (P1: lr = 1e-4 / sqrt(C/128), A.6).")


@rule("mixed-precision-skips", "4.3", "skipped non-finite steps under mixed precision",
      applies=lambda v: v.precision in ("fp16", "bf16"))
def mixed_precision_skips(v: RunView) -> Finding | Needs | None:
    if v.loss_name not in v.names:
        return Needs("mixed-precision-skips", "4.3", "skipped non-finite steps",
                     (f"{v.loss_name}: no logged interval yet",), "let the run train")
    skipped = v.overview("skipped_steps") if "skipped_steps" in v.names else None
    total = skipped.total if skipped is not None else 0.0
    if not exceeds(total, SKIPPED_STEPS):
        return None
    steps = max(v.step - v.first_step, 1)         # a fork's own steps (its rows start at its step)
    span = skipped.span
    alternatives = {"fp16": ({"recipe.precision": "bf16"}, {"recipe.precision": "fp32"}),
                    "bf16": ({"recipe.precision": "fp32"},)}[v.precision]
    evidence = Evidence(
        f"{total:,.0f} of {steps:,} steps skipped as non-finite under {v.precision} ({100 * total / steps:.2g}%), "
        f"{span_text(span)}", {"skipped": total, "steps": float(steps), "fraction": total / steps}, span)
    return Finding("mixed-precision-skips", "warning", f"Non-finite steps skipped under {v.precision}", "4.3",
                   WHY_4_3_PRECISION, evidence, edits=alternatives, advice=ADVICE_4_3_PRECISION,
                   used=("config recipe.precision, device", "metric skipped_steps"))


@rule("clipping-active", "4.3", "gradient clipping active most of the time",
      applies=lambda v: v.cfg("recipe.grad_clip") is not None)
def clipping_active(v: RunView) -> Finding | Needs | None:
    clip = float(v.cfg("recipe.grad_clip"))
    s = v.tail("grad_norm")
    norms = finite(s.values)
    if below(norms.size, MIN_ROWS):
        return Needs("clipping-active", "4.3", "how often clipping acts",
                     (f"grad_norm: at least {MIN_ROWS.value:g} logged values (has {norms.size})",),
                     "let the run train longer")
    frac = float(np.mean(norms > clip))
    if not exceeds(frac, CLIP_ACTIVE):
        return None
    evidence = Evidence(
        f"the mean gradient norm (before clipping) is above recipe.grad_clip = {clip:g} in {100 * frac:.0f}% of the "
        f"last {norms.size} logged intervals ({span_text(s.span)}); median {fmt(float(np.median(norms)))}",
        {"fraction_above": frac, "grad_clip": clip, "median_grad_norm": float(np.median(norms))}, s.span)
    return Finding("clipping-active", "warning", "Gradient clipping acts on most steps", "4.3", WHY_4_3_CLIP,
                   evidence, edits=({"recipe.grad_clip": None},),
                   grid=Grid(None, {"recipe.grad_clip": (None, clip)}, "4.3"), advice=ADVICE_4_3_CLIP,
                   used=("config recipe.grad_clip", "metric grad_norm"))


#----------------------------------------------------------------------------
# 4.2 / 1.8: the loss after a change of width or batch.

def _width(arch: dict) -> dict:
    return {k: arch[k] for k in ("model_channels", "hidden_size", "depth", "num_heads") if k in arch}


def _rule_lr(backbone: dict, recipe_lr: float) -> float:
    """The tier's lr: P1's rule 1e-4 / sqrt(C/128) for lr_rule p1_sqrt (A.6), else the recipe's."""
    if backbone.get("lr_rule") == "p1_sqrt" and "model_channels" in backbone.get("arch", {}):
        return 1e-4 / math.sqrt(backbone["arch"]["model_channels"] / 128)
    return recipe_lr


def _changes(v: RunView) -> tuple[list[str], dict, dict] | None:
    """(what differs from the presets, the anchored values, numbers), or None when a preset is gone. The list is
    empty unless the lr is off the tier's rule: off the rule's value (A.6), or kept at the recipe's value although
    the batch, or the width of a tier with a fixed lr, changed (4.2 (3): never change the model without its
    hyper-parameters)."""
    recipe = v.preset("recipes", v.cfg("recipe.name"))
    tier = v.preset("backbones", v.cfg("backbone.name"))
    if recipe is None or tier is None:
        return None
    backbone = v.config["backbone"]
    batch, preset_batch = int(v.cfg("recipe.batch_size")), int(recipe.batch_size)
    width, preset_width = _width(backbone.get("arch", {})), _width(dict(tier.arch))
    lr = _rule_lr(backbone, float(v.cfg("recipe.lr")))
    anchored_lr = _rule_lr({"lr_rule": tier.lr_rule, "arch": {**dict(tier.arch), **width}}, float(recipe.lr))
    out, anchored = [], {}
    batch_changed, width_changed = batch != preset_batch, width != preset_width
    if batch_changed:
        out.append(f"batch {batch} (recipe {recipe.name}: {preset_batch})")
        anchored["recipe.batch_size"] = preset_batch
    if width_changed:
        diff = ", ".join(f"{k} {width.get(k)} (tier {tier.name}: {preset_width.get(k)})"
                         for k in sorted(set(width) | set(preset_width)) if width.get(k) != preset_width.get(k))
        out.append(f"width {diff}")
    if not math.isclose(lr, anchored_lr, rel_tol=1e-9):
        out.append(f"lr {lr:g} (the tier's rule: {anchored_lr:g})")
        anchored["recipe.lr"] = anchored_lr
    elif batch_changed or (width_changed and tier.lr_rule == "fixed"):
        out.append(f"lr {lr:g} left as the recipe's, not re-tuned for the new "
                   f"{'batch' if batch_changed else 'width'} (4.2 (3))")
    else:
        out = []                                    # the lr follows the tier's rule: not this rule's case
    return out, anchored, {"batch": float(batch), "preset_batch": float(preset_batch), "lr": lr,
                           "rule_lr": anchored_lr, "width_changed": float(width_changed)}


def _lowest_level(means: np.ndarray) -> float:
    """The lowest level a series reached: the minimum of the running median (5 buckets) of its bucket means, so that
    one lucky interval of a short, noisy run does not count as a level."""
    ok = means[np.isfinite(means)]
    if not ok.size:
        return math.nan
    width = min(5, ok.size)
    return float(min(np.median(ok[i:i + width]) for i in range(ok.size - width + 1)))


@rule("lr-off-rule", "4.2, 1.8", "the loss oscillates or diverges with batch/width/lr off the tier's rule")
def lr_off_rule(v: RunView) -> Finding | Needs | None:
    name = v.loss_name
    s = v.tail(name).after(v.early_end(EARLY_FRACTION.value))      # past the steepest descent
    y = s.values
    nonfinite = int(np.sum(~np.isfinite(y)))
    if below(finite(y).size, MIN_ROWS) and not nonfinite:      # a non-finite loss is divergence however short
        return Needs("lr-off-rule", "4.2, 1.8", "whether the loss oscillates or diverges",
                     (f"{name}: at least {MIN_ROWS.value:g} logged values",), "let the run train longer")
    overview = v.overview(name)
    lowest = _lowest_level(overview.mean)
    ok = finite(y)
    recent = level(ok[-max(5, len(ok) // 10):])    # the newest finite values
    ratio = recent / lowest if lowest > 0 else math.nan
    jitter = per_image_cv(y, v.images_per_value)
    diverging = exceeds(ratio, DIVERGENCE) or nonfinite > 0
    oscillating = exceeds(jitter, LOSS_JITTER)
    if not (diverging or oscillating):
        return None
    found = _changes(v)
    if found is None:
        return Needs("lr-off-rule", "4.2, 1.8", "whether batch/width/lr left the tier's rule",
                     (f"the presets {v.cfg('recipe.name')!r} and {v.cfg('backbone.name')!r} (renamed or removed)",))
    changes, anchored, numbers = found
    if not changes:
        return None                                 # the anchored pair itself: not this rule's symptom
    what = "diverges" if diverging else "oscillates"
    seen = [f"newest finite level {fmt(recent)} = {fmt(ratio)} x the lowest level {fmt(lowest)}"]
    if nonfinite:
        seen.append(f"{nonfinite} of the last {len(y)} logged values not finite (from step "
                    f"{int(s.steps[~np.isfinite(y)][0]):,})")
    if jitter == jitter:
        seen.append(f"per-image CV {fmt(jitter)}")
    evidence = Evidence(
        f"{name} {what}: {'; '.join(seen)} ({span_text(s.span)}); changed from the presets: {'; '.join(changes)}",
        {"level_ratio": ratio, "per_image_cv": jitter, "nonfinite": float(nonfinite), **numbers}, s.span)
    edits: tuple[dict, ...] = (anchored,) if anchored else ()
    arch = v.cfg("backbone.arch", {}) or {}
    if numbers["width_changed"] and v.cfg("backbone.lr_rule") == "fixed" and "model_channels" in arch and \
            v.cfg("backbone.family") == "unet":
        p1 = 1e-4 / math.sqrt(arch["model_channels"] / 128)
        if not math.isclose(p1, numbers["lr"], rel_tol=1e-9):
            edits += ({"recipe.lr": p1},)          # A.6: P1's lr rule for the U-Net width
    return Finding("lr-off-rule", "warning", f"The loss {what} with batch, width or lr off the tier's rule", "4.2, 1.8",
                   WHY_4_2, evidence, edits=edits, advice=ADVICE_4_2,
                   used=(f"metric {name}", "config recipe.batch_size, recipe.lr, backbone.arch, backbone.lr_rule",
                         "the recipe and backbone presets"))
