"""What the two-process tests run in each rank: `python -m torch.distributed.run --standalone --nproc-per-node 2
tests/run/two_ranks.py MODE OUT [ARGS]` (the launcher the engine's own torchrun backend uses; gloo on the CPU).
Each mode joins the world with the engine's `init_world()` and rank 0 writes what it saw to OUT as JSON.

    mfu OUT           the loop's throughput and MFU for an interval of 10 steps in 2 s at 8 images per rank
    data OUT CONFIG   Trainer.setup() of the run config in the CONFIG file (JSON); every rank notes each cache
                      build it starts (engine/data/cache.py's CacheWriter) in OUT.<rank>.builds
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import torch

PER_RANK_BATCH, STEPS, SECONDS = 8, 10, 2.0
FLOPS_PER_IMAGE, PEAK_TFLOPS = 3e9, 100.0


class MetricsOwner:
    """Rank 0's run owner, as far as TrainLoop.log_interval uses it: the metrics it would queue for runs.db."""

    def __init__(self):
        self.values: dict[str, float] = {}
        self.log = self

    def add_metrics(self, step, kimg, values):
        self.values.update(values)

    def event(self, message, level="info"):
        pass


def interval_metrics(world) -> dict[str, float]:
    """The values TrainLoop logs for one interval of STEPS steps in SECONDS at PER_RANK_BATCH images per rank, with
    FLOPS_PER_IMAGE and one card's peak PEAK_TFLOPS (the meter's interval is reduced over the world, as in a run)."""
    from difftui.engine.run.loop import TrainLoop
    recipe = types.SimpleNamespace(batch_size=PER_RANK_BATCH * world.size, max_nonfinite_steps=20)
    trainer = types.SimpleNamespace(recipe=recipe, device=torch.device("cpu"), step=STEPS, kimg=0.0,
                                    learning_rate=lambda: 1e-4, objective=types.SimpleNamespace(constants=dict),
                                    data_wait_s=0.0)
    owner = MetricsOwner() if world.main else None
    loop = TrainLoop(trainer, owner, world)
    loop.flops_per_image, loop.peak = FLOPS_PER_IMAGE, PEAK_TFLOPS
    for _ in range(STEPS):
        loop.meter.accumulate({"L_simple": torch.tensor(0.5)}, torch.tensor(True))
    loop.log_interval(loop.meter.close(world), SECONDS, STEPS)
    return owner.values if owner is not None else {}


def data_setup(world, out: Path, config_file: Path) -> dict:
    """Trainer.setup() on every rank, noting each cache build this rank starts."""
    from difftui.engine.config.catalog import config_from_dict
    from difftui.engine.data import cache
    from difftui.engine.run.trainer import Trainer
    builds = out.with_name(f"{out.name}.{world.rank}.builds")
    builds.write_text("")
    real = cache.CacheWriter.__init__

    def noted(self, target, *args, **kwargs):
        with builds.open("a") as f:
            f.write(f"{target.name}\n")
        real(self, target, *args, **kwargs)

    cache.CacheWriter.__init__ = noted
    config = config_from_dict(json.loads(config_file.read_text()), "two_ranks config")
    trainer = Trainer(config, out.parent / "run", world)
    trainer.setup()
    images = [len(trainer.data)]
    return {"images": images, "cache_dir": str(getattr(trainer.data, "cache_dir", ""))}


def main(argv: list[str]) -> int:
    from difftui.engine.run.distributed import init_world
    mode, out = argv[0], Path(argv[1])
    world = init_world()
    result = interval_metrics(world) if mode == "mfu" else data_setup(world, out, Path(argv[2]))
    gathered = world.gather(result)
    if world.main:
        out.write_text(json.dumps(gathered))
    world.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
