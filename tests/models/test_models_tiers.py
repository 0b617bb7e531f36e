"""The tier ladders (playbook 1.7-1.8): off-tier sizes are refused in one line naming the allowed tiers."""

import dataclasses

import pytest
import torch

from difftui.engine.config.archs import ARCHS
from difftui.engine.config.catalog import Catalog
from difftui.engine.config.ladders import check_tier, tier_status
from difftui.engine.config.model import PresetError
from difftui.engine.config.tier_figures import format_tier_table
from difftui.engine.run.builders import build_model, describe_tier


def test_registry_families():
    assert set(ARCHS) == {"unet", "ddpmpp", "ncsnpp", "adm", "dit", "dydit"}
    assert all(dataclasses.is_dataclass(a) and a.__dataclass_params__.frozen for a in ARCHS.values())


def test_every_shipped_tier_is_on_its_ladder(catalog):
    for f in catalog.all("backbones"):
        check_tier(f.preset)
        assert tier_status(f.preset) == ("not a paper anchor" if f.name == "unet-demo" else "paper anchor")


def test_off_tier_unet_is_refused_with_the_allowed_tiers(tier):
    t = dataclasses.replace(tier("unet-c128"), name="unet-c160", arch={**tier("unet-c128").arch, "model_channels": 160})
    msg = ("backbone 'unet-c160': model_channels=160 is not a P1 tier (allowed: 64, 96, 128, 192); "
           "pass --off-tier to run it anyway")
    with pytest.raises(PresetError) as err:
        check_tier(t)
    assert str(err.value) == msg
    with pytest.raises(PresetError, match="not a P1 tier"), torch.device("meta"):
        build_model(t, in_channels=3, out_channels=6, resolution=64)


def test_off_tier_flag_builds_and_is_marked(tier):
    t = dataclasses.replace(tier("unet-c128"), arch={**tier("unet-c128").arch, "model_channels": 160}, off_tier=True)
    with torch.device("meta"):
        net = build_model(t, in_channels=3, out_channels=6, resolution=64)
    assert net.model_channels == 160
    d = describe_tier(t)
    assert d["status"] == "off-tier" and d["off_tier"] is True
    assert "off-tier" in format_tier_table([d])
    # --off-tier on a tier that is on its ladder changes nothing.
    assert tier_status(dataclasses.replace(tier("unet-c128"), off_tier=True)) == "paper anchor"


@pytest.mark.parametrize("name, key, value, fragment", [
    ("unet-c64", "num_res_blocks", 2, "num_res_blocks=2 is not a P1 tier (allowed: 3)"),
    ("unet-c64", "channel_mult", [1, 2, 3, 4, 4], "channel_mult=1, 2, 3, 4, 4 is not a P1 tier (allowed: 1, 2, 3, 4)"),
    ("dit-s-2", "depth", 10, "depth=10, num_heads=6, hidden_size=384 is not a P5 DiT tier (allowed: S: depth=12"),
    ("dit-b-2", "patch_size", 3, "patch_size=3 is not a P5 DiT tier (allowed: 2, 4, 8)"),
    ("dydit-xl-2", "hidden_size", 1024, "is not a P5 DyDiT tier"),
    ("ddpmpp-cifar10", "num_blocks", 2, "num_blocks=2 is not a P3 DDPM++ tier (allowed: 4)"),
    ("adm-imagenet64", "attention_resolutions", [16, 8], "is not a P3 ADM tier (allowed: 32, 16, 8)"),
])
def test_structural_fields_are_part_of_the_tier(tier, name, key, value, fragment):
    base = tier(name)
    t = dataclasses.replace(base, arch={**base.arch, key: value})
    with pytest.raises(PresetError) as err:
        check_tier(t)
    assert fragment in str(err.value) and "--off-tier" in str(err.value) and "\n" not in str(err.value)


def test_dropout_is_a_sweep_knob_not_a_tier(tier):
    base = tier("unet-c64")
    check_tier(dataclasses.replace(base, arch={**base.arch, "dropout": 0.3}))   # playbook 4.5 grid


def test_unknown_arch_key_is_refused_naming_it(tier):
    base = tier("dit-s-2")
    with pytest.raises(PresetError, match=r"backbone 'dit-s-2': arch: unknown key 'layers' \(allowed: depth"):
        build_model(dataclasses.replace(base, arch={**base.arch, "layers": 12}), in_channels=4, out_channels=8,
                    resolution=32)


def test_demo_tier_is_exempt_and_trains_on_cpu(tier):
    t = tier("unet-demo")
    net = build_model(t, in_channels=1, out_channels=1, resolution=t.resolution)
    x = torch.randn(4, 1, t.resolution, t.resolution)
    out = net(x, torch.randint(0, 1000, (4,)).float())
    out.square().mean().backward()
    assert out.shape == x.shape and tier_status(t) == "not a paper anchor"


def test_run_config_with_off_tier_override_goes_through_the_catalog():
    cat = Catalog()
    with pytest.raises(PresetError, match="not a P1 tier"):
        cat.resolve(backbone="unet-c64", overrides=["backbone.arch.model_channels=160"])
    cfg = cat.resolve(backbone="unet-c64", overrides=["backbone.arch.model_channels=160"], off_tier=True)
    assert cfg.backbone.off_tier and tier_status(cfg.backbone) == "off-tier"


def test_tier_table_lists_measured_and_paper_figures(catalog):
    rows = [describe_tier(catalog.get("backbones", n)) for n in ("unet-c128", "dit-xl-2", "unet-demo")]
    text = format_tier_table(rows)
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["tier", "status"]
    assert "121.1 (121.1)" in text and "39.74 (39.70)" in text and "1.00e-04" in text
    assert "674.8 (674.8)" in text and "118.62 (118.60)" in text and "32x32x4" in text
    assert "not a paper anchor" in text
