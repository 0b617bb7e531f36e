"""The widgets' pure parts (downsampling, smoothing, ETA, the grid scrubber, the filter) and the chart in a real app."""

from __future__ import annotations

import math

from textual.app import App, ComposeResult

from difftui.tui.screens.review import config_yaml, grid_nfe
from difftui.tui.widgets.gpu_panel import GpuPanel, spark
from difftui.tui.widgets.grid_image import GridIndex
from difftui.tui.widgets.loss_chart import LossChart, downsample_minmax, ema
from difftui.tui.widgets.run_table import run_matches
from difftui.tui.widgets.status_line import eta_seconds, format_eta


def test_downsample_keeps_extremes_in_order():
    xs = list(range(10_000))
    ys = [math.sin(x / 300) for x in xs]
    ys[1234] = 50.0                                  # a spike must survive the reduction
    ys[8765] = -50.0
    dx, dy = downsample_minmax(xs, ys, 100)
    assert len(dx) <= 200
    assert dx == sorted(dx)
    assert max(dy) == 50.0 and min(dy) == -50.0
    assert 1234 in dx and 8765 in dx


def test_downsample_short_series_unchanged():
    assert downsample_minmax([1, 2, 3], [3.0, 2.0, 1.0], 10) == ([1, 2, 3], [3.0, 2.0, 1.0])


def test_ema_starts_at_first_value_and_converges():
    out = ema([1.0] + [0.0] * 200, alpha=0.1)
    assert out[0] == 1.0
    assert out[1] == 0.9
    assert out[-1] < 1e-8


def test_eta_and_format():
    # 100 steps left, batch 8 at 400 img/s -> 2 s.
    assert eta_seconds(900, 1000, 400.0, 8) == 2.0
    assert eta_seconds(10, None, 400.0, 8) is None
    assert eta_seconds(10, 100, None, 8) is None
    assert format_eta(3725) == "1:02:05"
    assert format_eta(None) == "-"
    assert format_eta(3 * 86400 + 7200) == "3d 2h"


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

    class Spec:
        def __init__(self, kind, steps):
            self.kind, self.steps = kind, steps
    assert grid_nfe(Spec("edm_heun", 18)) == 35          # 2N-1 (playbook 5.3)
    assert grid_nfe(Spec("ddim", 50)) == 50
    assert "channel_mult: [1, 2]" in config_yaml({"arch": {"channel_mult": [1, 2]}})


class ChartApp(App):
    def compose(self) -> ComposeResult:
        yield LossChart(id="loss")
        yield GpuPanel(id="gpu")


async def test_chart_downsamples_to_its_width_and_rewinds_on_resume():
    app = ChartApp()
    async with app.run_test(size=(100, 30)) as pilot:
        chart = app.query_one(LossChart)
        rows = [{"name": "L_simple", "step": s, "value": 1.0 / (1 + s)} for s in range(1, 20_001)]
        rows += [{"name": "lr", "step": 1, "value": 1e-4}, {"name": "L_vlb", "step": 1, "value": float("nan")}]
        assert chart.add_points(rows) == 20_000
        await pilot.pause()
        plotted = chart.plotted()
        assert set(plotted) == {"L_simple"}
        xs, ys = plotted["L_simple"]
        assert 0 < len(xs) <= chart.size.width            # two points per bucket, a bucket per two columns
        chart.log_scale = True
        chart.smoothing = False
        await pilot.pause()
        assert min(chart.plotted()["L_simple"][1]) > 0
        # A resume from the step-5000 checkpoint logs step 5001 again: the later points are dropped.
        chart.add_points([{"name": "L_simple", "step": 5001, "value": 0.5}])
        assert chart.point_count() == 5001
        assert chart.steps["L_simple"][-1] == 5001

        gpu = app.query_one(GpuPanel)
        gpu.set_device("cpu")
        assert "no NVIDIA GPU - running on cpu" in str(gpu.render_panel())
        gpu.set_device("cuda:0")
        gpu.add_rows([{"idx": 0, "util": 87.0, "mem_used": 10240.0, "mem_total": 81920.0, "temperature": 64.0,
                       "power": 250.0}])
        text = str(gpu.render_panel())
        assert "GPU0" in text and "87%" in text and "10.0/80.0 GiB" in text and "64°C" in text and "250 W" in text


def test_measure_config_counts_the_run_network_and_names_the_device():
    import torch

    from difftui.engine.catalog import Catalog
    from difftui.engine.models import build_model, count_params
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
