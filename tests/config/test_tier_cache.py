"""The tier cache (issue 11 item 7): shipped figures equal a fresh measurement, a miss is measured once in a
subprocess and cached per user, and the TUI's process never imports torch."""

import json
import subprocess
import sys

import pytest

from difftui.engine.config import tier_figures as tier_cache
from difftui.engine.config.catalog import Catalog
from difftui.engine.config.tier_figures import MeasureError, anchor_key, figures, lookup, net_key, run_key


@pytest.fixture
def user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFTUI_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "tier_figures.json"


def no_subprocess(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("measured in a subprocess although the figures are cached")
    monkeypatch.setattr(tier_cache.subprocess, "run", refuse)


def test_every_shipped_tier_and_default_run_is_in_the_shipped_file(user_cache, monkeypatch):
    from difftui.engine.run.measure_tiers import shipped_keys
    shipped = json.loads(tier_cache.shipped_path().read_text())
    assert shipped["convention"] == tier_cache.CONVENTION
    assert {k.id for k in shipped_keys()} == set(shipped["figures"])
    no_subprocess(monkeypatch)
    rows = tier_cache.describe_tiers([f.preset for f in Catalog().all("backbones")])
    assert len(rows) == len(Catalog().names("backbones"))
    assert figures([run_key(Catalog().resolve())])             # digits / unet-demo: the TUI's first review


@pytest.mark.parametrize("name", ["unet-demo", "unet-cifar10", "dit-s-2", "dydit-b-2", "ncsnpp-cifar10"])
def test_shipped_figures_equal_a_fresh_measurement(name):
    from difftui.engine.run.builders import measure_net
    tier = Catalog().get("backbones", name)
    key = anchor_key(tier)
    cached = lookup([key])[key]
    assert (cached.params, cached.macs) == measure_net(key), "run: python -m difftui.engine measure-tiers --shipped"
    if tier.anchor is not None and tier.anchor.params_m:
        assert abs(cached.params / 1e6 / tier.anchor.params_m - 1) < 0.01                # beside the paper's figure


def test_a_miss_is_measured_once_in_a_subprocess_then_read_from_the_users_cache(user_cache, monkeypatch):
    config = Catalog().resolve(overrides=["backbone.arch.model_channels=16"])
    key = run_key(config)
    assert lookup([key]) == {}
    fig = figures([key])[key]
    from difftui.engine.run.builders import measure_net
    assert (fig.params, fig.macs) == measure_net(key)
    stored = json.loads(user_cache.read_text())
    assert stored["figures"][key.id]["params"] == fig.params
    no_subprocess(monkeypatch)
    assert figures([key]) == {key: fig}
    # A dropout sweep reuses the measurement: dropout has neither parameters nor MACs.
    again = Catalog().resolve(overrides=["backbone.arch.model_channels=16", "backbone.arch.dropout=0.3"])
    assert run_key(again) == key


def test_a_network_that_does_not_build_is_one_line(user_cache):
    tier = Catalog().get("backbones", "unet-demo")
    key = net_key(tier, in_channels=1, out_channels=1, resolution=9, num_classes=0)       # 9 does not halve
    with pytest.raises(MeasureError) as err:
        figures([key])
    assert "resolution 9 does not halve 1 times" in str(err.value) and "\n" not in str(err.value)
    assert not user_cache.exists() or key.id not in user_cache.read_text()


def test_measure_tiers_command_fills_the_users_cache_for_user_tiers(tmp_path, user_cache):
    d = tmp_path / "presets" / "backbones"
    d.mkdir(parents=True)
    (d / "mini.yaml").write_text("name: mini\ndescription: d\nfamily: unet\nresolution: 8\nanchor: null\n"
                                 "arch: {model_channels: 8, channel_mult: [1, 2], num_res_blocks: 1, "
                                 "attention_resolutions: [], num_groups: 4}\n")
    out = subprocess.run([sys.executable, "-m", "difftui.engine", "measure-tiers", "--presets", str(tmp_path / "presets")],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "mini" in out.stdout and "(1 measured," in out.stdout
    key = anchor_key(Catalog([tmp_path / "presets"]).get("backbones", "mini"))
    assert lookup([key])[key].params > 0
