"""Chapter 5, the sampling chain: playbook 3.6 / 5.7 (the few-step curve and the covariance), 5.2 (DDIM's
consistency diagnostic on a fixed x_T) and 5.6 (report the best snapshot under a fixed deterministic sampler)."""

from __future__ import annotations

from difftui.engine.doctor.finding import Evidence, Finding, Needs
from difftui.engine.doctor.rule import fmt, rule
from difftui.engine.doctor.thresholds import CONSISTENCY, EVAL_NOISE, FEW_STEP_FACTOR, below, exceeds
from difftui.engine.doctor.view import RunView

FEW_STEPS = (5, 10)                                 # "5 or 10 steps" (issue 18; playbook 3.6's panel is 5/10/20)
HEURISTIC = ("fixed_small", "fixed_large")

# playbook 3.6, why: P6 直接指出: 当 T 小时, 协方差选择影响很大; 更准确的对角协方差能显著改善少步采样的质量、recall 与似然。
WHY_3_6 = ("P6 states that when T is small the choice of covariance matters a lot; a more accurate diagonal covariance "
           "markedly improves few-step sample quality, recall and likelihood.")
ADVICE_3_6 = ("Playbook 3.6 fix 1: first make the few-step process itself stable (DDIM with eta = 0, or EDM Heun); "
              "fix 2: then learn the covariance - P1's learned variance with L_hybrid, or P6's OCM head (3.2, 3.7). "
              "Either changes the network's output channels, so it is a new run, not a continuation. Judge it on the "
              "5/10/20-step panel with FID and NLL together (5.7, 5.8).")
# playbook 5.2, common problem: 如果不同轨迹下高层语义完全不一致, 说明采样数值误差/模型误差在放大, 或噪声调度/采样实现存在 bug。
WHY_5_2 = ("If the high-level content disagrees across trajectories, numerical or model error in sampling is being "
           "amplified, or the noise schedule or the sampler's implementation has a bug.")
ADVICE_5_2 = ("Playbook 5.2 fix 1: use eta = 0 and a smoother, denser tau sub-sequence to rule out randomness and "
              "coarse steps; fix 2: if it still disagrees, check alpha_bar_t, the mean/variance terms and the "
              "broadcast dimensions. A low score points at the schedule or the sampler, not at training.")
# playbook 5.6 (3): 用固定的确定性采样器与固定 NFE 评测 FID, 取最低 FID 的 snapshot 报告。
WHY_5_6 = "Evaluate FID with a fixed deterministic sampler and a fixed NFE, and report the snapshot with the lowest FID."


@rule("few-step-collapse", "3.6, 5.7", "the few-step curve collapses against the 50-step FID",
      applies=lambda v: v.cfg("recipe.loss") != "edm")
def few_step_collapse(v: RunView) -> Finding | Needs | None:
    curve = [r for r in v.evals("curve") if r["metric"] == "fid" and r["protocol"].get("steps") in FEW_STEPS]
    if not curve:
        return Needs("few-step-collapse", "3.6, 5.7", "the few-step curve against the 50-step FID",
                     ("the few-step curve (FID at 5/10/15/20 steps)",), f"difftui eval {v.run_id} --curve --quick")
    step = max(r["step"] for r in curve)
    curve = [r for r in curve if r["step"] == step]
    fids = [r for r in v.evals("fid") if r["metric"] == "fid" and r["step"] == step]
    if not fids:
        return Needs("few-step-collapse", "3.6, 5.7", "the few-step curve against the 50-step FID",
                     (f"FID of the fixed deterministic sampler at step {step:,}",),
                     f"difftui eval {v.run_id} --fid --quick")
    same = [r for r in fids if r.get("samples") == curve[0].get("samples")] or fids
    reference = same[-1]
    fid50 = float(reference["value"])
    heuristic = [r for r in curve if r["protocol"].get("variance") in HEURISTIC]
    own = [r for r in curve if r["protocol"].get("variance") not in HEURISTIC]
    judged = own or heuristic                       # a learned/OCM covariance is judged on its own curve
    best = min(judged, key=lambda r: float(r["value"]))
    ratio = float(best["value"]) / fid50 if fid50 > 0 else float("nan")
    if not exceeds(ratio, FEW_STEP_FACTOR):
        return None
    variance = v.cfg("recipe.variance")
    edits: tuple[dict, ...] = ()
    if variance in HEURISTIC:
        edits = ({"recipe.variance": "learned", "recipe.loss": "hybrid"}, {"recipe.variance": "ocm"})
    evidence = Evidence(
        f"at step {step:,} the best few-step FID ({best['sampler']}) is {fmt(float(best['value']))}, "
        f"{fmt(ratio)} x the FID {fmt(fid50)} of {reference['sampler']} (NFE {reference['nfe']}); covariance of the "
        f"model: {variance}", {"few_step_fid": float(best["value"]), "fid_reference": fid50, "ratio": ratio,
                               "steps": float(best["protocol"].get("steps"))}, (step, step))
    return Finding("few-step-collapse", "warning", "Few-step sampling collapses", "3.6, 5.7", WHY_3_6, evidence,
                   edits=edits, advice=ADVICE_3_6,
                   used=("evals kind curve (FID at 5/10 steps)", "evals kind fid (the fixed sampler)",
                         "config recipe.variance"))


@rule("ddim-consistency", "5.2", "the same x_T at several step counts keeps its content")
def ddim_consistency(v: RunView) -> Finding | Needs | None:
    rows = [r for r in v.evals("consistency") if r["metric"] == "consistency"]
    if not rows:
        return Needs("ddim-consistency", "5.2", "the fixed-x_T consistency across step counts",
                     ("a panel evaluation with one deterministic sampler at two step counts or more (the ddim "
                      "panel: DDIM N = 10/20/50/100; the edm-heun panel: Heun N = 10/18/40)",), f"difftui eval {v.run_id}, or v on the dashboard")
    step = max(r["step"] for r in rows)
    newest = [r for r in rows if r["step"] == step]
    worst = min(newest, key=lambda r: float(r["value"]))
    score = float(worst["value"])
    if not below(score, CONSISTENCY):
        return None
    agree = {r["sampler"]: float(r["value"]) for r in v.evals("consistency")
             if r["metric"] == "agreement" and r["step"] == step and r["protocol"] == worst["protocol"]}
    grid = v.cfg("sampler.grid", {}) or {}
    edits: tuple[dict, ...] = ()
    if grid.get("kind") == "ddim" and float(grid.get("eta", 0.0)) > 0:
        edits = ({"sampler.grid.eta": 0.0},)
    elif grid.get("kind") == "ddim":
        # A.7: the other tau rule (P2 prefers quadratic on CIFAR-10, linear elsewhere).
        edits = ({"sampler.grid.tau": "quadratic" if grid.get("tau") == "linear" else "linear"},)
    detail = ", ".join(f"{k}: {fmt(x)}" for k, x in agree.items())
    evidence = Evidence(
        f"at step {step:,} the panel's grids from one x_T agree with {worst['sampler']} at {fmt(score)} (lowest; "
        f"{detail}), below {CONSISTENCY.value:g}", {"score": score, **{f"agreement {k}": x for k, x in agree.items()}},
        (step, step))
    return Finding("ddim-consistency", "warning", "Samples from one x_T disagree across step counts", "5.2", WHY_5_2,
                   evidence, edits=edits, advice=ADVICE_5_2, used=("evals kind consistency (the panel's grids)",))


@rule("best-snapshot", "5.6", "the best snapshot by the fixed sampler is the one reported")
def best_snapshot(v: RunView) -> Finding | Needs | None:
    series = v.eval_series("fid", "fid", by_snapshot=True)
    if not series or len(series[0]) < 2:
        return Needs("best-snapshot", "5.6", "which snapshot to report",
                     ("FID of two snapshots or more under one protocol",),
                     f"recipe.snapshot_eval: true, or difftui eval {v.run_id} --snapshot STEP --fid --quick")
    points = series[0]
    best = min(points, key=lambda p: (p[1], p[0]))
    newest = points[-1]
    if best[0] == newest[0] or not newest[1] > best[1] * (1 + EVAL_NOISE.value):
        return None
    row = best[2]
    evidence = Evidence(
        f"snapshot {best[0]:,} has FID {fmt(best[1])}, the newest snapshot {newest[0]:,} {fmt(newest[1])} "
        f"({fmt(100 * (newest[1] / best[1] - 1))}% worse, beyond P3's +-{100 * EVAL_NOISE.value:g}% noise); "
        f"{row.get('sampler')}, NFE {row.get('nfe')}, {row.get('samples') or '?'} samples",
        {"best_snapshot": float(best[0]), "best_fid": best[1], "newest_snapshot": float(newest[0]),
         "newest_fid": newest[1]}, (best[0], newest[0]))
    return Finding("best-snapshot", "warning", f"Report snapshot {best[0]:,}, not the newest", "5.6", WHY_5_6,
                   evidence, actions=(f"difftui eval {v.run_id} --snapshot {best[0]} --fid --repeats 3",
                                      f"difftui report {v.run_id}"),
                   advice="Playbook 5.6 (4): report the sampler, NFE, sample count and the selection rule with it; "
                          "5.5: check the key number at 50,000 samples.",
                   used=("evals kind fid of the snapshots",))
