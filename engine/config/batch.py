"""The batch-split rule: the recipe's batch is the global batch, split evenly over the processes (issue 15: it was
written five times, in three wordings). The papers give the global batch with the card count beside it (P5: global
batch 256, playbook A.2; P3 CIFAR-10: batch 512 on 8 GPUs, playbook A.4), so the recipe's number stays the
paper's whatever the process count, and each process takes batch_size / processes images of every step.

The review screen, the CLI's `run`, and the engine's batch streams (data/stream.py, data/loader.py) all ask
`batch_split_error`, so the refusal reads the same wherever it is met. No torch.
"""

from __future__ import annotations

__all__ = ["batch_split_error"]


def batch_split_error(batch_size: int, processes: int) -> str | None:
    """Why `batch_size` (the global batch) cannot be shared by `processes` processes, or None when it can."""
    if processes < 1:
        return f"{processes} processes: at least one process trains"
    if batch_size % processes:
        return (f"recipe.batch_size {batch_size} does not split over {processes} processes (the recipe's batch is "
                f"the global batch: a multiple of the process count, e.g. {_nearest(batch_size, processes)})")
    return None


def _nearest(batch_size: int, processes: int) -> str:
    """The multiples of `processes` on either side of `batch_size` (the lower one only when it is positive)."""
    low = batch_size // processes * processes
    high = low + processes
    return f"{low} or {high}" if low > 0 else str(high)
