"""`difftui report ID`: the markdown appendix of a run (config with playbook sections, data and evaluation protocols,
metric tables, the few-step curve, loss curves and grids as PNGs beside it)."""

import io
import re
import time

from eval_testkit import tiny_config
from PIL import Image
from typer.testing import CliRunner

from difftui.engine.config.catalog import config_to_dict
from difftui.engine.eval.report import KNOB_SECTIONS, write_report
from difftui.engine.run.sample_grid import grid_png
from difftui.engine.store import Store
from difftui.tui.cli import app


def make_run(db, tmp_path):
    """A run with losses, a grid, a panel grid, two FID evaluations, an NLL and a curve (rows as the evaluator
    writes them)."""
    import torch
    with Store(db) as store:
        run_id = store.create_run(config_to_dict(tiny_config(100)), name="report-me", total_steps=100)
        store.write_batch(run_id, metrics=[(s, s * 0.008, "L_simple", 1.0 / s, time.time()) for s in range(5, 105, 5)])
        png = grid_png(torch.zeros(4, 1, 8, 8))
        (tmp_path / "g.png").write_bytes(png)
        store.add_sample(run_id, step=100, kind="grid", sampler="DDIM eta=0 N=10 linear", nfe=10, png=png,
                         path=str(tmp_path / "g.png"))
        fid = dict(sampler="DDIM eta=0 N=10 linear", nfe=10, kind="fid", repeats=3,
                   protocol={"sampler": "DDIM eta=0 N=10 linear", "nfe": 10, "samples": 50_000, "repeats": 3,
                             "feature_net": "inception-v3-compat", "reference": {"images": 1797}, "pr_k": 3,
                             "pr_real": 1797, "quick": False,
                             "selection": "lowest FID at a fixed deterministic sampler and NFE (playbook 5.6)"})
        for job, step, value in ((1, 50, 31.5), (2, 100, 12.25)):
            store.add_eval_results(run_id, [{**fid, "step": step, "job_id": job, "samples": 50_000, "metric": "fid",
                                             "value": value, "spread": 0.4},
                                            {**fid, "step": step, "job_id": job, "metric": "precision", "value": 0.6}])
        store.add_eval_results(run_id, [dict(step=100, sampler="full chain T=1000 fixed_small", nfe=1000, kind="nll",
                                             job_id=2, metric="nll_bpd", value=3.875, samples=256,
                                             protocol={"heldout": {"split": "test", "images": 256, "split_size": 360,
                                                                   "overlap_with_train": 0}})])
        for steps in (5, 10):
            store.add_eval_results(run_id, [dict(step=100, sampler=f"OCM (P6) N={steps}", nfe=steps, kind="curve",
                                                 job_id=3, samples=10_000, metric="fid", value=50.0 / steps,
                                                 protocol={"variance": "ocm", "steps": steps,
                                                           "grid": str(tmp_path / "g.png")})])
        store.update_run(run_id, best_snapshot=None, step=100, status="completed")
    return run_id


def test_the_report_holds_config_protocols_tables_and_pngs(tmp_path):
    db = tmp_path / "runs.db"
    run_id = make_run(db, tmp_path)
    path = write_report(db, run_id)
    assert path == tmp_path / "runs" / str(run_id) / "report" / "report.md"
    text = path.read_text()
    for heading in ("## The run", "## Configuration", "## Data protocol", "## Evaluation protocol", "## Metrics",
                    "## Few-step curve (playbook 5.7-5.8)", "## Loss curves", "## Grids"):
        assert heading in text, heading
    assert f"| `recipe.ema_decay` | 0.9999 | {KNOB_SECTIONS['recipe.ema_decay']} |" in text
    assert "| `recipe.snapshot_kimg` | 2500 | 5.6 |" in text
    assert "held-out split `test`: 360 images, 256 used for NLL, 0 shared with training" in text
    assert "fixed sampler `DDIM eta=0 N=10 linear`, NFE 10, EMA weights; 50,000 generated images, 3 repeat(s)" in text
    assert "| 100 | checkpoint | fid | DDIM eta=0 N=10 linear | 10 | 50,000 | 3 | 12.250 | 0.400 | 0.600 |" in text
    assert "| 100 | checkpoint | nll | full chain T=1000 fixed_small | 1000 | - | - | - | - | - | - | 3.8750 | 256 |" in text
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert {"loss.png", "fid.png", "curve-fid.png", "curve-nll.png"} <= set(links)
    for link in links:
        image = Image.open(io.BytesIO((path.parent / link).read_bytes()))
        assert image.size[0] >= 32, link


def test_difftui_report_prints_the_path_and_refuses_an_unknown_run(tmp_path):
    db = tmp_path / "runs.db"
    run_id = make_run(db, tmp_path)
    out = tmp_path / "appendix" / "run.md"
    result = CliRunner().invoke(app, ["--db", str(db), "report", str(run_id), "--out", str(out)])
    assert result.exit_code == 0 and str(out) in result.stdout and (out.parent / "loss.png").exists()
    result = CliRunner().invoke(app, ["--db", str(db), "report", "99"])
    assert result.exit_code == 2 and result.stderr.strip() == f"difftui: error: {db}: no run 99"
