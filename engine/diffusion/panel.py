"""A sampler panel's numbers: one network, one fixed x_T, every sampler of a list (playbook 5.0-5.2, 5.8): its grid,
NFE, wall time and, for the ancestral chains, the NLL in bits/dim of held-out images.

The samplers are plain `SamplerArgs`; a run's panel preset becomes that list in engine/eval/panel.py
(`panel_samplers`, `evaluate_panel`), which also writes the rows to the run's records.
"""

from __future__ import annotations

import time
from typing import Sequence

import torch

from difftui.engine.core_rules import ANCESTRAL_KINDS

from .objective import Objective
from .samplers.args import SamplerArgs

__all__ = ["evaluate_samplers"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def evaluate_samplers(objective: Objective, net, x_T: torch.Tensor, samplers: Sequence[tuple[str, SamplerArgs]],
                      images: torch.Tensor | None = None, seed: int = 0, y: torch.Tensor | None = None,
                      image_labels: torch.Tensor | None = None, nll_batch: int | None = None,
                      nll_net=None) -> list[dict]:
    """One row per (role, sampler) of `samplers`, in order (a panel lists its grid sampler first):

        {"label", "role" ("grid"|"sweep"), "kind", "steps", "nfe", "grid" [B,C,H,W] in [-1,1] or None,
         "nll_bpd" float or None, "seconds", "error" None or a one-line reason, "spec"}

    Every sampler starts from the same x_T; stochastic ones draw their noise from a generator seeded with `seed`, so
    a row is reproducible. NLL (bits/dim, mean over `images`) is computed for the ancestral chains (kind ddpm or
    covariance) when `images` is given (`nll_batch` images at a time; None: all at once), on the same respaced chain
    and covariance the sampler uses; deterministic samplers have no chain likelihood and report None. A sampler that
    does not apply to this model (e.g. learned variance on a fixed-variance model) gives a row with grid None and its
    reason in "error". For a class-conditional net, `y` labels the x_T tiles and `image_labels` the NLL images.
    `nll_net` (default `net`) computes the NLL: e.g. the fp32 network while the samplers call it under autocast.
    """
    nll_net = net if nll_net is None else nll_net
    rows = []
    for role, spec in samplers:
        row = {"label": spec.describe(), "role": role, "kind": spec.kind, "steps": spec.steps, "nfe": None,
               "grid": None, "nll_bpd": None, "seconds": None, "error": None, "spec": spec}
        try:
            objective.check_spec(spec)
        except ValueError as e:
            row["error"] = str(e)
            rows.append(row)
            continue
        generator = torch.Generator(device=x_T.device).manual_seed(seed)
        _sync(x_T.device)
        start = time.perf_counter()
        grid, nfe = objective.sample(net, x_T, spec, generator=generator, y=y)
        _sync(x_T.device)                           # CUDA runs asynchronously: time the work, not its launch
        row["seconds"] = time.perf_counter() - start
        row["grid"], row["nfe"] = grid.detach(), nfe
        if images is not None and spec.kind in ANCESTRAL_KINDS:
            nll_gen = torch.Generator(device=images.device).manual_seed(seed)
            step = nll_batch or len(images)
            total = 0.0
            for lo in range(0, len(images), step):
                labels = image_labels[lo:lo + step] if image_labels is not None else None
                nll = objective.nll_bpd(nll_net, images[lo:lo + step], spec=spec, y=labels, generator=nll_gen)
                total += float(nll.double().sum())
            row["nll_bpd"] = total / len(images)
        rows.append(row)
    return rows
