"""The config model (issue 11 item 10): one home for every field and cross-field rule, asked by the catalog, the
objective and the launch checks; numbers in any notation (item 8); old stored configs still load."""

import dataclasses
import json
import math
from pathlib import Path

import pytest

from difftui.engine.config.catalog import Catalog, config_from_dict, config_to_dict
from difftui.engine.config.model import (
    PresetError,
    Recipe,
    RunConfig,
    SamplerSpec,
    from_mapping,
    objective_error,
    run_config_from_dict,
    sampler_error,
)
from difftui.engine.config.schema import parse_integer, parse_number

STORED = json.loads((Path(__file__).parent / "data" / "stored_configs_v0.json").read_text())


@pytest.mark.parametrize("text, value", [
    ("1e-4", 1e-4), ("2e5", 2e5), ("1_000", 1000.0), ("1e6", 1e6), (" 3 ", 3.0), ("-1.5E-3", -1.5e-3),
    ("inf", math.inf), (".5", 0.5), (7, 7.0), (2.5, 2.5),
])
def test_a_number_may_be_written_any_way_yaml_or_python_writes_it(text, value):
    assert parse_number(text) == value


@pytest.mark.parametrize("text", ["abc", "nan", "", "1e", "1__0", "0x10", "1,000", True, None, float("nan")])
def test_what_is_not_a_number_is_refused(text):
    with pytest.raises(ValueError):
        parse_number(text)


@pytest.mark.parametrize("text, value", [("2e5", 200_000), ("1_000", 1000), (3.0, 3), ("12", 12), ("1e6", 10**6),
                                         ("123456789012345678901", 123456789012345678901)])
def test_a_whole_number_may_be_written_in_any_notation(text, value):
    assert parse_integer(text) == value and isinstance(parse_integer(text), int)


@pytest.mark.parametrize("text", ["2.5", 2.5, "1e-4", "ten", False, "inf"])
def test_what_is_not_a_whole_number_is_refused(text):
    with pytest.raises(ValueError):
        parse_integer(text)


#----------------------------------------------------------------------------
# The rules, through the catalog (the edge every CLI and TUI launch goes through).

def test_set_accepts_numbers_that_yaml_1_1_leaves_as_strings():
    config = Catalog().resolve(overrides=["recipe.lr=1e6", "recipe.batch_size=1_000", "recipe.total_steps=2e5",
                                          "recipe.ema_decay=9.99e-1", "sampler.grid.steps=5e1"])
    r = config.recipe
    assert (r.lr, r.batch_size, r.total_steps, r.ema_decay, config.sampler.grid.steps) == (1e6, 1000, 200_000,
                                                                                           0.999, 50)
    assert isinstance(r.total_steps, int) and isinstance(r.batch_size, int)
    assert Catalog().resolve(max_steps="1e3").recipe.total_steps == 1000


@pytest.mark.parametrize("override, message", [
    ("recipe.lr=abc", "run config: key 'recipe.lr': expected a number, got 'abc'"),
    ("recipe.batch_size=2.5", "run config: key 'recipe.batch_size': expected an integer, got 2.5"),
    ("recipe.class_conditional=1", "run config: key 'recipe.class_conditional': expected true or false, got 1"),
    ("recipe.name=5", "run config: key 'recipe.name': expected a string, got 5"),
    ("recipe.loss=l2", "run config: key 'recipe.loss': expected one of 'simple' | 'hybrid' | 'vlb' | 'edm', got 'l2'"),
    ("recipe.total_steps=0", "run config: key 'recipe.total_steps': expected >= 1, got 0"),
    ("recipe.ema_decay=1", "run config: key 'recipe.ema_decay': expected < 1.0, got 1"),
    ("recipe.grad_clip=x", "run config: key 'recipe.grad_clip': expected a number or null, got 'x'"),
    ("sampler.sweep=[{kind: ddim, steps: -3}]", "run config: key 'sampler.sweep[0].steps': expected >= 1, got -3"),
    ("sampler.grid={kind: ddim, etta: 0}", "run config: key 'sampler.grid': unknown key 'etta' (allowed: kind, steps"),
    ("backbone.arch.model_channels=wide", "run config: key 'backbone.arch.model_channels': expected an integer, "
                                          "got 'wide'"),
    ("backbone.arch.widht=3", "run config: key 'backbone.arch': unknown key 'widht' (allowed: model_channels"),
    ("dataset.channels=2", "run config: key 'dataset.channels': expected one of 1 | 3 | 4, got 2"),
    ("dataset.resolution=12", "run config: key 'dataset.resolution': expected a power of two >= 8, got 12"),
    ("device=gpu", "run config: key 'device': unknown device 'gpu' (expected auto, cpu, cuda or cuda:K)"),
])
def test_a_bad_value_is_one_line_naming_the_dotted_key(override, message):
    with pytest.raises(PresetError) as err:
        Catalog().resolve(overrides=[override])
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


# Every rule that lived in config.py's validator, Recipe.validate, Catalog.resolve, check_tier, build_objective and
# DDPMObjective.__init__, now asked of the model.
@pytest.mark.parametrize("kwargs, fragment", [
    (dict(overrides=["recipe.loss=hybrid"]), "key 'recipe.variance': loss 'hybrid' trains the variance"),
    (dict(overrides=["recipe.variance=learned"]), "key 'recipe.variance': variance 'learned' gets no signal"),
    (dict(recipe="p3-cifar10", sampler="edm-heun", dataset="cifar10", backbone="ddpmpp-cifar10",
          overrides=["recipe.variance=ocm"]), "key 'recipe.variance': loss 'edm' has no variance head"),
    (dict(recipe="p3-cifar10", sampler="edm-heun", dataset="cifar10", backbone="ddpmpp-cifar10",
          overrides=["recipe.importance_sampling=true"]), "key 'recipe.importance_sampling': importance sampling"),
    (dict(overrides=["recipe.diffusion_steps=20"]), "key 'recipe.diffusion_steps': the linear schedule needs T > 20"),
    (dict(overrides=["recipe.augment_p=0.12"]), "key 'recipe.augment_p': 0.12: P3's non-leaky augmentation conditions the EDM"),
    (dict(dataset="cifar10", backbone="ddpmpp-cifar10", recipe="p3-cifar10", sampler="edm-heun",
          overrides=["dataset.x_flip=true"]), "augmentation draws its own labelled x-flips"),
    (dict(overrides=["recipe.flops_lambda=1.5"]), "key 'recipe.flops_lambda': expected <= 1.0, got 1.5"),
    (dict(dataset="image-folder", overrides=["recipe.class_conditional=true"]),
     "key 'recipe.class_conditional': dataset 'image-folder' has no class labels"),
    (dict(dataset="cifar10", backbone="dydit-s-2"), "key 'recipe.flops_lambda': backbone 'dydit-s-2' is dynamic"),
    (dict(recipe="p3-cifar10", sampler="ddim"), "key 'sampler.grid': sampler 'DDIM eta=0 N=50 linear': a model "
                                                "trained with the EDM loss samples with edm_euler"),
    (dict(sampler="ddpm-learned"), "key 'sampler.grid': sampler 'DDPM learned N=1000': variance 'learned' needs"),
    (dict(overrides=["sampler.grid.steps=2000"]), "2000 steps exceed the model's T = 1000"),
    (dict(backbone="unet-c64", dataset="image-folder", overrides=["backbone.arch.model_channels=160"]),
     "key 'backbone.arch.model_channels': model_channels=160 is not a P1 tier (allowed: 64, 96, 128, 192); "
     "pass --off-tier"),
    (dict(overrides=["sampler.grid.sigma_min=90"]), "key 'sampler.grid.sigma_min': expected sigma_min < sigma_max"),
])
def test_every_config_rule_is_refused_by_the_model(kwargs, fragment):
    with pytest.raises(PresetError) as err:
        Catalog().resolve(**kwargs)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_the_objective_and_the_model_refuse_with_one_rule():
    # difftui.engine.core_rules: the config model refuses a preset and the core its arguments with the same words.
    from difftui.engine.diffusion import DDPMObjective, GaussianDiffusion, SamplerArgs, get_named_beta_schedule
    from difftui.engine.run.builders import build_objective
    chain = GaussianDiffusion(get_named_beta_schedule("cosine", 50))
    for loss, variance in (("hybrid", "fixed_small"), ("vlb", "ocm"), ("simple", "learned")):
        with pytest.raises(ValueError) as err:
            DDPMObjective(chain, loss=loss, variance=variance)
        assert str(err.value) == objective_error(loss, variance)[1]
    with pytest.raises(ValueError) as err:
        build_objective(Recipe(name="t", description="t", loss="edm", variance="learned"))
    assert str(err.value) == objective_error("edm", "learned")[1]
    spec = SamplerSpec(kind="ddim", variance="fixed_large")
    with pytest.raises(ValueError) as err:
        DDPMObjective(chain).check_spec(SamplerArgs(kind="ddim", variance="fixed_large"))
    assert str(err.value) == sampler_error(spec, objective="ddpm", variance="fixed_small", T=50)
    assert DDPMObjective(chain, loss="hybrid", variance="learned").out_channels(3) == 6
    assert Recipe(name="t", description="t", variance="ocm").out_channels(3) == 6


#----------------------------------------------------------------------------
# The rules of a new run (item 6): a stored config is loaded without them.

@pytest.mark.parametrize("kwargs, fragment", [
    (dict(backbone="dit-s-2"), "backbone 'dit-s-2' is a latent tier (4x32x32 latents of 256x256 images, playbook A.1); dataset 'digits' gives 1x8x8 pixels"),
    (dict(backbone="unet-c64", dataset="cifar10"), "backbone 'unet-c64' is anchored at 64x64 but dataset 'cifar10'"),
    (dict(backbone="unet-cifar10", dataset="image-folder", overrides=["dataset.resolution=32", "dataset.channels=1"]),
     "backbone 'unet-cifar10' is anchored on 3-channel data but dataset 'image-folder' has 1"),
    (dict(recipe="p5-dydit-finetune"), "key 'recipe.flops_lambda': recipe 'p5-dydit-finetune' sets a DyDiT FLOPs "
                                       "target (playbook 3.5, A.2) but backbone 'unet-demo' is a static unet"),
    (dict(backbone="dit-s-2", off_tier=True, overrides=["backbone.arch.patch_size=16"]),
     "key 'dataset.resolution': backbone 'dit-s-2' cannot be built for dataset 'digits': resolution 8 is not a "
     "multiple of patch size 16"),
])
def test_a_new_run_must_fit_the_tier_to_the_data_and_the_recipe_to_the_family(kwargs, fragment):
    with pytest.raises(PresetError) as err:
        Catalog().resolve(**kwargs)
    assert fragment in str(err.value)


def test_off_tier_lets_a_tier_run_away_from_its_anchor_resolution():
    config = Catalog().resolve(backbone="dit-s-2", off_tier=True, overrides=["backbone.arch.patch_size=4"])
    assert config.backbone.off_tier and config.dataset.resolution == 8
    assert config.recipe.name == "p1-default"


@pytest.mark.parametrize("name", list(STORED))
def test_a_config_stored_by_the_previous_release_still_loads(name):
    stored = STORED[name]
    config = config_from_dict(stored, f"run config {name}")
    again = config_to_dict(config)
    # Every stored key reads back unchanged; keys added since have their defaults.
    for section in ("dataset", "backbone", "sampler", "recipe"):
        for key, value in stored[section].items():
            assert again[section][key] == value, (section, key)
    assert again["device"] == stored["device"] and again["name"] == stored["name"]
    assert config_from_dict(again) == config


def test_stored_configs_load_without_the_new_run_rules_they_predate():
    old = STORED["dit_on_digits_accepted_before_launch_checks"]
    assert config_from_dict(old).backbone.name == "dit-s-2"
    with pytest.raises(PresetError, match="is a latent tier"):
        run_config_from_dict(old, "run config", new_run=True)
    # A relative path stored by the previous release stays as it was (the engine reads it as before).
    assert config_from_dict(STORED["hybrid_image_folder_relative_root"]).dataset.root == "goodimgs"


def test_round_trip_through_a_dict_and_json_is_exact():
    for kwargs in (dict(), dict(dataset="cifar10", backbone="ddpmpp-cifar10", recipe="p3-cifar10",
                                sampler="edm-stochastic-cifar10")):
        config = Catalog().resolve(**kwargs)
        back = config_from_dict(json.loads(json.dumps(config_to_dict(config))))
        assert back == config and isinstance(back, RunConfig)
        assert back.sampler.grid.S_tmax == config.sampler.grid.S_tmax


def test_paths_of_a_new_run_are_stored_absolute_against_the_users_directory(tmp_path, monkeypatch):
    config = Catalog().resolve(dataset="image-folder", overrides=["dataset.root=goodimgs"], cwd=tmp_path)
    assert config.dataset.root == str(tmp_path / "goodimgs")
    monkeypatch.chdir(tmp_path)
    assert Catalog().resolve(dataset="image-folder").dataset.root == str(tmp_path / "images")   # the preset's ./images
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert Catalog().resolve(dataset="cifar10", backbone="unet-cifar10").dataset.root == \
        str(tmp_path / "home" / ".cache" / "difftui" / "cifar10")


def test_warnings_name_what_the_run_will_miss():
    config = Catalog().resolve(max_steps=300)
    assert config.warnings() == [
        "max steps 300 < recipe.grid_every 500: no grid until the final one at step 300",
        "max steps 300 < recipe.snapshot_every 1,000: no checkpoint before the end, so a crash would lose the "
        "whole run",
    ]
    assert Catalog().resolve(max_steps=1000).warnings() == []
    wide = Catalog().resolve(dataset="cifar10", overrides=["recipe.total_steps=1000"])     # the demo tier at 32x32
    assert wide.warnings() == ["backbone 'unet-demo' was sized for 8x8; dataset 'cifar10' is 32x32"]


def test_a_user_preset_may_write_numbers_the_yaml_way(tmp_path):
    d = tmp_path / "recipes"
    d.mkdir()
    (d / "fast.yaml").write_text("name: fast\ndescription: d\nlr: 2e-4\nbatch_size: 1_024\ntotal_steps: 1e5\n")
    r = Catalog([tmp_path]).get("recipes", "fast")
    assert (r.lr, r.batch_size, r.total_steps) == (2e-4, 1024, 100_000)


def test_objects_built_in_code_are_trusted_and_replace_keeps_working():
    r = Catalog().get("recipes", "p1-default")
    assert dataclasses.replace(r, batch_size=16).batch_size == 16
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.lr = 1.0
    with pytest.raises(PresetError, match=r"x: key 'ema_decay': expected a number, got True"):
        from_mapping(Recipe, {"name": "x", "description": "d", "ema_decay": True}, "x")
