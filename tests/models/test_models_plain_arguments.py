"""The networks take plain keyword arguments with their papers' defaults (issue 15 item 4, as DiT's `DiT(depth=28,
hidden_size=1152, ...)` and EDM's `SongUNet(...)`), and the builder passes a preset's arch to them field by field."""

import inspect

import pytest
import torch

from difftui.engine.config.archs import ARCHS
from difftui.engine.models import DiT, DyDiT, SongUNet, UNet, count_params
from difftui.engine.run.builders import NETWORKS, build_model, network_kwargs


def shapes(net: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


# (network, the shipped tier its defaults stand for, the anchor's data arguments, what the tier adds to the
#  defaults, the paper's parameter count in millions: playbook A.6 / P3 Table 7 / P5 Table 7).
DEFAULTS = [
    (UNet, "unet-c128", dict(in_channels=3, out_channels=6, resolution=64), {}, 121.1),
    # P3's CIFAR-10 tier takes the 9 augment labels (playbook A.4); EDM's SongUNet, like ours, defaults to 0.
    (SongUNet, "ddpmpp-cifar10", dict(in_channels=3, out_channels=3, resolution=32), dict(augment_dim=9), 55.7),
    (DiT, "dit-xl-2", dict(in_channels=4, out_channels=8, resolution=32, num_classes=1000), {}, 674.8),
    (DyDiT, "dydit-xl-2", dict(in_channels=4, out_channels=8, resolution=32, num_classes=1000), {}, None),
]


@pytest.mark.parametrize("network, tier_name, data, extra, params_m", DEFAULTS, ids=[d[1] for d in DEFAULTS])
def test_the_constructor_defaults_are_the_paper_anchor(tier, network, tier_name, data, extra, params_m):
    with torch.device("meta"):
        plain = network(**data, **extra)
        built = build_model(tier(tier_name), **data)
    assert type(built) is network
    assert shapes(plain) == shapes(built)           # the same network, tensor for tensor
    if params_m is not None:
        assert count_params(plain) / 1e6 == pytest.approx(params_m, abs=0.05)


def test_every_arch_field_is_a_keyword_of_its_network():
    # The builder passes the arch by name: a field without a keyword (or a keyword without a field) would be lost.
    for family, arch in ARCHS.items():
        keywords = set(inspect.signature(NETWORKS[family]).parameters)
        fields = {f for f in arch.__dataclass_fields__}
        if family in ("dit", "dydit"):
            fields.discard("dropout")               # DiT has no dropout (the arch keeps the key for recipes)
        assert fields <= keywords, (family, fields - keywords)
        assert keywords - fields <= {"in_channels", "out_channels", "resolution", "num_classes"}, family


def test_the_recipes_dropout_replaces_the_arch_value_and_dit_has_none(tier):
    assert network_kwargs(tier("unet-c64"))["dropout"] == 0.0
    assert network_kwargs(tier("unet-c64"), dropout=0.3)["dropout"] == 0.3            # playbook 4.5 grid
    assert network_kwargs(tier("ddpmpp-cifar10"), dropout=0.13)["dropout"] == 0.13    # playbook A.4
    assert "dropout" not in network_kwargs(tier("dit-s-2"), dropout=0.1)


def test_adm_is_the_unet_with_its_own_keywords(tier):
    kw = network_kwargs(tier("adm-imagenet64"))
    assert (kw["model_channels"], kw["num_head_channels"], kw["resblock_updown"]) == (192, 64, True)   # playbook A.5
    with torch.device("meta"):
        net = UNet(in_channels=3, out_channels=3, resolution=64, num_classes=1000, **kw)
    assert {m.num_heads for m in net.modules() if hasattr(m, "num_heads") and hasattr(m, "qkv")} == {6, 9, 12}


def test_a_resolution_the_network_cannot_take_is_refused_in_one_line():
    with pytest.raises(ValueError, match="^resolution 36 does not halve 3 times$"):
        UNet(in_channels=3, out_channels=3, resolution=36)
    with pytest.raises(ValueError, match="^resolution 30 is not a multiple of patch size 4$"):
        DiT(in_channels=4, out_channels=8, resolution=30, patch_size=4, depth=1, hidden_size=64, num_heads=4)
