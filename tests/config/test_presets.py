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
