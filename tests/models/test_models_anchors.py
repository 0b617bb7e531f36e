"""Every shipped backbone tier against its paper anchor: parameters within 1%, multiply-adds within 2%, shapes.

The anchors are the papers' figures typed into the presets; the measured numbers come from the built networks
(parameters) and torch.utils.flop_counter (MACs), on the meta device so the XL tiers cost nothing.
"""

import pytest
import torch

from difftui.engine.config.ladders import anchor_io
from difftui.engine.models import count_params
from difftui.engine.run.builders import build_model, describe_tier, measure_macs

# issue 4 / playbook 2.1, A.1, A.5, A.6: the figures the measured numbers must reproduce.
ANCHORS = {
    "unet-c64": (30.3, None),
    "unet-c96": (68.1, None),
    "unet-c128": (121.1, 39.7),
    "unet-c192": (272.3, None),
    "unet-cifar10": (52.5, None),
    "ddpmpp-cifar10": (55.7, None),
    "ncsnpp-cifar10": (56.4, None),
    "adm-imagenet64": (296.0, None),
    "dit-s-2": (32.9, 6.06),
    "dit-b-2": (130.3, 23.01),
    "dit-xl-2": (674.8, 118.6),
    "dydit-s-2": (32.9, 6.06),
    "dydit-b-2": (130.3, 23.01),
    "dydit-xl-2": (674.8, 118.6),
}


def test_every_shipped_backbone_is_listed(catalog):
    assert set(catalog.names("backbones")) == set(ANCHORS) | {"unet-demo"}


@pytest.mark.parametrize("name", sorted(ANCHORS))
def test_preset_anchor_is_the_paper_figure(tier, name):
    t = tier(name)
    params_m, gmacs = ANCHORS[name]
    assert t.anchor is not None and t.anchor.params_m == params_m and t.anchor.gmacs == gmacs


@pytest.mark.parametrize("name", sorted(ANCHORS))
def test_measured_parameters_within_1_percent(tier, name):
    t = tier(name)
    in_ch, out_ch = anchor_io(t)
    n_cls = 1000 if t.family in ("dit", "dydit", "adm") else 0
    with torch.device("meta"):
        net = build_model(t, in_channels=in_ch, out_channels=out_ch, resolution=t.resolution, num_classes=n_cls)
    params_m = count_params(net) / 1e6
    assert params_m == pytest.approx(ANCHORS[name][0], rel=0.01)


@pytest.mark.parametrize("name", [n for n, (_, g) in sorted(ANCHORS.items()) if g is not None])
def test_measured_macs_within_2_percent(tier, name):
    t = tier(name)
    in_ch, out_ch = anchor_io(t)
    macs = measure_macs(t, in_channels=in_ch, out_channels=out_ch, resolution=t.resolution)
    assert macs / 1e9 == pytest.approx(ANCHORS[name][1], rel=0.02)


def test_unet_c128_macs_is_the_p1_39_billion():
    # playbook 2.1: about 39B per forward at 64x64; flop_counter FLOPs are 2 x MACs.
    from difftui.engine.config.catalog import Catalog
    t = Catalog().get("backbones", "unet-c128")
    macs = measure_macs(t, in_channels=3, out_channels=6, resolution=64)
    assert 39.0e9 < macs < 40.5e9


@pytest.mark.parametrize("name", sorted(ANCHORS) + ["unet-demo"])
def test_forward_shape_at_anchor_resolution(tier, name):
    t = tier(name)
    in_ch, out_ch = anchor_io(t)
    n_cls = 1000 if t.family in ("dit", "dydit", "adm") else 0
    with torch.device("meta"):
        net = build_model(t, in_channels=in_ch, out_channels=out_ch, resolution=t.resolution, num_classes=n_cls)
        x = torch.empty(2, in_ch, t.resolution, t.resolution)
        y = torch.zeros(2, dtype=torch.long) if n_cls else None
        out = net.eval()(x, torch.full((2,), 10.0), y)
    assert out.shape == (2, out_ch, t.resolution, t.resolution)


def test_describe_tier_reports_measured_beside_anchor(tier):
    d = describe_tier(tier("unet-c64"))
    assert d["status"] == "paper anchor" and d["off_tier"] is False
    assert d["params_m"] == pytest.approx(30.3, rel=0.01) and d["anchor_params_m"] == 30.3
    assert abs(d["params_err"]) < 0.01
    assert d["lr"] == pytest.approx(1e-4 / (64 / 128) ** 0.5)             # playbook A.6
    assert d["resolution"] == 64 and d["in_channels"] == 3 and d["out_channels"] == 6
    demo = describe_tier(tier("unet-demo"))
    assert demo["status"] == "not a paper anchor" and demo["anchor_params_m"] is None and demo["params_err"] is None


@pytest.mark.parametrize("name, lr", [("unet-c64", 1.41e-4), ("unet-c96", 1.15e-4), ("unet-c128", 1.0e-4),
                                      ("unet-c192", 8.16e-5)])
def test_p1_learning_rate_rule(tier, name, lr):
    # playbook 2.1 (3): C=64 -> 1.41e-4, C=96 -> 1.15e-4, C=192 -> 8.16e-5.
    assert tier(name).learning_rate(1e-4) == pytest.approx(lr, rel=0.005)
