"""Chapter 1, the data: playbook 1.2 / 1.5 (the data check's duplicates and train/test overlap, read from its cached
table; engine/data/quality.py) and 1.0 (the held-out split must stay out of training)."""

from __future__ import annotations

from difftui.engine.doctor.finding import Evidence, Finding, Needs
from difftui.engine.doctor.rule import rule
from difftui.engine.doctor.thresholds import NEAR_DUPLICATES, exceeds
from difftui.engine.doctor.view import RunView

# playbook 1.0, common problem: 训练集/测试集混用会让评测失真。
WHY_1_0 = "Mixing the training and test sets distorts the evaluation."
# playbook 1.5, why: 这 6 篇论文共同的隐含前提是“数据与预处理可被他人复现”, 否则模型/采样器/损失的消融结论会被数据差异掩盖。
WHY_1_5 = ("The six papers share the premise that the data and its preprocessing can be reproduced by others; "
           "otherwise differences in the data mask the ablations of model, sampler and loss.")
ADVICE = ("Playbook 1.5 fix 1: make the data card and the quality table a precondition of any large run; 1.2 (2): "
          "record the duplicate and near-duplicate method and ratio; remove the test images' copies from training "
          "(or the copies from the test split) so that held-out numbers are held out.")


@rule("data-overlap", "1.2, 1.5", "the data check found train/test overlap or many near-duplicates")
def data_overlap(v: RunView) -> Finding | Needs | None:
    name = v.cfg("dataset.name")
    table = v.quality()
    heldout = [r["protocol"].get("heldout", {}) for r in v.evals() if r["protocol"].get("heldout")]
    shared_eval = max((int(h.get("overlap_with_train") or 0) for h in heldout), default=0)
    if table is None and not heldout:
        return Needs("data-overlap", "1.2, 1.5", "duplicates and train/test overlap of the data set",
                     (f"the data check of {name!r} (its cached table)",), f"difftui data check {name}")
    overlap = (table or {}).get("train_test_overlap") or {}
    exact = max(int(overlap.get("exact", 0)), shared_eval)
    near = int(overlap.get("near", 0))
    checked = int(overlap.get("test_checked", 0))
    near_dup = (table or {}).get("near_duplicates") or {}
    ratio = float(near_dup.get("ratio", 0.0))
    parts, numbers = [], {"test_exact_copies": float(exact), "test_near_copies": float(near),
                          "near_duplicate_ratio": ratio}
    if exact:
        parts.append(f"{exact} test image(s) are exact copies of training images" +
                     (f" (of {checked} checked)" if checked else " (found by the evaluator's held-out check)"))
    if near:
        parts.append(f"{near} of {checked} test images have a near copy in training "
                     f"({overlap.get('method') or 'pHash, Hamming <= 8 of 64 bits'})")
    if exceeds(ratio, NEAR_DUPLICATES):
        parts.append(f"{100 * ratio:.1f}% of the training sample are near-duplicates "
                     f"({near_dup.get('clusters', '?')} clusters, {near_dup.get('threshold', '')})")
    if not parts:
        return None
    severity = "warning" if exact else "info"
    title = ("Test images are copies of training images" if exact else
             "The data set holds many near-duplicates" if not near else "Test images have near copies in training")
    resolution = int(v.cfg("dataset.resolution", 0) or 0)
    note = (f"; at {resolution}x{resolution} px a perceptual hash compares little more than the coarse shape"
            if 0 < resolution < 32 and (near or ratio) else "")
    evidence = Evidence(f"data set {name!r}: " + "; ".join(parts) + note, numbers)
    return Finding("data-overlap", severity, title, "1.2, 1.5, 1.0", WHY_1_0 if (exact or near) else WHY_1_5,
                   evidence, advice=ADVICE, actions=(f"difftui data check {name}", f"difftui data card {name}"),
                   used=tuple(u for u, ok in ((f"the data check's cached table of {name!r}", table is not None),
                                              ("the evaluator's held-out overlap check", bool(heldout))) if ok))
