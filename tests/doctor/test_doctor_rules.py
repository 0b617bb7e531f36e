"""Each rule on a recorded runs.db (rows written through the Store API as the engine and the evaluator write them):
the symptom gives the finding with its playbook section and its suggested edit, a healthy run gives none, and a
run without the rule's data gives a needs note. Threshold edges: tests/doctor/test_doctor_thresholds.py."""

import math

import numpy as np
import pytest
from doctor_testkit import config, decaying, finding, judge, needs, record, steps_of, with_cv

from difftui.engine.store import Store


def run(db, cfg, **kw):
    with Store(db) as store:
        run_id = record(store, cfg, **kw)
    return judge(db, run_id)


@pytest.fixture
def db(tmp_path):
    return tmp_path / "runs.db"


def hybrid(*sets):
    return config("recipe.batch_size=128", *sets, recipe="p1-hybrid-cosine")


#----------------------------------------------------------------------------
# 3.3 The VLB curve's jitter.

def test_a_jittery_vlb_under_uniform_sampling_asks_for_importance_sampling(db):
    cfg = hybrid()
    d = run(db, cfg, series={"L_vlb": with_cv(200, 6.0, 40.0, 1280), "L_simple": decaying(200)})
    f = finding(d, "vlb-jitter")
    assert f is not None and f.severity == "warning" and f.section == "3.3"
    assert f.edits[0] == {"recipe.importance_sampling": True}
    assert f.edits[1] == {"recipe.hybrid_lambda": 0.0005}               # a smaller lambda, the second choice
    assert f.evidence.numbers["per_image_cv"] == pytest.approx(40.0, rel=0.15)
    assert f.evidence.steps == (400, 2000)                            # past the run's first 20% (steepest descent)
    assert "importance sampling" in f.why and d.warnings


def test_a_jittery_vlb_with_importance_sampling_asks_for_a_smaller_lambda_or_a_larger_batch(db):
    d = run(db, hybrid("recipe.importance_sampling=true"), series={"L_vlb": with_cv(200, 6.0, 40.0, 1280)})
    f = finding(d, "vlb-jitter")
    assert f.edits == ({"recipe.hybrid_lambda": 0.0005}, {"recipe.batch_size": 256})
    assert "even with importance sampling" in f.title


def test_a_steady_vlb_is_clean_and_a_short_one_is_not_judged(db):
    d = run(db, hybrid(), series={"L_vlb": with_cv(200, 6.0, 2.0, 1280)})
    assert finding(d, "vlb-jitter") is None and "vlb-jitter" in d.clean
    d = run(db, hybrid(), series={"L_vlb": with_cv(5, 6.0, 40.0, 1280)})
    assert needs(d, "vlb-jitter").missing[0].startswith("L_vlb: at least 20 logged values after step 10")
    d = run(db, config(), series={"L_simple": decaying(100)})
    assert "vlb-jitter" in d.not_applicable                          # L_simple alone has no VLB term


#----------------------------------------------------------------------------
# 4.3 Mixed precision, clipping.

def fp16(precision="fp16"):
    return config(f"recipe.precision={precision}", device="cuda")


def test_skipped_steps_under_fp16_ask_for_bf16_or_fp32(db):
    cfg = fp16()
    d = run(db, cfg, device="cuda:0", series={"L_simple": decaying(100),
                                               "skipped_steps": ([500, 510, 900], [3.0, 1.0, 2.0])})
    f = finding(d, "mixed-precision-skips")
    assert f.section == "4.3" and f.severity == "warning"
    assert f.edits == ({"recipe.precision": "bf16"}, {"recipe.precision": "fp32"})
    assert f.evidence.numbers["skipped"] == 6.0 and f.evidence.steps == (500, 900)


def test_skipped_steps_under_bf16_ask_for_fp32_and_fp32_runs_are_not_judged(db):
    d = run(db, fp16("auto"), device="cuda:0",
            series={"L_simple": decaying(100), "skipped_steps": ([500], [1.0])})
    assert finding(d, "mixed-precision-skips").edits == ({"recipe.precision": "fp32"},)     # auto on CUDA is bf16
    d = run(db, config(), series={"L_simple": decaying(100), "skipped_steps": ([500], [1.0])})
    assert "mixed-precision-skips" in d.not_applicable                                      # fp32 on the CPU
    d = run(db, fp16(), device="cuda:0", series={"L_simple": decaying(100)})
    assert "mixed-precision-skips" in d.clean


def test_clipping_that_acts_most_of_the_time_asks_for_the_ablation(db):
    cfg = config("recipe.grad_clip=1.0")
    norms = np.r_[np.full(60, 1.5), np.full(40, 0.5)]
    f = finding(run(db, cfg, series={"L_simple": decaying(100), "grad_norm": norms}), "clipping-active")
    assert f.section == "4.3" and f.edits == ({"recipe.grad_clip": None},)
    assert f.grid.axes == {"recipe.grad_clip": (None, 1.0)}
    assert f.evidence.numbers["fraction_above"] == 0.6
    assert "clipping-active" in run(db, config(), series={"grad_norm": norms}).not_applicable


#----------------------------------------------------------------------------
# 4.2 / 1.8 The loss after a change of batch or width.

def diverging(n=200):
    y = decaying(n, 1.0, 0.1)
    y[-30:] = np.linspace(0.15, 0.6, 30)                              # back up to 6x the lowest level
    return y


def test_a_diverging_loss_after_a_batch_change_with_the_recipes_lr_goes_back_to_the_anchored_pair(db):
    d = run(db, config("recipe.batch_size=512"), series={"L_simple": diverging()})
    f = finding(d, "lr-off-rule")
    assert f.section == "4.2, 1.8" and "diverges" in f.title
    assert f.edits[0] == {"recipe.batch_size": 128}
    assert "batch 512 (recipe p1-default: 128)" in f.evidence.text
    assert f.evidence.numbers["level_ratio"] > 4


def test_a_width_change_of_a_fixed_lr_unet_suggests_p1s_rule(db):
    d = run(db, config("backbone.arch.model_channels=32"), series={"L_simple": diverging()})
    f = finding(d, "lr-off-rule")
    assert {"recipe.lr": pytest.approx(1e-4 / math.sqrt(32 / 128))} in f.edits       # playbook A.6
    assert "not re-tuned for the new width" in f.evidence.text


def test_an_oscillating_loss_is_found_and_the_anchored_presets_are_left_alone(db):
    cfg = config("recipe.lr=1e-3")
    wild = with_cv(200, 0.2, 15.0, 1280, seed=3)
    f = finding(run(db, cfg, series={"L_simple": wild}), "lr-off-rule")
    assert "oscillates" in f.title and f.edits[0] == {"recipe.lr": 1e-4}
    d = run(db, config(), series={"L_simple": diverging()})
    assert finding(d, "lr-off-rule") is None                        # the presets' own pair: not this rule's case
    d = run(db, config("recipe.batch_size=512"), series={"L_simple": decaying(200, noise=0.01)})
    assert "lr-off-rule" in d.clean                                 # changed, but the loss is fine


def test_a_users_own_recipe_preset_is_found_through_preset_dirs(db, tmp_path, monkeypatch):
    from difftui.engine.config.catalog import builtin_dir
    from difftui.engine.doctor import diagnose
    folder = tmp_path / "mine"
    (folder / "recipes").mkdir(parents=True)
    text = (builtin_dir() / "recipes" / "p1-default.yaml").read_text().replace("name: p1-default", "name: mine")
    (folder / "recipes" / "mine.yaml").write_text(text)
    monkeypatch.setenv("DIFFTUI_PRESETS", str(folder))
    cfg = config("recipe.batch_size=512", recipe="mine")
    monkeypatch.delenv("DIFFTUI_PRESETS")
    with Store(db) as store:
        run_id = record(store, cfg, series={"L_simple": diverging()})
        assert "renamed or removed" in needs(diagnose(store, run_id), "lr-off-rule").missing[0]
        f = finding(diagnose(store, run_id, preset_dirs=(folder,)), "lr-off-rule")
    assert "batch 512 (recipe mine: 128)" in f.evidence.text


def test_a_non_finite_loss_counts_as_diverging(db):
    y = decaying(100)
    y[-3:] = np.nan
    f = finding(run(db, config("recipe.batch_size=512"), series={"L_simple": y}), "lr-off-rule")
    assert f.evidence.numbers["nonfinite"] == 3.0


#----------------------------------------------------------------------------
# 4.4 / 3.5 DyDiT's router.

def dydit(*sets):
    return config("recipe.batch_size=8", *sets, dataset="cifar10", backbone="dydit-s-2", recipe="p5-dydit-finetune")


def test_a_collapsed_router_asks_for_a_longer_warm_up(db):
    cfg = dydit()
    d = run(db, cfg, series={"flops_ratio": np.full(100, 0.99), "L_simple": decaying(100)})
    f = finding(d, "router")
    assert f.section == "4.4, 3.5" and "collapsed" in f.title
    assert f.edits == ({"backbone.arch.warmup_steps": 30_000},)       # A.2: DiT-XL's 30,000
    assert f.evidence.numbers["pinned_fraction"] == 1.0


def test_a_router_outside_the_lambda_band_is_found_and_one_inside_is_clean(db):
    f = finding(run(db, dydit(), series={"flops_ratio": np.full(100, 0.7)}), "router")
    assert f.section == "3.5, 4.4" and "outside the lambda band" in f.title
    assert finding(run(db, dydit(), series={"flops_ratio": 0.5 + 0.01 * np.sin(np.arange(100))}), "router") is None


def test_the_router_is_judged_after_the_warm_up_only(db):
    cfg = dydit("backbone.arch.warmup_steps=600")
    pinned_early = np.r_[np.full(60, 1.0), np.full(40, 0.5)]          # at 1 during the warm-up, then at lambda
    d = run(db, cfg, series={"flops_ratio": pinned_early})
    assert finding(d, "router") is None and "router" in d.clean
    d = run(db, cfg, series={"flops_ratio": np.full(50, 1.0)})         # step 500 < warm-up 600
    assert "training past the warm-up" in needs(d, "router").missing[0]
    assert finding(run(db, dydit("backbone.arch.warmup_steps=30000"), step=40_000,
                       series={"flops_ratio": (steps_of(cfg, 100, 30_000), np.full(100, 0.99))}), "router"
                   ).edits == ({"backbone.arch.warmup_steps": 60_000},)
    assert "router" in run(db, config(), series={"L_simple": decaying(10)}).not_applicable


#----------------------------------------------------------------------------
# 1.4 / 4.5 / 2.9 Overfitting.

def nll_rows(values, kind="nll", sampler="full chain T=1000 fixed_small"):
    return [dict(step=s, sampler=sampler, nfe=1000, kind=kind, metric="nll_bpd", value=v, samples=256, job_id=i,
                 protocol={"heldout": {"split": "test", "images": 256, "overlap_with_train": 0}})
            for i, (s, v) in enumerate(values)]


def test_a_held_out_nll_rising_while_the_loss_falls_suggests_the_dropout_grid(db):
    cfg = config()
    rows = nll_rows([(500, 3.0), (1000, 2.6), (1500, 2.8), (2000, 2.9)])
    d = run(db, cfg, series={"L_simple": decaying(200)}, evals=rows)
    f = finding(d, "overfitting")
    assert f.section == "1.4, 4.5, 2.9" and f.severity == "warning"
    assert f.grid.preset == "p1-dropout" and f.grid.axes == {"recipe.dropout": (0.1, 0.2, 0.3)}
    assert f.evidence.numbers["nll_best_step"] == 1000 and f.evidence.numbers["nll_newest"] == 2.9
    assert "held-out NLL (bits/dim) rose from 2.6 (step 1,000) to 2.9 (step 2,000" in f.evidence.text


def test_overfitting_on_a_cosine_schedule_cites_2_9_and_p3s_cifar_dropout(db):
    cfg = config(dataset="cifar10", backbone="unet-cifar10", recipe="p1-hybrid-cosine")
    rows = nll_rows([(500, 3.0), (1000, 2.6), (1500, 2.8), (2000, 2.9)])
    f = finding(run(db, cfg, series={"L_simple": decaying(200)}, evals=rows), "overfitting")
    assert {"recipe.dropout": 0.13} in f.edits                      # playbook 4.5 (2): P3's CIFAR-10 value
    assert "cosine schedule" in f.advice


def test_fid_rising_late_and_samples_nearing_training_images_are_overfitting_too(db):
    fid = [dict(step=s, snapshot=s, sampler="DDIM eta=0 N=50 linear", nfe=50, kind="fid", metric="fid", value=v,
                samples=10_000, protocol={}) for s, v in ((500, 30.0), (1000, 20.0), (1500, 22.0), (2000, 25.0))]
    grids = [(s, {"grid_nn_ratio": v}) for s, v in ((500, 0.95), (1000, 0.7), (2000, 0.3))]
    f = finding(run(db, config(), series={"L_simple": decaying(200)}, evals=fid, grids=grids), "overfitting")
    assert "FID rose from 20 (step 1,000) to 25 (step 2,000" in f.evidence.text
    assert "nearest training images" in f.evidence.text and f.evidence.numbers["nn_ratio_newest"] == 0.3


def test_a_falling_nll_is_clean_and_no_evaluation_is_a_needs_note(db):
    rows = nll_rows([(500, 3.0), (1000, 2.8), (1500, 2.7), (2000, 2.6)])
    d = run(db, config(), series={"L_simple": decaying(200)}, evals=rows)
    assert finding(d, "overfitting") is None
    n = needs(run(db, config(), series={"L_simple": decaying(200)}), "overfitting")
    assert n.section == "1.4, 4.5, 2.9" and "snapshot_eval" in n.how


def test_a_rising_nll_while_the_loss_rises_too_is_not_overfitting(db):
    rows = nll_rows([(500, 3.0), (1000, 2.6), (1500, 2.8), (2000, 2.9)])
    rising = np.r_[decaying(100), np.linspace(0.2, 0.6, 100)]
    assert finding(run(db, config(), series={"L_simple": rising}, evals=rows), "overfitting") is None


#----------------------------------------------------------------------------
# 0.0 / 1.0 and 3.4 / 5.4 The grid's statistics.

def grid_rows(step, **numbers):
    """One grid's statistics as the engine logs them (metric rows grid_*)."""
    base = dict(grid_mean=-0.5, grid_std=0.6, grid_data_mean=-0.5, grid_data_std=0.6, grid_w1=0.05,
                grid_saturated=0.4, grid_data_saturated=0.4, grid_nn_ratio=0.9)
    base.update(numbers)
    return [(step, base)]


def test_a_falling_loss_with_a_grid_far_from_the_data_points_at_the_normalisation(db):
    rows = grid_rows(1000, grid_w1=0.8, grid_mean=0.4) + grid_rows(2000, grid_w1=0.75, grid_mean=0.35)
    d = run(db, config(), series={"L_simple": decaying(200, 1.0, 0.05)}, grids=rows)
    f = finding(d, "grid-off-data")
    assert f.section == "0.0, 1.0" and f.evidence.steps == (1000, 2000)
    assert "pixel-value distance 1.25 data std" in f.evidence.text
    assert "mean 0.35 vs the data's -0.5" in f.evidence.text
    assert "normalisation" in f.why


def test_a_grid_that_is_still_getting_closer_to_the_data_is_training_under_way(db):
    rows = grid_rows(1000, grid_w1=1.2, grid_mean=0.4) + grid_rows(2000, grid_w1=0.5, grid_mean=-0.1)
    d = run(db, config(), series={"L_simple": decaying(200, 1.0, 0.05)}, grids=rows)
    assert finding(d, "grid-off-data") is None and "grid-off-data" in d.clean
    one = run(db, config(), series={"L_simple": decaying(200, 1.0, 0.05)}, grids=grid_rows(2000, grid_w1=0.8))
    assert "a second grid after the loss fell" in needs(one, "grid-off-data").missing[0]


def test_a_grid_far_from_the_data_before_the_loss_has_fallen_is_not_this_symptom(db):
    rows = grid_rows(100, grid_w1=0.8)
    flat = np.full(200, 1.0)
    assert finding(run(db, config(), series={"L_simple": flat}, grids=rows), "grid-off-data") is None
    assert finding(run(db, config(), series={"L_simple": decaying(200)}, grids=grid_rows(2000)),
                   "grid-off-data") is None                        # the healthy grid
    n = needs(run(db, config(), series={"L_simple": decaying(200)}), "grid-off-data")
    assert "grid statistics" in n.missing[0]


def test_over_saturation_with_a_stochastic_sampler_blames_s_churn_first(db):
    cfg = config(dataset="cifar10", backbone="ddpmpp-cifar10", sampler="edm-stochastic-cifar10",
                 recipe="p3-cifar10")
    rows = grid_rows(1000, grid_saturated=0.35, grid_data_saturated=0.05) + \
        grid_rows(2000, grid_saturated=0.4, grid_data_saturated=0.05, grid_colour_cast=0.1)
    f = finding(run(db, cfg, series={"L_edm": decaying(200)}, grids=rows), "colour-drift")
    assert f.section == "5.4, 3.4" and f.edits == ({"sampler.grid.S_churn": 0.0},)
    assert "40% of values at the ends" in f.evidence.text


def test_saturated_grids_of_a_network_still_learning_wait_for_the_loss_to_fall(db):
    """A short run (the demo for 60 steps): its grids at 30 and 60 are noise pushed to the ends of [-1, 1], and the
    loss has not fallen to half its first level: not a systematic drift yet, so the rule waits (Needs), the same
    condition 0.0's grid rule keeps. Once the loss has fallen, the same grids are the finding."""
    rows = grid_rows(1000, grid_saturated=0.99, grid_data_saturated=0.58) + \
        grid_rows(2000, grid_saturated=0.99, grid_data_saturated=0.58)
    learning = run(db, config(), series={"L_simple": np.linspace(1.0, 0.6, 200)}, grids=rows)
    assert finding(learning, "colour-drift") is None
    assert "after the loss has fallen to half its first level" in needs(learning, "colour-drift").missing[0]
    fallen = run(db, config(), series={"L_simple": decaying(200, 1.0, 0.05)}, grids=rows)
    assert finding(fallen, "colour-drift").section == "1.0, 3.4"


def test_a_colour_cast_with_a_deterministic_edm_sampler_points_at_p_train(db):
    cfg = config("recipe.P_mean=-0.4", dataset="cifar10", backbone="ddpmpp-cifar10", sampler="edm-heun",
                 recipe="p3-cifar10")
    rows = grid_rows(1000, grid_colour_cast=0.5) + grid_rows(2000, grid_colour_cast=0.6)
    f = finding(run(db, cfg, series={"L_edm": decaying(200)}, grids=rows), "colour-drift")
    assert f.section == "3.4, 5.4" and f.edits == ({"recipe.P_mean": -1.2, "recipe.P_std": 1.2},)
    once = grid_rows(1000) + grid_rows(2000, grid_colour_cast=0.6)     # one grid only: not "systematic"
    assert finding(run(db, cfg, series={"L_edm": decaying(200)}, grids=once), "colour-drift") is None


#----------------------------------------------------------------------------
# 3.6 / 5.7, 5.2, 5.6 The sampling chain.

def curve_rows(step, fids, variance="fixed_small", samples=10_000):
    return [dict(step=step, sampler=f"{variance} N={n}", nfe=n, kind="curve", metric="fid", value=v,
                 samples=samples, protocol={"steps": n, "variance": variance}) for n, v in fids.items()]


def fid_row(step, value, samples=10_000, snapshot=None):
    return dict(step=step, snapshot=snapshot, sampler="DDIM eta=0 N=50 linear", nfe=50, kind="fid", metric="fid",
                value=value, samples=samples, protocol={})


def test_a_collapsing_few_step_curve_asks_for_a_learned_covariance(db):
    rows = curve_rows(3000, {5: 80.0, 10: 40.0, 15: 30.0, 20: 20.0}) + [fid_row(3000, 10.0)]
    f = finding(run(db, config(), series={"L_simple": decaying(300)}, evals=rows), "few-step-collapse")
    assert f.section == "3.6, 5.7"
    assert f.edits == ({"recipe.variance": "learned", "recipe.loss": "hybrid"}, {"recipe.variance": "ocm"})
    assert f.evidence.numbers["ratio"] == 4.0


def test_a_learned_covariance_is_judged_on_its_own_curve(db):
    cfg = hybrid()
    rows = curve_rows(3000, {5: 80.0, 10: 40.0}) + curve_rows(3000, {5: 25.0, 10: 14.0}, variance="learned") + \
        [fid_row(3000, 10.0)]
    d = run(db, cfg, series={"L_simple": decaying(300)}, evals=rows)
    assert finding(d, "few-step-collapse") is None and "few-step-collapse" in d.clean


def test_the_few_step_rule_needs_the_curve_and_the_50_step_fid(db):
    assert "--curve" in needs(run(db, config(), series={"L_simple": decaying(30)}), "few-step-collapse").how
    rows = curve_rows(3000, {5: 80.0, 10: 40.0})
    n = needs(run(db, config(), series={"L_simple": decaying(30)}, evals=rows), "few-step-collapse")
    assert "--fid" in n.how and "step 3,000" in n.missing[0]


def consistency_rows(step, score, agreements):
    protocol = {"reference": "DDIM eta=0 N=100 linear", "steps": [10, 20, 50, 100]}
    rows = [dict(step=step, sampler=f"DDIM eta=0 N={n} linear", nfe=n, kind="consistency", metric="agreement",
                 value=a, protocol=protocol) for n, a in agreements.items()]
    return rows + [dict(step=step, sampler="DDIM eta=0 N=100 linear", nfe=100, kind="consistency",
                        metric="consistency", value=score, protocol=protocol)]


def test_a_low_ddim_consistency_points_at_the_sampler(db):
    rows = consistency_rows(2000, 0.2, {10: 0.2, 20: 0.5, 50: 0.9})
    f = finding(run(db, config(), series={"L_simple": decaying(200)}, evals=rows), "ddim-consistency")
    assert f.section == "5.2" and f.edits == ({"sampler.grid.tau": "quadratic"},)
    assert f.evidence.numbers["agreement DDIM eta=0 N=10 linear"] == 0.2
    cfg = config("sampler.grid.eta=0.5")
    f = finding(run(db, cfg, series={"L_simple": decaying(200)}, evals=rows), "ddim-consistency")
    assert f.edits == ({"sampler.grid.eta": 0.0},)


def test_a_consistent_panel_is_clean_and_none_is_a_needs_note(db):
    rows = consistency_rows(2000, 0.9, {10: 0.9, 20: 0.95, 50: 0.99})
    assert "ddim-consistency" in run(db, config(), series={"L_simple": decaying(20)}, evals=rows).clean
    assert "difftui eval" in needs(run(db, config(), series={"L_simple": decaying(20)}), "ddim-consistency").how


def test_an_older_best_snapshot_is_the_one_to_report(db):
    rows = [fid_row(s, v, snapshot=s) for s, v in ((1000, 20.0), (2000, 15.0), (3000, 18.0))]
    f = finding(run(db, config(), series={"L_simple": decaying(300)}, evals=rows), "best-snapshot")
    assert f.section == "5.6" and f.evidence.numbers["best_snapshot"] == 2000
    assert any("--snapshot 2000 --fid" in a for a in f.actions)
    within = [fid_row(s, v, snapshot=s) for s, v in ((1000, 20.0), (2000, 15.0), (3000, 15.2))]
    assert finding(run(db, config(), series={"L_simple": decaying(300)}, evals=within), "best-snapshot") is None
    n = needs(run(db, config(), series={"L_simple": decaying(30)}, evals=rows[:1]), "best-snapshot")
    assert "two snapshots" in n.missing[0]


#----------------------------------------------------------------------------
# Throughput.

def gpu_rows(util, n=60, card="NVIDIA H100 80GB HBM3"):
    return [(1000.0 + 2 * i, 0, util, 10e9, 80e9, 60.0, 300.0, card) for i in range(n)]


def test_a_gpu_waiting_for_its_loader_is_found(db):
    cfg = config("recipe.data_on_device=false", device="cuda")
    d = run(db, cfg, device="cuda:0", series={"L_simple": decaying(100), "data_wait": np.full(100, 0.6)},
            gpu=gpu_rows(25.0))
    f = finding(d, "loader-bound")
    assert f.section == "-" and f.edits == ({"recipe.data_on_device": True},)
    assert f.evidence.numbers == {"gpu_util": 25.0, "data_wait": 0.6}
    busy = run(db, cfg, device="cuda:0", series={"data_wait": np.full(100, 0.6)}, gpu=gpu_rows(95.0))
    assert finding(busy, "loader-bound") is None
    assert "loader-bound" in run(db, config(), series={"data_wait": np.full(100, 0.6)}).not_applicable


def test_mfu_far_below_the_tiers_reference_asks_for_the_fast_path(db):
    cfg = config("recipe.batch_size=64", dataset="imagenet64", backbone="unet-c128", device="cuda")
    usual = 467 * 6 * 39.7e9 / 1e12 / 989.0                           # the tier's img/s on one H100, bf16
    d = run(db, cfg, device="cuda:0", series={"tflops": np.full(50, 20.0)}, gpu=gpu_rows(90.0))
    f = finding(d, "low-mfu")
    assert f.section == "4.3" and f.evidence.numbers["usual_mfu"] == pytest.approx(usual)
    assert f.evidence.numbers["mfu_bf16"] == pytest.approx(20.0 / 989.0)
    assert f.edits == ({"recipe.compile": True},)                     # already bf16 and channels_last
    fast = run(db, cfg, device="cuda:0", series={"tflops": np.full(50, 100.0)}, gpu=gpu_rows(90.0))
    assert finding(fast, "low-mfu") is None
    n = needs(run(db, config(device="cuda"), device="cuda:0", series={"tflops": np.full(50, 1.0)}), "low-mfu")
    assert any("reference throughput" in m for m in n.missing)


#----------------------------------------------------------------------------
# A healthy P3 CIFAR-10 run (recorded, plausible numbers of a single-GPU run of the default configuration).

def test_a_healthy_p3_cifar10_run_raises_nothing(db):
    cfg = config(dataset="cifar10", backbone="ddpmpp-cifar10", sampler="edm-heun", recipe="p3-cifar10",
                 device="cuda")
    n = 5_000                                                        # 50,000 steps of 512 images, logged every 10
    steps = steps_of(cfg, n)
    rng = np.random.default_rng(11)
    series = {
        "L_edm": decaying(n, 0.9, 0.45) * (1 + 1.0 / math.sqrt(5_120) * rng.standard_normal(n)),   # per-image cv ~1
        "grad_norm": 0.35 + 0.02 * rng.standard_normal(n),
        "lr": np.minimum(np.array(steps) * 512 / 10_000_000, 1.0) * 1e-3,                 # P3's 10 Mimg ramp-up
        "img_per_s": 4_200 + 40 * rng.standard_normal(n),
        "tflops": 120 + 1.2 * rng.standard_normal(n),
        "data_wait": 0.01 + 0.005 * rng.random(n),
    }
    grids = [(s, dict(grid_mean=-0.05 + 0.01 * k / 50, grid_std=0.49, grid_data_mean=-0.05, grid_data_std=0.5,
                      grid_w1=0.03, grid_saturated=0.012, grid_data_saturated=0.01, grid_colour_cast=0.04,
                      grid_nn_ratio=1.1)) for k, s in enumerate(range(1_000, 50_001, 1_000))]
    fids = [30.0, 12.0, 6.0, 4.0, 3.2, 2.9, 2.85, 2.82, 2.83, 2.84]    # every 2.5 Mimg (4,883 steps): still improving
    evals = [dict(step=s, snapshot=s, sampler="edm_heun N=18", nfe=35, kind="fid", metric="fid", value=v,
                  samples=10_000, protocol={"quick": True}) for s, v in zip(range(4_883, 50_000, 4_883), fids,
                                                                           strict=False)]
    protocol = {"reference": "edm_heun N=40", "steps": [10, 18, 40]}
    evals += [dict(step=50_000, sampler=f"edm_heun N={m}", nfe=2 * m - 1, kind="consistency", metric=metric,
                   value=v, protocol=protocol) for m, metric, v in ((10, "agreement", 0.93), (18, "agreement", 0.97),
                                                                   (40, "consistency", 0.93))]
    gpu = [(1000.0 + 2 * i, 0, 97.0, 30e9, 80e9, 65.0, 600.0, "NVIDIA H100 80GB HBM3") for i in range(600)]
    d = run(db, cfg, device="cuda:0", series=series, grids=grids, evals=evals, gpu=gpu)
    assert d.findings == (), [f.as_dict() for f in d.findings]
    assert {"mixed-precision-skips", "lr-off-rule", "overfitting", "grid-off-data", "colour-drift",
            "ddim-consistency", "best-snapshot", "loader-bound"} <= set(d.clean)
    assert {n.rule for n in d.needs} == {"data-overlap", "low-mfu"}   # no data check here; no reference img/s
