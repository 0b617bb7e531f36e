"""Every threshold at its edge: a measure exactly at (or just inside) the value is clean, just beyond it gives the
finding (thresholds are data: engine/doctor/thresholds.py, each cited). Recorded runs through the Store API."""

import math

import numpy as np
import pytest
from doctor_testkit import config, decaying, finding, judge, needs, record, with_cv

from difftui.engine.doctor import thresholds as T
from difftui.engine.doctor.measures import per_image_cv
from difftui.engine.doctor.view import RunView
from difftui.engine.store import Store

IN, OUT = 1 - 1e-6, 1 + 1e-6                        # just inside, just beyond


@pytest.fixture
def db(tmp_path):
    return tmp_path / "runs.db"


def found(db, rule, cfg, **kw):
    with Store(db) as store:
        run_id = record(store, cfg, **kw)
    return finding(judge(db, run_id), rule)


def alternating(n, mean, amplitude):
    """mean +- amplitude at steps 1000, 1010, ... (all past the run's first 20%, so every value is judged): its
    median is exactly `mean`, its per-image cv linear in `amplitude`."""
    return list(range(1000, 1000 + 10 * n, 10)), mean + amplitude * np.array([(-1) ** k for k in range(n)], float)


def amplitude_for(cv, n_values, mean, images):
    return cv / per_image_cv(alternating(n_values, mean, 1.0)[1], images)


def test_every_threshold_is_cited_and_the_registry_is_complete():
    for t in T.THRESHOLDS.values():
        assert t.section and t.basis and isinstance(t.value, (int, float))
        assert "playbook" in t.basis or "difftui's choice" in t.basis, t.name
    declared = {v for v in vars(T).values() if isinstance(v, T.Threshold)}
    assert declared == set(T.THRESHOLDS.values())                      # every threshold is in the registry
    assert T.exceeds(1.0, T.VLB_JITTER) is False and T.exceeds(float("nan"), T.VLB_JITTER) is False
    assert T.below(float("nan"), T.CONSISTENCY) is False


def test_vlb_jitter_edge(db):
    cfg = config("recipe.batch_size=128", recipe="p1-hybrid-cosine")
    a = amplitude_for(T.VLB_JITTER.value, 100, 6.0, 1280)
    assert found(db, "vlb-jitter", cfg, series={"L_vlb": alternating(100, 6.0, a * IN)}) is None
    assert found(db, "vlb-jitter", cfg, series={"L_vlb": alternating(100, 6.0, a * OUT)}) is not None


def calm_with_spike(steps, at):
    """A calm L_vlb (cv 1 per image) with one spike of +100 at step `at` (alone it lifts the cv far above 8)."""
    y = with_cv(len(steps), 6.0, 1.0, 1280, seed=4)
    y[steps.index(at)] += 100.0
    return y


def test_early_fraction_edge(db):
    # Values from ceil(EARLY_FRACTION * step) on are judged: a spike one logged value before it is ignored, at it not.
    cfg = config("recipe.batch_size=128", recipe="p1-hybrid-cosine")
    steps = list(range(10, 4010, 10))                                  # 400 values (the tail read), to step 4,000
    start = math.ceil(T.EARLY_FRACTION.value * 4000)                   # 800
    assert found(db, "vlb-jitter", cfg, series={"L_vlb": (steps, calm_with_spike(steps, start - 10))}) is None
    assert found(db, "vlb-jitter", cfg, series={"L_vlb": (steps, calm_with_spike(steps, start))}) is not None


def test_importance_sampling_warmup_edge(db):
    # With importance sampling on, values before ceil(IS_WARMUP * 10 T / batch) are not judged either.
    cfg = config("recipe.batch_size=8", "recipe.importance_sampling=true", "recipe.diffusion_steps=1000",
                 recipe="p1-hybrid-cosine")
    steps = list(range(10, 4010, 10))
    warm = math.ceil(T.IS_WARMUP.value * 10 * 1000 / 8)                # 3,750: later than the early fraction's 800
    assert found(db, "vlb-jitter", cfg, series={"L_vlb": (steps, calm_with_spike(steps, warm - 10))}) is None
    assert found(db, "vlb-jitter", cfg, series={"L_vlb": (steps, calm_with_spike(steps, warm))}) is not None


def test_min_rows_edge(db):
    cfg = config("recipe.batch_size=128", recipe="p1-hybrid-cosine")
    steps, wild = alternating(30, 6.0, 5.0)
    n = int(T.MIN_ROWS.value)
    with Store(db) as store:
        short = record(store, cfg, series={"L_vlb": (steps[:n - 1], wild[:n - 1])})
        enough = record(store, cfg, series={"L_vlb": (steps[:n], wild[:n])})
    assert needs(judge(db, short), "vlb-jitter") is not None
    assert finding(judge(db, enough), "vlb-jitter") is not None


def test_skipped_steps_edge(db):
    cfg = config("recipe.precision=fp16", device="cuda")
    assert found(db, "mixed-precision-skips", cfg, device="cuda:0", series={"L_simple": decaying(30)}) is None
    assert found(db, "mixed-precision-skips", cfg, device="cuda:0",
                 series={"L_simple": decaying(30), "skipped_steps": ([100], [1.0])}) is not None


def test_clip_active_edge(db):
    cfg = config("recipe.grad_clip=1.0")
    half = np.r_[np.full(50, 2.0), np.full(50, 0.5)]
    more = np.r_[np.full(51, 2.0), np.full(49, 0.5)]
    assert found(db, "clipping-active", cfg, series={"grad_norm": half}) is None
    assert found(db, "clipping-active", cfg, series={"grad_norm": more}) is not None


def test_flops_band_and_router_pinning_edges(db):
    cfg = config("recipe.batch_size=8", dataset="cifar10", backbone="dydit-s-2", recipe="p5-dydit-finetune")
    lam, band = 0.5, T.FLOPS_BAND.value
    assert found(db, "router", cfg, series={"flops_ratio": np.full(100, lam + band * IN)}) is None
    assert found(db, "router", cfg, series={"flops_ratio": np.full(100, lam + band * OUT)}) is not None
    edge = 1 - T.ROUTER_PINNED.value
    stays = int(T.ROUTER_STAYS.value * 50)                       # of the judged (latter) half: 50 values
    judged = np.r_[np.full(stays, edge), np.full(50 - stays, lam)]
    f = found(db, "router", cfg, series={"flops_ratio": np.r_[np.full(50, lam), judged]})
    assert f is not None and "collapsed" in f.title                    # 90% at exactly 0.95: pinned
    judged = np.r_[np.full(stays - 1, edge), np.full(51 - stays, lam)]
    f = found(db, "router", cfg, series={"flops_ratio": np.r_[np.full(50, lam), judged]})
    assert f is None or "collapsed" not in f.title                     # 88%: not a collapse


def nll(values):
    return [dict(step=s, sampler="full chain", nfe=1000, kind="nll", metric="nll_bpd", value=v, samples=256,
                 protocol={}) for s, v in values]


def test_eval_noise_min_evals_and_loss_falls_edges(db):
    cfg = config()
    best = 2.5
    at = best * (1 + T.EVAL_NOISE.value)
    loss = decaying(200)
    assert found(db, "overfitting", cfg, series={"L_simple": loss},
                 evals=nll([(500, best), (1000, at), (2000, at)])) is None
    assert found(db, "overfitting", cfg, series={"L_simple": loss},
                 evals=nll([(500, best), (1000, at * OUT), (2000, at * OUT)])) is not None   # MIN_EVALS = 3 exactly
    with Store(db) as store:
        two = record(store, cfg, series={"L_simple": loss}, evals=nll([(500, best), (2000, 3.0)]))
    assert needs(judge(db, two), "overfitting") is not None
    # The loss "falls" by more than LOSS_FALLS: constant 1.0 up to step 1500, then x.
    rows = nll([(500, best), (1800, 3.0), (2000, 3.0)])
    steps = list(range(10, 2010, 10))
    for x, expect in ((1 - T.LOSS_FALLS.value, None), ((1 - T.LOSS_FALLS.value) * IN, "found")):
        level = [1.0 if s <= 1500 else x for s in steps]
        f = found(db, "overfitting", cfg, series={"L_simple": (steps, level)}, evals=rows)
        assert (f is not None) == (expect == "found"), x


def test_memorisation_edge(db):
    def rows(newest):
        return [(s, {"grid_nn_ratio": v}) for s, v in ((500, 0.9), (1000, newest))]
    cfg = config()
    assert found(db, "overfitting", cfg, series={"L_simple": decaying(100)}, grids=rows(T.MEMORISATION.value)) is None
    assert found(db, "overfitting", cfg, series={"L_simple": decaying(100)},
                 grids=rows(T.MEMORISATION.value * IN)) is not None


def grid(step, **numbers):
    base = dict(grid_mean=-0.5, grid_std=0.5, grid_data_mean=-0.5, grid_data_std=0.5, grid_w1=0.05,
                grid_saturated=0.2, grid_data_saturated=0.2, grid_colour_cast=0.0)
    base.update(numbers)
    return [(step, base)]


@pytest.mark.parametrize("numbers_in, numbers_out", [
    ({"grid_w1": 0.5 * T.GRID_VALUE_W1.value}, {"grid_w1": 0.5 * T.GRID_VALUE_W1.value * OUT}),
    ({"grid_mean": -0.5 + 0.5 * T.GRID_MEAN_SHIFT.value}, {"grid_mean": -0.5 + 0.5 * T.GRID_MEAN_SHIFT.value * OUT}),
    ({"grid_std": 0.5 * T.GRID_STD_RATIO.value}, {"grid_std": 0.5 * T.GRID_STD_RATIO.value * OUT}),
    ({"grid_std": 0.5 / T.GRID_STD_RATIO.value}, {"grid_std": 0.5 / T.GRID_STD_RATIO.value * IN}),
])
def test_grid_off_data_edges(db, numbers_in, numbers_out):
    cfg = config()
    loss = decaying(200, 1.0, 0.05)
    inside = grid(1000, **numbers_in) + grid(2000, **numbers_in)
    outside = grid(1000, **numbers_out) + grid(2000, **numbers_out)
    assert found(db, "grid-off-data", cfg, series={"L_simple": loss}, grids=inside) is None
    assert found(db, "grid-off-data", cfg, series={"L_simple": loss}, grids=outside) is not None


def test_still_improving_edge(db):
    # Scores are measure / threshold: value_w1 = 0.5 (data std 0.5) is 2x GRID_VALUE_W1; the newer grid stays
    # "stuck" while it shrank by at most STILL_IMPROVING.
    cfg = config()
    loss = decaying(200, 1.0, 0.05)
    older = 0.5
    for newer, expect in ((older * (1 - T.STILL_IMPROVING.value), True),
                          (older * (1 - T.STILL_IMPROVING.value) * IN, False)):
        rows = grid(1000, grid_w1=older) + grid(2000, grid_w1=newer)
        assert (found(db, "grid-off-data", cfg, series={"L_simple": loss}, grids=rows) is not None) is expect


def test_loss_progress_edge(db):
    # The loss counts as fallen at exactly LOSS_PROGRESS of its first level (at most half), not above it.
    cfg = config()
    steps = list(range(10, 2010, 10))
    for x, expect in ((T.LOSS_PROGRESS.value, True), (T.LOSS_PROGRESS.value * OUT, False)):
        level = [1.0 if s <= 1000 else x for s in steps]
        f = found(db, "grid-off-data", cfg, series={"L_simple": (steps, level)},
                  grids=grid(1500, grid_w1=0.9) + grid(2000, grid_w1=0.9))
        assert (f is not None) is expect, x


@pytest.mark.parametrize("key, edge", [("grid_saturated", 0.2 + T.SATURATION_EXCESS.value),
                                       ("grid_colour_cast", T.COLOUR_CAST.value)])
def test_colour_drift_edges(db, key, edge):
    cfg = config()
    inside = grid(1000, **{key: edge * IN}) + grid(2000, **{key: edge * IN})
    outside = grid(1000, **{key: edge * OUT}) + grid(2000, **{key: edge * OUT})
    assert found(db, "colour-drift", cfg, series={"L_simple": decaying(200)}, grids=inside) is None
    assert found(db, "colour-drift", cfg, series={"L_simple": decaying(200)}, grids=outside) is not None


def test_few_step_factor_edge(db):
    def rows(few):
        return [dict(step=3000, sampler="h N=10", nfe=10, kind="curve", metric="fid", value=few, samples=10_000,
                     protocol={"steps": 10, "variance": "fixed_small"}),
                dict(step=3000, sampler="DDIM N=50", nfe=50, kind="fid", metric="fid", value=10.0, samples=10_000,
                     protocol={})]
    cfg = config()
    edge = 10.0 * T.FEW_STEP_FACTOR.value
    assert found(db, "few-step-collapse", cfg, series={"L_simple": decaying(30)}, evals=rows(edge)) is None
    assert found(db, "few-step-collapse", cfg, series={"L_simple": decaying(30)}, evals=rows(edge * OUT)) is not None


def test_consistency_edge(db):
    def rows(score):
        return [dict(step=1000, sampler="DDIM eta=0 N=100 linear", nfe=100, kind="consistency", metric="consistency",
                     value=score, protocol={})]
    cfg = config()
    assert found(db, "ddim-consistency", cfg, series={"L_simple": decaying(30)},
                 evals=rows(T.CONSISTENCY.value)) is None
    assert found(db, "ddim-consistency", cfg, series={"L_simple": decaying(30)},
                 evals=rows(T.CONSISTENCY.value * IN)) is not None


def test_divergence_edge(db):
    cfg = config("recipe.batch_size=8")                               # changed from the recipe's 128
    for top, expect in ((T.DIVERGENCE.value * 0.5, False), (T.DIVERGENCE.value * 0.5 * OUT, True)):
        y = np.r_[np.full(100, 1.0), np.full(80, 0.5), np.full(20, top)]   # lowest level 0.5, newest `top`
        f = found(db, "lr-off-rule", cfg, series={"L_simple": y})
        assert (f is not None) is expect, top


def test_loss_jitter_edge(db):
    cfg = config("recipe.batch_size=8", "recipe.log_every=1000")      # 8,000 images per value: a small swing
    a = amplitude_for(T.LOSS_JITTER.value, 200, 0.5, 8_000)
    assert found(db, "lr-off-rule", cfg, series={"L_simple": alternating(200, 0.5, a * IN)}) is None
    assert found(db, "lr-off-rule", cfg, series={"L_simple": alternating(200, 0.5, a * OUT)}) is not None


def test_near_duplicates_edge(db, monkeypatch):
    def table(ratio):
        return {"near_duplicates": {"ratio": ratio, "clusters": 3, "threshold": "Hamming distance <= 8 of 64 bits"},
                "train_test_overlap": {"test_checked": 100, "exact": 0, "near": 0}}
    cfg = config()
    monkeypatch.setattr(RunView, "quality", lambda self: table(T.NEAR_DUPLICATES.value))
    assert found(db, "data-overlap", cfg, series={"L_simple": decaying(30)}) is None
    monkeypatch.setattr(RunView, "quality", lambda self: table(T.NEAR_DUPLICATES.value * OUT))
    f = found(db, "data-overlap", cfg, series={"L_simple": decaying(30)})
    assert f is not None and f.severity == "info"


def test_low_util_and_data_wait_edges(db):
    cfg = config(device="cuda")

    def case(util, wait):
        gpu = [(1000.0 + i, 0, util, 1e9, 8e10, 50.0, 200.0, "NVIDIA H100 80GB HBM3") for i in range(40)]
        return found(db, "loader-bound", cfg, device="cuda:0", series={"data_wait": np.full(40, wait)}, gpu=gpu)
    util, wait = T.LOW_UTIL.value, T.DATA_WAIT.value
    assert case(util, wait * OUT) is None and case(util * IN, wait) is None
    assert case(util * IN, wait * OUT) is not None


def test_mfu_fraction_edge(db):
    cfg = config("recipe.batch_size=64", dataset="imagenet64", backbone="unet-c128", device="cuda")
    usual = 467 * 6 * 39.7e9 / 1e12 / 989.0
    gpu = [(1000.0 + i, 0, 90.0, 1e9, 8e10, 50.0, 200.0, "NVIDIA H100 80GB HBM3") for i in range(40)]
    edge = T.MFU_FRACTION.value * usual * 989.0
    assert found(db, "low-mfu", cfg, device="cuda:0", series={"tflops": np.full(40, edge * OUT)}, gpu=gpu) is None
    assert found(db, "low-mfu", cfg, device="cuda:0", series={"tflops": np.full(40, edge * IN)}, gpu=gpu) is not None
