"""The widgets' pure parts (ETA, the grid scrubber, the filter, sparks) and the GPU panel in a real app."""

from __future__ import annotations

from difftui.engine.numbers import format_duration
from difftui.tui.screens.review import config_yaml, grid_nfe
from difftui.tui.widgets.gpu_panel import spark, squeeze
from difftui.tui.widgets.grid_image import GridIndex
from difftui.tui.widgets.run_table import run_matches
from difftui.tui.widgets.status_line import eta_seconds


def test_eta_and_format():
    # 100 steps left, batch 8 at 400 img/s -> 2 s.
    assert eta_seconds(900, 1000, 400.0, 8) == 2.0
    assert eta_seconds(10, None, 400.0, 8) is None
    assert eta_seconds(10, 100, None, 8) is None
    assert format_duration(3725) == "1:02:05"
    assert format_duration(None) == "-"
    assert format_duration(3 * 86400 + 7200) == "3d 2h"


def test_grid_index_follows_newest_until_scrubbed():
    idx = GridIndex()
    idx.extend([{"id": 1, "step": 5}, {"id": 2, "step": 10}])
    assert idx.current["step"] == 10 and idx.live
    assert idx.move(-1)["step"] == 5 and not idx.live
    idx.extend([{"id": 3, "step": 15}])              # a new grid does not yank the scrubbed view
    assert idx.current["step"] == 5
    assert idx.move(-1) is None                      # already at the oldest
    assert idx.latest()["step"] == 15 and idx.live
    idx.extend([{"id": 4, "step": 20}])
    assert idx.current["step"] == 20


def test_run_filter_matches_every_word():
    run = {"id": 7, "name": "digits-demo", "status": "crashed", "dataset": "digits", "backbone": "unet-demo",
           "sampler": "ddim", "recipe": "p1-default", "device": "cpu"}
    assert run_matches(run, "")
    assert run_matches(run, "CRASHED unet")
    assert not run_matches(run, "crashed cifar")


def test_spark_and_nfe_and_yaml():
    assert spark([0, 50, 100], 3) == "▁▅█"
    assert spark([0, 50, 100], 2) == "▅█"
    assert spark([0, float("nan"), 100], 3) == "▁ █"                  # a failed reading is a gap, not a 0
    squeezed = squeeze([1.0, 3.0, float("nan"), float("nan"), 5.0, 7.0], 3)
    assert squeezed[0] == 2.0 and squeezed[1] != squeezed[1] and squeezed[2] == 6.0

    class Spec:
        def __init__(self, kind, steps):
            self.kind, self.steps = kind, steps
    assert grid_nfe(Spec("edm_heun", 18)) == 35          # 2N-1 (playbook 5.3)
    assert grid_nfe(Spec("ddim", 50)) == 50
    assert "channel_mult: [1, 2]" in config_yaml({"arch": {"channel_mult": [1, 2]}})


def test_measure_config_counts_the_run_network_and_names_the_device():
    import torch

    from difftui.engine.config.catalog import Catalog
    from difftui.engine.models import count_params
    from difftui.engine.run.builders import build_model
    from difftui.tui.screens.review import measure_config
    config = Catalog().resolve(overrides=["backbone.arch.model_channels=16"], device="cuda")
    facts = measure_config(config)                  # the engine's review_facts: tier cache, device probe
    net = build_model(config.backbone, in_channels=1, out_channels=1, resolution=8)
    assert facts["params"] == count_params(net) and facts["macs"] > 0
    assert facts["tier"] == "not a paper anchor"
    if torch.cuda.is_available():
        assert facts["device"].startswith("cuda:0")
    else:
        assert "CUDA is not available" in facts["device_error"]
    assert measure_config(config)["params"] == facts["params"]
