"""Presets: every shipped file validates; each kind of malformed file is refused with one line naming file and key."""

import pytest

from difftui.engine.config.catalog import KINDS, Catalog
from difftui.engine.config.model import PresetError, Recipe, from_mapping


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "backbones"])
def test_every_shipped_preset_validates(kind):
    presets = Catalog().all(kind)
    assert presets, kind
    for p in presets:
        assert p.preset.name == p.name


def _user_dir(tmp_path, kind, name, text):
    d = tmp_path / "mine" / kind
    d.mkdir(parents=True)
    (d / f"{name}.yaml").write_text(text)
    return tmp_path / "mine"


GOOD_RECIPE = "name: quick\ndescription: d\nbatch_size: 16\n"


@pytest.mark.parametrize("text, message", [
    (GOOD_RECIPE + "batch_sise: 8\n", r"quick\.yaml: unknown key 'batch_sise' \(allowed: "),
    (GOOD_RECIPE.replace("16", "'sixteen'"), r"quick\.yaml: key 'batch_size': expected an integer, got 'sixteen'"),
    ("name: quick\nbatch_size: 16\n", r"quick\.yaml: missing key 'description'"),
    (GOOD_RECIPE + "loss: simplest\n", r"quick\.yaml: key 'loss': expected one of 'simple' \| 'hybrid'"),
    (GOOD_RECIPE + "ema_decay: true\n", r"quick\.yaml: key 'ema_decay': expected a number, got True"),
    ("name: quick\ndescription: [d\nbatch_size: 16\n", r"quick\.yaml: not valid YAML at line 3 \(expected ','"),
    ("- just\n- a list\n", r"quick\.yaml: expected a mapping, got list"),
    (GOOD_RECIPE.replace("quick", "other"), r"quick\.yaml: key 'name': 'other' must match the file name 'quick'"),
    (GOOD_RECIPE + "total_steps: 0\n",
     r"quick\.yaml: key 'total_steps': expected >= 1, got 0"),
])
def test_malformed_recipe_is_refused_in_one_line_naming_file_and_key(tmp_path, text, message):
    catalog = Catalog([_user_dir(tmp_path, "recipes", "quick", text)])
    with pytest.raises(PresetError, match=message) as err:
        catalog.get("recipes", "quick")
    assert "\n" not in str(err.value)


def test_nested_sampler_spec_error_names_the_nested_key(tmp_path):
    text = "name: mine\ndescription: d\ngrid: {kind: ddim, steps: 50, etta: 0}\n"
    catalog = Catalog([_user_dir(tmp_path, "samplers", "mine", text)])
    with pytest.raises(PresetError, match=r"mine\.yaml: key 'grid': unknown key 'etta'"):
        catalog.get("samplers", "mine")


def test_user_preset_replaces_shipped_one_of_the_same_name(tmp_path):
    text = "name: p1-default\ndescription: mine\nbatch_size: 32\n"
    catalog = Catalog([_user_dir(tmp_path, "recipes", "p1-default", text)])
    assert catalog.get("recipes", "p1-default").batch_size == 32
    assert Catalog().get("recipes", "p1-default").batch_size == 128     # playbook 4.0


def test_unknown_preset_name_lists_the_available_ones():
    with pytest.raises(PresetError, match=r"no recipe preset named 'p9' \(available: .*p1-default"):
        Catalog().get("recipes", "p9")


def test_p1_default_recipe_carries_playbook_4_0_numbers():
    r = Catalog().get("recipes", "p1-default")
    assert (r.optimizer, r.lr, r.batch_size, r.ema_decay, r.loss) == ("adam", 1e-4, 128, 0.9999, "simple")


def test_ddim_panel_grid_is_eta0_n50_linear_and_sweeps_10_to_100():
    panel = Catalog().get("samplers", "ddim")
    g = panel.grid
    assert (g.kind, g.eta, g.steps, g.tau) == ("ddim", 0.0, 50, "linear")          # playbook 5.0
    assert [s.steps for s in panel.sweep] == [10, 20, 50, 100]                       # playbook 5.1


def test_hybrid_loss_without_learned_variance_is_refused():
    with pytest.raises(PresetError, match=r"x: key 'variance': loss 'hybrid' trains the variance"):
        from_mapping(Recipe, {"name": "x", "description": "d", "loss": "hybrid"}, "x")


#----------------------------------------------------------------------------
# The defaults of a new run follow the recipe (issue 16 item 11).

def test_an_edm_recipe_named_alone_resolves_with_the_edm_sampler_and_its_anchor():
    """`difftui run --recipe p3-cifar10` alone passes the config checks: EDM Heun (playbook 5.3), not DDIM, and
    P3's CIFAR-10 data and DDPM++ tier (playbook A.4), which its augmentation needs."""
    config = Catalog().resolve(recipe="p3-cifar10")
    assert (config.dataset.name, config.backbone.name, config.sampler.name) == ("cifar10", "ddpmpp-cifar10",
                                                                                 "edm-heun")
    assert (config.sampler.grid.kind, config.sampler.grid.steps) == ("edm_heun", 18)


def test_the_default_sampler_follows_the_recipe_as_trained_and_a_named_one_is_kept():
    catalog = Catalog()
    assert catalog.resolve().sampler.name == "ddim"                                      # playbook 5.0
    assert catalog.resolve(recipe="p6-ocm").sampler.name == "covariance-ocm"             # playbook 5.8
    assert catalog.resolve(overrides=["recipe.loss=edm"]).sampler.name == "edm-heun"     # the override counts
    assert catalog.resolve(recipe="p3-cifar10", sampler="edm-euler").sampler.name == "edm-euler"
    with pytest.raises(PresetError, match=r"key 'sampler.grid': .* trained with the EDM loss samples with"):
        catalog.resolve(recipe="p3-cifar10", sampler="ddim")


def test_a_recipes_anchor_applies_only_when_neither_dataset_nor_backbone_is_named():
    catalog = Catalog()
    config = catalog.resolve(recipe="p3-cifar10", dataset="digits", overrides=["recipe.augment_p=0"])
    assert (config.dataset.name, config.backbone.name, config.sampler.name) == ("digits", "unet-demo", "edm-heun")
    with pytest.raises(PresetError, match=r"key 'recipe.augment_p': 0.12: P3's non-leaky augmentation"):
        catalog.resolve(recipe="p3-cifar10", dataset="digits")


def test_a_recipe_anchor_naming_no_preset_is_one_line_naming_the_recipe_file_and_key(tmp_path):
    text = "name: mine\ndescription: d\nanchor: {dataset: nosuch, backbone: unet-demo}\n"
    catalog = Catalog([_user_dir(tmp_path, "recipes", "mine", text)])
    with pytest.raises(PresetError, match=r"mine\.yaml: key 'anchor\.dataset': no dataset preset named 'nosuch'"):
        catalog.resolve(recipe="mine")
    with pytest.raises(PresetError, match=r"mine\.yaml: key 'anchor\.sampler\.\[key\]': Input should be 'dataset' "
                                          r"or 'backbone', got 'sampler'"):
        from_mapping(Recipe, {"name": "mine", "description": "d", "anchor": {"sampler": "ddim"}}, "mine.yaml")


def test_the_p6_recipe_is_p1_default_with_the_ocm_head_and_cites_the_playbook():
    p6, p1 = Catalog().get("recipes", "p6-ocm"), Catalog().get("recipes", "p1-default")
    assert p6.variance == "ocm" and p6.loss == "simple"                                  # playbook 2.7, 3.7
    assert (p6.optimizer, p6.lr, p6.batch_size, p6.ema_decay, p6.schedule, p6.diffusion_steps) == \
        (p1.optimizer, p1.lr, p1.batch_size, p1.ema_decay, p1.schedule, p1.diffusion_steps)   # playbook 4.0
    text = Catalog().files("recipes")["p6-ocm"].read_text()
    for section in ("2.7", "3.7", "4.0", "5.8", "A.8"):
        assert f"playbook {section}" in text or f", {section}" in text, section
