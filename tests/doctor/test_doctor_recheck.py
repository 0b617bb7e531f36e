"""The re-check (issue 18 item 4) on recorded runs.db files: the parent's finding judged again on a fork's own rows
says "symptom gone", "still there" or "not enough data yet (needs ...)"; a fork's early window and the importance
sampler's warm-up count from the fork step; the two runs' evaluations are paired only under one protocol; the fixed
protocol is the same sampler, NFE and sample count for both (and says when a fork changed the sampler)."""

import math

import pytest
from doctor_testkit import config, decaying, record, with_cv

from difftui.engine.doctor import diagnose
from difftui.engine.doctor.recheck import GONE, STILL, WAITING, recheck, recheck_protocol
from difftui.engine.doctor.thresholds import IS_WARMUP
from difftui.engine.store import Store

FORK = 2000                                         # the fork step
T, BATCH, EVERY = 4000, 128, 10                     # p1-hybrid-cosine's T and log_every; the batch set below
WARMUP = math.ceil(IS_WARMUP.value * 10 * T / BATCH)   # steps of uniform draws after a fork turns importance sampling on


def hybrid(*sets):
    return config(f"recipe.batch_size={BATCH}", *sets, recipe="p1-hybrid-cosine")


@pytest.fixture
def db(tmp_path):
    return tmp_path / "runs.db"


def parent_run(store):
    """A hybrid run with uniform timestep sampling whose VLB jitters (vlb-jitter, playbook 3.3), to step 2000."""
    return record(store, hybrid(), series={"L_vlb": with_cv(200, 6.0, 40.0, BATCH * EVERY),
                                           "L_simple": decaying(200)}, name="parent")


def fork_of(store, parent, cfg, vlb, *, start=FORK):
    """A child recorded as a fork of `parent` at `start`: its rows from start + log_every on."""
    steps = [start + EVERY * (k + 1) for k in range(len(vlb))]
    child = record(store, cfg, series={"L_vlb": (steps, vlb), "L_simple": (steps, decaying(len(vlb), 0.2, 0.1))},
                   name="child")
    store.update_run(child, parent_id=parent, fork_step=start)
    return child


def test_the_symptom_is_gone_on_a_fork_where_the_rule_no_longer_fires(db):
    with Store(db) as store:
        parent = parent_run(store)
        assert [f.rule for f in diagnose(store, parent).warnings] == ["vlb-jitter"]
        child = fork_of(store, parent, hybrid("recipe.importance_sampling=true"),
                        with_cv(WARMUP // EVERY + 100, 6.0, 2.0, BATCH * EVERY, seed=1))
        result = recheck(store, parent, child)
    assert [(v.rule, v.state, v.section) for v in result.verdicts] == [("vlb-jitter", GONE, "3.3")]
    assert result.verdicts[0].parent.startswith("L_vlb's per-image coefficient of variation is ")
    assert result.headline() == f"re-check of run {child} (fork at step 2,000) against run {parent}: 1 symptom gone"
    assert not result.still_there
    assert result.lines()[1] == "  vlb-jitter (playbook 3.3): symptom gone"


def test_a_fork_that_still_jitters_is_still_there_and_says_what_it_sees(db):
    with Store(db) as store:
        parent = parent_run(store)
        child = fork_of(store, parent, hybrid("recipe.importance_sampling=true"),
                        with_cv(WARMUP // EVERY + 100, 6.0, 40.0, BATCH * EVERY, seed=2))
        result = recheck(store, parent, child)
    (v,) = result.verdicts
    assert v.state == STILL and result.still_there
    assert v.child.startswith("L_vlb's per-image coefficient of variation is ") and "importance (P1)" in v.child


def test_a_young_fork_is_not_judged_yet_and_says_what_it_needs(db):
    with Store(db) as store:
        parent = parent_run(store)
        child = fork_of(store, parent, hybrid("recipe.importance_sampling=true"), with_cv(30, 6.0, 2.0, 1280))
        result = recheck(store, parent, child)
    (v,) = result.verdicts
    assert v.state == WAITING
    # The importance sampler's warm-up is counted from the fork (its resampler starts afresh there), not from 0.
    assert v.needs == (f"L_vlb: at least 20 logged values after step {FORK + WARMUP:,} (the importance sampler's "
                       f"warm-up) (has 0)",)
    assert v.words() == f"{WAITING} (needs {v.needs[0]})"


def test_a_forks_early_window_counts_from_its_own_first_step(db):
    """The uniform draws right after a fork (the resampler's warm-up) jitter as the parent did; judged from the
    fork's step on, the steady stretch after the warm-up is what counts (judged from step 0, the warm-up's rows would
    raise the finding again)."""
    with Store(db) as store:
        parent = parent_run(store)
        warm = WARMUP // EVERY
        vlb = list(with_cv(warm, 6.0, 40.0, BATCH * EVERY, seed=3)) + list(with_cv(60, 6.0, 2.0, BATCH * EVERY, 4))
        child = fork_of(store, parent, hybrid("recipe.importance_sampling=true"), vlb)
        (v,) = recheck(store, parent, child).verdicts
    assert v.state == GONE, v.child


def test_a_rule_that_no_longer_applies_counts_as_gone_and_a_clean_parent_has_nothing_to_recheck(db):
    with Store(db) as store:
        parent = parent_run(store)
        child = fork_of(store, parent, config(f"recipe.batch_size={BATCH}", "recipe.log_every=10"), [0.1] * 30)
        (v,) = recheck(store, parent, child).verdicts
        assert (v.state, v.child) == (GONE, "the rule no longer applies to the child's config")
        clean = record(store, hybrid(), series={"L_vlb": with_cv(200, 6.0, 2.0, BATCH * EVERY)})
        other = fork_of(store, clean, hybrid(), [6.0] * 30)
        result = recheck(store, clean, other)
    assert result.parent_clean and result.verdicts == ()
    assert result.headline() == f"run {clean} had no finding to re-check on run {other} (fork at step 2,000)"


def fid(step, value, sampler="DDIM eta=0 N=50 linear", nfe=50, samples=10_000):
    return dict(step=step, sampler=sampler, nfe=nfe, kind="fid", metric="fid", value=value, samples=samples,
                protocol={})


def test_evaluations_are_side_by_side_only_under_one_protocol(db):
    with Store(db) as store:
        parent = parent_run(store)
        store.add_eval_results(parent, [fid(2000, 31.0), fid(2000, 40.0, samples=5_000)])
        child = fork_of(store, parent, hybrid("recipe.importance_sampling=true"), [6.0] * 30)
        store.add_eval_results(child, [fid(2300, 27.5), fid(2300, 12.0, sampler="edm_heun N=18", nfe=35)])
        result = recheck(store, parent, child)
    assert result.side_by_side == ({"kind": "fid", "metric": "fid", "sampler": "DDIM eta=0 N=50 linear", "nfe": 50,
                                    "samples": 10_000, "parent": (31.0, 2000), "child": (27.5, 2300)},)
    assert (f"  fid (DDIM eta=0 N=50 linear, NFE 50, 10,000 samples): run {parent} 31 at step 2,000, run {child} "
            f"27.5 at step 2,300") in result.lines()


def test_the_fixed_protocol_is_the_same_for_both_and_says_when_a_fork_changed_the_sampler():
    parent = config("recipe.batch_size=8")
    same = recheck_protocol(parent, config("recipe.batch_size=8", "recipe.lr=2e-4"), ["vlb-jitter"])
    assert (same.samples, same.curve, same.mismatch) == (10_000, False, None)
    assert same.line.startswith("DDIM eta=0 N=50 linear (NFE 50), 10,000 samples")
    curve = recheck_protocol(parent, parent, ["few-step-collapse"])
    assert curve.curve and curve.line.endswith(", the few-step curve")
    other = recheck_protocol(parent, config("recipe.batch_size=8", "sampler.grid.tau=quadratic"), [])
    assert other.mismatch.startswith("the fork changed the fixed sampler (DDIM eta=0 N=50 linear -> DDIM eta=0 N=50 "
                                     "quadratic)")
