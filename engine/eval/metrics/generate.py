"""The generated side of FID: `count` images from the EMA weights with one fixed sampler, in batches on the run's
device, turned into feature rows as they come (no image is kept), with the time each part took.

Reproducible by construction: the noise of batch i is drawn on the CPU from a generator seeded with (seed, i), so the
same seed gives the same images on any device; stochastic samplers draw from a second generator on the device. No
global RNG is touched. Class-conditional nets get balanced labels (image k has class k mod num_classes). CUDA work is
synchronised before every clock reading, so `sampler_s` is the sampler's time, not its launch time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from difftui.engine.diffusion import SamplerArgs

from .features import features_of

__all__ = ["GenerationTiming", "generated_features", "sync"]

SEED_STRIDE = 1_000_003                             # batch i of seed s uses s * SEED_STRIDE + i


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA); a no-op on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class GenerationTiming:
    images: int = 0
    nfe: int = 0                                    # network evaluations per image (the sampler's NFE)
    sampler_s: float = 0.0
    feature_s: float = 0.0
    wall_s: float = 0.0
    batches: list[float] = field(default_factory=list)

    @property
    def images_per_s(self) -> float:
        return self.images / self.wall_s if self.wall_s > 0 else float("nan")


def generated_features(objective, net, spec: SamplerArgs, count: int, *, shape: tuple[int, int, int],
                       feature_net, device: torch.device, batch: int, seed: int, num_classes: int = 0,
                       on_batch: Callable[[int, int], None] | None = None,
                       decode: Callable[[torch.Tensor], torch.Tensor] | None = None
                       ) -> tuple[torch.Tensor, GenerationTiming]:
    """Feature rows [count, D] of `count` images sampled with `spec`, and their timing. `decode` turns a latent data
    set's samples into images before the features (its time counts as the sampler's)."""
    timing = GenerationTiming()
    rows = []
    start = time.perf_counter()
    for i, lo in enumerate(range(0, count, batch)):
        n = min(batch, count - lo)
        g = torch.Generator().manual_seed(seed * SEED_STRIDE + i)
        x_T = torch.randn((n, *shape), generator=g).to(device)
        g_dev = torch.Generator(device=device).manual_seed(seed * SEED_STRIDE + i)
        y = (torch.arange(lo, lo + n, device=device) % num_classes) if num_classes else None
        sync(device)
        t0 = time.perf_counter()
        images, nfe = objective.sample(net, x_T, spec, generator=g_dev, y=y)
        if decode is not None:
            images = decode(images)
        sync(device)
        t1 = time.perf_counter()
        rows.append(features_of(feature_net, images))
        t2 = time.perf_counter()
        timing.sampler_s += t1 - t0
        timing.feature_s += t2 - t1
        timing.batches.append(t2 - t0)
        timing.nfe = int(nfe)
        timing.images += n
        if on_batch is not None:
            on_batch(lo + n, count)
    timing.wall_s = time.perf_counter() - start
    return torch.cat(rows), timing
