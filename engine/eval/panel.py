"""Panel evaluation records (playbook 5.1, 5.5, 5.8): for one set of EMA weights and the run's fixed x_T, the 8x8
grid of every sampler of the run's panel, its NFE and wall time, and for the ancestral chains the NLL in bits/dim on
held-out images, written to runs.db (`samples` kind "panel", `evals` kind "panel") and runs/<id>/panels/.

Two ways in: a live engine obeys the "evaluate" command between steps (`Loop.evaluate_panel` calls
`panel_images`, `evaluate_panel` and `record_panel`), and the evaluator process (`python -m difftui.engine eval`,
evaluator.py) evaluates a checkpoint or snapshot of a run in a process of its own.

The numbers themselves are the diffusion core's (`evaluate_samplers`, plain SamplerArgs); this module turns the
run's panel preset into that list (`panel_samplers`) and the rows into the run's records.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from difftui.engine.atomic import atomic_write_bytes
from difftui.engine.config.model import SamplerPanel
from difftui.engine.core_rules import ANCESTRAL_KINDS
from difftui.engine.diffusion import Objective, SamplerArgs, evaluate_samplers
from difftui.engine.eval.counts import LIVE_PANEL_NLL_IMAGES
from difftui.engine.eval.diagnostics import panel_consistency
from difftui.engine.eval.rows import format_metric
from difftui.engine.numbers import format_number
from difftui.engine.run.builders import sampler_args
from difftui.engine.run.sample_grid import grid_png
from difftui.engine.store import Store

__all__ = ["NLL_IMAGES", "panel_samplers", "panel_calls", "evaluate_panel", "fixed_images", "panel_images", "record_panel"]

NLL_IMAGES = LIVE_PANEL_NLL_IMAGES                  # the live panel's NLL batch (eval/counts.py)


def panel_samplers(panel: SamplerPanel) -> list[tuple[str, SamplerArgs]]:
    """[("grid", args), ("sweep", args), ...]; the grid sampler is listed once even if the sweep repeats it."""
    rows = [("grid", panel.grid)]
    rows += [("sweep", s) for s in panel.sweep if s != panel.grid]
    return [(role, sampler_args(spec)) for role, spec in rows]


def evaluate_panel(objective: Objective, net, x_T: torch.Tensor, panel: SamplerPanel, **kwargs: Any) -> list[dict]:
    """`evaluate_samplers` (difftui.engine.diffusion.panel: its rows and keyword arguments) over the panel's
    samplers, the grid sampler first."""
    return evaluate_samplers(objective, net, x_T, panel_samplers(panel), **kwargs)


def panel_calls(objective: Objective, panel: SamplerPanel, *, nll: bool) -> int:
    """Network calls of `evaluate_panel` with the NLL images in one batch: each applicable sampler's NFE, plus its
    chain's steps for an ancestral one's NLL (`nll`); the total a drawing's progress counts toward."""
    calls = 0
    for _, args in panel_samplers(panel):
        try:
            objective.check_spec(args)
        except ValueError:
            continue
        calls += args.nfe + (args.steps if nll and args.kind in ANCESTRAL_KINDS else 0)
    return calls


def fixed_images(data, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A fixed batch of `n` images (and labels) drawn with its own generator, so training's stream is untouched."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(data), generator=g)[: min(n, len(data))]
    return data.batch(idx)


def panel_images(profile, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A fixed batch of `n` held-out images (the profile's test split, which training never sees) for the panel's
    NLL; what a live engine should use instead of `fixed_images(training data, ...)`."""
    from difftui.engine.eval.metrics.heldout import heldout_set
    return fixed_images(heldout_set(profile), n, seed)


def record_panel(store: Store, run_id: int, step: int, rows: list[dict[str, Any]], run_dir: Path,
                 n_images: int, *, job_id: int | None = None, snapshot: int | None = None,
                 protocol: dict[str, Any] | None = None, decode=None) -> list[str]:
    """Write a panel's rows: one PNG per sampler (file + `samples`), NFE, seconds and NLL as `evals` (kind "panel",
    with the number of NLL images); returns the event lines, one per sampler. `decode` turns a latent data set's
    samples into images first (the data set's VAE decoder)."""
    lines, evals = [], []
    for i, row in enumerate(rows):
        if row["error"] is not None:
            lines.append(f"panel {row['label']}: not applicable ({row['error']})")
            continue
        png = grid_png(decode(row["grid"]) if decode is not None else row["grid"])
        path = atomic_write_bytes(Path(run_dir) / "panels" / f"step-{step:07d}-{i:02d}.png", png)
        store.add_sample(run_id, step=step, kind="panel", sampler=row["label"], nfe=int(row["nfe"]), png=png,
                         path=str(path))
        common = dict(step=step, sampler=row["label"], nfe=int(row["nfe"]), kind="panel", job_id=job_id,
                      snapshot=snapshot, protocol=protocol)
        evals.append({**common, "metric": "seconds", "value": float(row["seconds"])})
        text = f"panel {row['label']}: NFE {row['nfe']}, {format_metric('seconds', row['seconds'])} s"
        if row["nll_bpd"] is not None:
            evals.append({**common, "metric": "nll_bpd", "value": float(row["nll_bpd"]), "samples": n_images})
            text += f", NLL {format_metric('nll_bpd', row['nll_bpd'])} bits/dim on {format_number(n_images)} images"
        lines.append(text)
    # Issue 18 (playbook 5.2): how well the deterministic samplers' grids agree across step counts.
    evals += [{**r, "step": step, "job_id": job_id, "snapshot": snapshot} for r in panel_consistency(rows)]
    if evals:
        store.add_eval_results(run_id, evals)
    return lines
