"""Shared helpers for the evaluation tests: the small feature network that stands in for Inception, and finished
tiny runs to evaluate."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from engine_testkit import TINY, tiny_config, wait_for, write_tiny_cifar10  # noqa: E402
from torch import nn
from torch_fidelity.feature_extractor_base import FeatureExtractorBase

__all__ = ["StandInFeatureNet", "TINY", "tiny_config", "wait_for", "write_tiny_cifar10", "finished_run",
           "EVAL_RUN"]

# A short chain (T = 50) keeps the full-chain NLL cheap; no grids or checkpoints but the final ones.
EVAL_RUN = ("recipe.diffusion_steps=50", "recipe.log_every=5", "recipe.grid_every=100000",
            "recipe.snapshot_every=100000")


class StandInFeatureNet(FeatureExtractorBase):
    """NOT Inception: a small fixed random conv net standing in for it in the tests. Same interface as
    torch-fidelity's extractors (uint8 [B, 3, H, W] in, a tuple of [B, 32] features out), so every line of the
    FID / precision-recall / reference-cache path runs as it does with Inception. Counts its forward calls."""

    def __init__(self, seed: int = 0):
        super().__init__("test-standin-not-inception", ["32"])
        g = torch.Generator().manual_seed(seed)
        self.conv = nn.Conv2d(3, 32, 3, padding=1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=g) * 0.3)
            self.conv.bias.zero_()
        self.calls = 0
        self.images = 0

    @staticmethod
    def get_provided_features_list():
        return ("32",)

    def forward(self, x):
        assert x.dtype == torch.uint8 and x.shape[1] == 3
        self.calls += 1
        self.images += x.shape[0]
        x = F.interpolate(x.float() / 127.5 - 1, size=16, mode="bilinear", align_corners=False)
        return (F.relu(self.conv(x)).mean((2, 3)),)


def finished_run(db: Path, *extra: str, steps: int = 10, dataset: str | None = None) -> int:
    """Train a tiny run to completion through the real engine; returns its id."""
    from difftui.engine.launch import runs as launch
    run_id = launch.new_run(db, tiny_config(steps, *EVAL_RUN, *extra, dataset=dataset)).run_id
    run = wait_for(db, run_id, lambda r: r["status"] not in ("queued", "running", "stopping"))
    assert run["status"] == "completed", run
    return run_id
