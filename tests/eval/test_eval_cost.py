"""Issue 16 item 5: the cost of an evaluation is said before it is paid, and the default NLL is a small fixed count
said beside the number.

The cost counts image-forwards (one image through the network once): a sampler's grid is 64 images x its NFE, the
full-chain NLL is T calls per image; seconds are forwards over a measured rate."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from difftui.engine.config.catalog import Catalog, config_to_dict
from difftui.engine.eval.cost import TRAIN_IMAGE_FORWARDS, Cost, EvalCounts, evaluation_parts, grid_part, training_rate
from difftui.engine.eval.counts import DEFAULT_NLL_IMAGES
from difftui.engine.eval.evaluator import EvalOptions, evaluate
from difftui.engine.store import Store

DIFFTUI = str(Path(sys.executable).parent / "difftui")


def demo_config(*overrides: str):
    return Catalog().resolve(overrides=list(overrides), max_steps=300, device="cpu")


def test_the_cost_counts_each_sampler_step_and_each_chain_step_per_image():
    config = demo_config()                          # digits, unet-demo, DDIM panel N=10/20/50/100, T=1000
    assert [s.steps for s in config.sampler.sweep] == [10, 20, 50, 100] and config.recipe.diffusion_steps == 1000
    panel, nll = evaluation_parts(config, EvalCounts())
    assert panel.forwards == 64 * (50 + 10 + 20 + 100)                 # the grid sampler (N=50) listed once
    assert nll.forwards == DEFAULT_NLL_IMAGES * 1000 == 8_000
    assert nll.what == "held-out NLL: 8 images x 1,000 steps"
    cost = Cost((panel, nll), rate=500.0, basis="timed")
    assert cost.seconds == pytest.approx((11_520 + 8_000) / 500)
    assert cost.describe() == ("estimate: about 39 s (panel: 4 samplers x 64 images, NFE 180: 23 s; held-out NLL: "
                               "8 images x 1,000 steps: 16 s) at 500 image-forwards/s, timed")
    # FID: samples x the selection sampler's NFE (the panel's deterministic grid sampler, DDIM N=50; playbook 5.6).
    (_, _, fid) = evaluation_parts(config, EvalCounts(fid_samples=10_000, repeats=2))
    assert fid.forwards == 2 * 10_000 * 50
    # Heun: NFE 2N-1 (playbook 5.3).
    edm = Catalog().resolve(sampler="edm-heun", recipe="p3-cifar10", overrides=["recipe.augment_p=0"], max_steps=300,
                            device="cpu")
    assert grid_part(edm).forwards == 64 * (2 * edm.sampler.grid.steps - 1)
    (edm_panel,) = evaluation_parts(edm, EvalCounts())              # the EDM loss has no chain likelihood
    assert edm_panel.what.startswith("panel: ")


def test_an_unmeasured_rate_says_the_work_and_that_its_time_is_unknown():
    cost = Cost(evaluation_parts(demo_config(), EvalCounts(panel=False)), rate=None, basis="no img/s logged")
    assert cost.seconds is None
    assert cost.describe() == "estimate: 8,000 image-forwards (held-out NLL: 8 images x 1,000 steps); time unknown " \
                              "(no img/s logged)"


def test_the_rate_before_any_process_is_the_runs_training_speed_times_three(tmp_path):
    with Store(tmp_path / "runs.db") as store:
        run_id = store.create_run(config_to_dict(demo_config()), name="r", total_steps=300, device="cpu")
        assert training_rate(store, store.get_run(run_id))[0] is None
        store.write_batch(run_id, metrics=[(s, 0.0, "img_per_s", v, 0.0) for s, v in ((10, 80.0), (20, 100.0),
                                                                                       (30, 90.0))])
        rate, basis = training_rate(store, store.get_run(run_id))
    assert rate == 90.0 * TRAIN_IMAGE_FORWARDS
    assert basis.startswith(f"from run {run_id}'s training speed on ") and basis.endswith("(90 img/s x 3)")


def test_the_default_nll_is_over_a_few_images_and_says_how_many(digits_run):
    db, run_id = digits_run
    lines = evaluate(db, run_id, EvalOptions(panel=False, device="cpu"))
    with Store(db) as store:
        nll = [r for r in store.eval_results(run_id, kind="nll") if r["metric"] == "nll_bpd"][-1]
    assert nll["samples"] == DEFAULT_NLL_IMAGES == 8 and nll["protocol"]["heldout"]["images"] == 8
    assert any(line.startswith("NLL ") and " on 8 held-out images " in line for line in lines)
    # The evaluator said its own estimate first, at a rate it timed: 8 images x T = 50 steps.
    assert lines[0].startswith(f"run {run_id} at step ")


def test_difftui_eval_prints_the_estimate_before_the_evaluation_starts(digits_run):
    db, run_id = digits_run
    result = subprocess.run([DIFFTUI, "--db", str(db), "eval", str(run_id), "--device", "cpu"], capture_output=True,
                            text=True, timeout=600, env={**os.environ, "COLUMNS": "400"})
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    assert out[0].startswith("estimate: about ") and "held-out NLL: 8 images x 50 steps: " in out[0]
    assert "panel: 3 samplers x 64 images, NFE 80: " in out[0]            # N=100 exceeds T = 50
    assert "image-forwards/s, from run " in out[0]
    nll = [i for i, line in enumerate(out) if line.startswith("NLL ")]
    assert nll and " on 8 held-out images " in out[nll[0]] and nll[0] > 0
    # The evaluator's own estimate (a timed batch) is in its log before its first piece of work.
    log = (Path(db).parent / "runs" / str(run_id) / "eval.log").read_text().splitlines()
    said = [i for i, line in enumerate(log) if line.startswith("estimate: about ")]
    work = [i for i, line in enumerate(log) if line.startswith("panel: ")]
    assert said and work and said[-1] < work[-1] and "timed on cpu at batch 64" in log[said[-1]]


def test_the_held_out_nll_reports_its_progress_at_every_chain_step(digits_run, monkeypatch):
    """The job row says how far the NLL is ("held-out NLL: 0/8 images, chain step 25/50 of the next 8") and counts
    one unit per network call, so the progress bar moves during a chain that may take minutes."""
    from difftui.engine.eval import evaluator
    monkeypatch.setattr(evaluator, "PROGRESS_EVERY_S", 0.0)            # every update written
    rows = []
    original = Store.report_progress

    def spy(self, job_id, done, total, message):
        rows.append((done, total, message))
        original(self, job_id, done, total, message)

    monkeypatch.setattr(Store, "report_progress", spy)
    db, run_id = digits_run
    evaluate(db, run_id, EvalOptions(panel=False, device="cpu"))
    steps = [m for _, _, m in rows if m.startswith("held-out NLL: ")]
    assert steps[:50] == [f"held-out NLL: 0/8 images, chain step {k}/50 of the next 8" for k in range(1, 51)]
    assert steps[50:] and set(steps[50:]) == {"held-out NLL: 8/8 images"}
    assert rows[-1][0] == rows[-1][1] == 50            # 8 images in one batch: T = 50 calls, all done
