"""Rank 0: each fixed-x_T grid measured against a fixed subset of the training images as it is drawn (issue 18; the
numbers are defined in engine/eval/diagnostics.py), logged as metric rows (diagnostics.GRID_METRICS) at the grid's step
for the doctor's rules of playbook 0.0 / 1.0 (the grid far from the data), 3.4 / 5.4 (colour drift, over-saturation)
and 1.4 (samples nearing training images). A failure here never stops training: it is said once in the event log.
"""

from __future__ import annotations

from typing import Any

import torch

from difftui.engine.eval.diagnostics import GridReference, reference_count

__all__ = ["GridCheck", "REFERENCE_SEED_OFFSET"]

REFERENCE_SEED_OFFSET = 5_003                       # the reference subset's generator, apart from x_T's and the data's


class GridCheck:
    def __init__(self, data: Any, *, seed: int, latent: bool):
        self.data = data
        self.seed = seed
        self.latent = latent
        self.reference: GridReference | None = None
        self.failed = False

    def _reference(self) -> GridReference:
        if self.reference is None:
            g = torch.Generator().manual_seed(self.seed + REFERENCE_SEED_OFFSET)
            idx = torch.randperm(len(self.data), generator=g)[:reference_count(tuple(self.data.shape))]
            images, _ = self.data.batch(idx.to(self.data.images.device))
            self.reference = GridReference.from_images(images)
        return self.reference

    def record(self, log: Any, step: int, kimg: float, images: torch.Tensor) -> str | None:
        """Queue the grid's numbers on the run's LogBuffer; returns a warning line the first time it cannot."""
        if self.latent or self.failed:
            return None                             # a latent data set: the grid is decoded pixels, the data latents
        try:
            log.add_metrics(step, kimg, self._reference().measure(images))
        except Exception as e:                      # diagnostics never stop training
            self.failed = True
            return f"grid statistics not recorded ({type(e).__name__}: {e}); the doctor's grid rules will say so"
        return None
