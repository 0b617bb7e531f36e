"""The batch-split rule in one home (issue 15 item 3): engine/config/batch.py, asked by the review screen, the
CLI's `run` and the engine's batch streams, with the same words."""

import pytest

from difftui.engine.config.batch import batch_split_error
from difftui.engine.config.model import PresetError
from difftui.engine.launch.request import LaunchRequest


@pytest.mark.parametrize("batch, processes, error", [
    (128, 1, None), (128, 8, None), (512, 8, None), (8, 8, None),              # playbook A.4: 512 on 8 GPUs
    (8, 3, "recipe.batch_size 8 does not split over 3 processes (the recipe's batch is the global batch: a "
           "multiple of the process count, e.g. 6 or 9)"),
    (2, 4, "recipe.batch_size 2 does not split over 4 processes (the recipe's batch is the global batch: a "
           "multiple of the process count, e.g. 4)"),
    (100, 0, "0 processes: at least one process trains"),
])
def test_the_global_batch_splits_evenly_over_the_processes(batch, processes, error):
    assert batch_split_error(batch, processes) == error


def test_the_review_screen_refuses_with_the_rules_words():
    from difftui.tui.screens.review import resolve_request
    form = LaunchRequest(choices=(("datasets", "digits"),), batch_size="8", max_steps="10", overrides="",
                         off_tier=False, device="cpu", gpus="0,1,2")
    with pytest.raises(PresetError) as refused:
        resolve_request(form, [])
    assert str(refused.value) == batch_split_error(8, 3)
    config, plan = resolve_request(LaunchRequest(form.choices, "6", "10", "", False, "cpu", "0,1,2"), [])
    assert (config.recipe.batch_size, plan.nproc_per_node) == (6, 3)


def test_the_engines_batch_stream_refuses_with_the_rules_words():
    import torch

    from difftui.engine.data import DataError
    from difftui.engine.data.images import ImageSet
    from difftui.engine.data.stream import BatchStream
    data = ImageSet(torch.zeros(20, 1, 8, 8), torch.zeros(20, dtype=torch.long), name="zeros")
    with pytest.raises(DataError) as refused:
        BatchStream(data, 10, rank=0, world_size=4)
    assert str(refused.value) == batch_split_error(10, 4)
    assert BatchStream(data, 12, rank=1, world_size=4).shard == slice(3, 6)

