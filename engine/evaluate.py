"""Panel evaluation of a run (playbook 5.1, 5.5, 5.8): for one checkpoint's EMA weights and the run's fixed x_T, the
8x8 grid of every sampler of the run's panel, its NFE and wall time, and for the ancestral chains the NLL in bits/dim
on a fixed batch of images. The rows land in runs.db (`samples` kind "panel", `evals`) and runs/<id>/panels/.

Two ways in: a live engine obeys the "evaluate" command between steps (`Trainer.evaluate_panel`), and
`evaluate_run` evaluates the newest checkpoint of a run that is not running, in this process.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import torch

from difftui.engine.atomic import atomic_write_bytes
from difftui.engine.grids import grid_png
from difftui.engine.store import Store, StoreError

__all__ = ["NLL_IMAGES", "fixed_images", "record_panel", "evaluate_run"]

NLL_IMAGES = 64                                     # images in the NLL batch (playbook 5.5: report the sample size)


def fixed_images(data, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A fixed batch of `n` images (and labels) drawn with its own generator, so training's stream is untouched."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(data), generator=g)[: min(n, len(data))]
    return data.batch(idx)


def record_panel(store: Store, run_id: int, step: int, rows: list[dict[str, Any]], run_dir: Path,
                 n_images: int) -> list[str]:
    """Write a panel's rows: one PNG per sampler (file + `samples`), NFE, seconds and NLL as `evals`; returns the
    event lines, one per sampler."""
    lines, evals = [], []
    for i, row in enumerate(rows):
        if row["error"] is not None:
            lines.append(f"panel {row['label']}: not applicable ({row['error']})")
            continue
        png = grid_png(row["grid"])
        path = atomic_write_bytes(Path(run_dir) / "panels" / f"step-{step:07d}-{i:02d}.png", png)
        store.add_sample(run_id, step=step, kind="panel", sampler=row["label"], nfe=int(row["nfe"]), png=png,
                         path=str(path))
        evals.append((step, row["label"], int(row["nfe"]), "seconds", float(row["seconds"])))
        text = f"panel {row['label']}: NFE {row['nfe']}, {row['seconds']:.1f} s"
        if row["nll_bpd"] is not None:
            evals.append((step, row["label"], int(row["nfe"]), "nll_bpd", float(row["nll_bpd"])))
            text += f", NLL {row['nll_bpd']:.3f} bits/dim on {n_images} images"
        lines.append(text)
    if evals:
        store.add_evals(run_id, evals)
    return lines


def evaluate_run(db_path: str | os.PathLike[str], run_id: int, *, device: str = "auto") -> list[str]:
    """Evaluate the run's panel on its newest checkpoint in this process (the run must not be running)."""
    from difftui.engine.catalog import config_from_dict
    from difftui.engine.checkpoint import load_newest
    from difftui.engine.diffusion import evaluate_panel
    from difftui.engine.trainer import Trainer, X_T_SEED_OFFSET

    with Store(db_path, create=False) as store:
        store.reap_dead_runs()
        run = store.get_run(run_id)
        if run is None:
            raise StoreError(f"{store.path}: no run {run_id}")
        if store.is_alive(run):
            raise RuntimeError(f"run {run_id} is {run['status']}: its engine evaluates it (difftui eval sends it the "
                               f"command)")
        config = config_from_dict(json.loads(run["config"]), f"run {run_id} config")
        config = dataclasses.replace(config, device=device)
        trainer = Trainer(config, Path(run["run_dir"]))
        if not (trainer.run_dir / "checkpoints").is_dir():
            raise RuntimeError(f"run {run_id} has no checkpoint yet to evaluate")
        trainer.setup()
        found = load_newest(trainer.run_dir / "checkpoints", map_location=trainer.device)
        if found is None:
            raise RuntimeError(f"run {run_id} has no checkpoint yet to evaluate")
        state = found[1]
        trainer.ema.load_state_dict(state["ema"])
        step = int(state["step"])
        images, labels = fixed_images(trainer.data, NLL_IMAGES, seed=config.recipe.seed + X_T_SEED_OFFSET + 2)
        images = images.to(trainer.device)
        labels = labels.to(trainer.device) if trainer.num_classes and labels is not None else None
        rows = evaluate_panel(trainer.objective, trainer.ema.net, trainer.x_T, config.sampler, images=images,
                              seed=config.recipe.seed, y=trainer.grid_labels, image_labels=labels)
        lines = record_panel(store, run_id, step, rows, trainer.run_dir, len(images))
        for line in lines:
            store.add_event(run_id, "info", line)
        return lines
