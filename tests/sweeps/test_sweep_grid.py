"""Grid presets and what a sweep will run, without starting anything: the shipped grids, the cartesian product, the
off-grid rule, the grids' scopes (a lambda grid on a static tier is refused with one line), the run options a config
comes back to (clone), the config difference, the slots and the wall-time estimate."""

from __future__ import annotations

import math

import pytest
from sweep_testkit import tiny_spec

from difftui.engine.config.catalog import Catalog, config_to_dict
from difftui.engine.config.model import PresetError, parse_override
from difftui.engine.store import Store
from difftui.engine.sweeps import RunSpec, Slots, config_diff, estimate_sweep, parse_values_option, plan_sweep
from difftui.engine.sweeps.errors import SweepError
from difftui.engine.sweeps.estimate import schedule_makespan
from difftui.engine.sweeps.spec import yaml_value

CAT = Catalog()


def test_the_shipped_grids_are_the_playbooks():
    grids = {f.name: f.preset for f in CAT.all("sweeps")}
    assert grids["p1-dropout"].axes == {"recipe.dropout": [0.1, 0.2, 0.3]}                       # playbook 4.5
    assert grids["p1-dropout"].playbook == "4.5"
    assert grids["p5-lambda-sb"].axes == {"recipe.flops_lambda": [0.9, 0.8, 0.7, 0.5, 0.4, 0.3]}  # playbook A.2
    assert grids["p5-lambda-xl"].axes == {"recipe.flops_lambda": [0.7, 0.6, 0.5, 0.3]}
    assert grids["p5-lambda-sb"].applies_to.backbones == ("dydit-s-2", "dydit-b-2")
    assert grids["p5-lambda-xl"].applies_to.backbones == ("dydit-xl-2",)
    assert grids["p1-unet-scale"].axes == {"backbone": ["unet-c64", "unet-c96", "unet-c128", "unet-c192"]}  # A.6
    assert grids["p1-dropout-schedule"].axes == {"recipe.schedule": ["linear", "cosine"],
                                                 "recipe.dropout": [0.1, 0.2, 0.3]}


def test_a_grid_is_the_cartesian_product_and_each_member_carries_its_values():
    plan = plan_sweep(CAT, "p1-dropout-schedule", tiny_spec(10), device="cpu")
    points = [(m.config.recipe.schedule, m.config.recipe.dropout) for m in plan.members]
    assert points == [(s, d) for s in ("linear", "cosine") for d in (0.1, 0.2, 0.3)]
    assert [m.axis_values for m in plan.members][1] == {"recipe.schedule": "linear", "recipe.dropout": 0.2}
    assert not any(m.off_grid for m in plan.members)
    assert plan.total_steps == 60
    assert all(m.config.recipe.batch_size == 8 and m.config.device == "cpu" for m in plan.members)


def test_the_axis_decides_its_key_over_the_bases_overrides():
    # A base that is itself a member of an earlier dropout sweep, and a base with its own tier size.
    plan = plan_sweep(CAT, "p1-dropout", tiny_spec(10, "recipe.dropout=0.2"), device="cpu")
    assert [m.config.recipe.dropout for m in plan.members] == [0.1, 0.2, 0.3]
    spec = RunSpec(overrides=("backbone.arch.model_channels=16", "recipe.batch_size=8"), max_steps=10, device="cpu",
                   off_tier=True)                          # the 64x64 ladder on the 8x8 digits (playbook 1.7)
    plan = plan_sweep(CAT, "p1-unet-scale", spec, values={"backbone": ["unet-c64", "unet-c96"]})
    assert [(m.config.backbone.name, m.config.backbone.arch["model_channels"]) for m in plan.members] == [
        ("unet-c64", 64), ("unet-c96", 96)]
    assert [m.config.learning_rate for m in plan.members] == [pytest.approx(1e-4 / math.sqrt(64 / 128)),
                                                             pytest.approx(1e-4 / math.sqrt(96 / 128))]  # A.6
    assert all(m.config.recipe.batch_size == 8 for m in plan.members)


def test_a_lambda_grid_on_a_static_tier_is_refused_with_one_line():
    spec = RunSpec(backbone="dit-s-2", max_steps=10, device="cpu", off_tier=True)
    with pytest.raises(PresetError) as e:
        plan_sweep(CAT, "p5-lambda-sb", spec)
    text = str(e.value)
    assert "\n" not in text
    assert text.startswith("grid 'p5-lambda-sb' (playbook A.2) applies to backbones dydit-s-2, dydit-b-2, not to "
                           "backbone 'dit-s-2'")
    assert "static DiT has no routers" in text
    # The XL grid refuses the S tier too, and the S/B grid accepts it, one member per lambda.
    with pytest.raises(PresetError, match="applies to backbones dydit-xl-2, not to backbone 'dydit-s-2'"):
        plan_sweep(CAT, "p5-lambda-xl", RunSpec(backbone="dydit-s-2", off_tier=True, max_steps=10))
    plan = plan_sweep(CAT, "p5-lambda-sb", RunSpec(backbone="dydit-s-2", recipe="p5-dydit-finetune", max_steps=10,
                                                     off_tier=True))
    assert [m.config.recipe.flops_lambda for m in plan.members] == [0.9, 0.8, 0.7, 0.5, 0.4, 0.3]


def test_dropout_grid_is_refused_on_a_dit_tier_naming_why():
    with pytest.raises(PresetError, match=r"applies to families unet, adm, ddpmpp, ncsnpp, not to backbone "
                                          r"'dit-s-2' \(family dit\): DiT and DyDiT have no dropout"):
        plan_sweep(CAT, "p1-dropout", RunSpec(backbone="dit-s-2", max_steps=10, off_tier=True))


def test_values_off_the_papers_grid_need_off_grid_and_are_marked():
    spec = tiny_spec(10)
    values = parse_values_option(CAT.get("sweeps", "p1-dropout"), ["0.1,0.15"])
    assert values == {"recipe.dropout": [0.1, 0.15]}
    with pytest.raises(PresetError, match=r"recipe.dropout=0.15 is off the 'p1-dropout' grid \(playbook 4.5: "
                                          r"0.1, 0.2, 0.3\); choose off-grid \(--off-grid\)"):
        plan_sweep(CAT, "p1-dropout", spec, values=values)
    plan = plan_sweep(CAT, "p1-dropout", spec, values=values, off_grid=True)
    assert [(m.config.recipe.dropout, m.off_grid) for m in plan.members] == [(0.1, False), (0.15, True)]
    assert plan.off_grid == {"recipe.dropout": [0.15]}
    # A value on the grid spelled differently is on the grid.
    plan = plan_sweep(CAT, "p1-dropout", spec, values={"recipe.dropout": [0.30]})
    assert [m.off_grid for m in plan.members] == [False]


def test_values_option_names_the_axis_when_a_grid_has_several():
    grid = CAT.get("sweeps", "p1-dropout-schedule")
    with pytest.raises(PresetError, match=r"has 2 axes; name one, e.g. --values recipe.dropout=..."):
        parse_values_option(grid, ["0.1"])
    with pytest.raises(PresetError, match=r"has no axis 'recipe.lr'"):
        parse_values_option(grid, ["recipe.lr=0.1"])
    assert parse_values_option(grid, ["recipe.dropout=0.1,0.3", "recipe.schedule=cosine"]) == {
        "recipe.dropout": [0.1, 0.3], "recipe.schedule": ["cosine"]}


@pytest.mark.parametrize("text, message", [
    ("name: bad\ndescription: x\nplaybook: '4.5'\naxes: {}\n", r"bad.yaml: key 'axes': expected at least one axis"),
    ("name: bad\ndescription: x\nplaybook: '4.5'\naxes: {recipe.dropout: 0.1}\n",
     r"bad.yaml: key 'axes.recipe.dropout': expected a non-empty list"),
    ("name: bad\ndescription: x\nplaybook: '4.5'\naxes: {recipe.droput: [0.1]}\n",
     r"bad.yaml: key 'axes.recipe.droput': recipe has no key 'droput'"),
    ("name: bad\ndescription: x\nplaybook: '4.5'\naxes: {dropout: [0.1]}\n",
     r"bad.yaml: key 'axes.dropout': expected a preset kind"),
    ("name: bad\ndescription: x\nplaybook: '4.5'\naxes: {recipe.dropout: [0.1, 0.1]}\n",
     r"bad.yaml: key 'axes.recipe.dropout': a value is listed twice"),
    ("name: bad\ndescription: x\naxes: {recipe.dropout: [0.1]}\n", r"bad.yaml: missing key 'playbook'"),
    ("name: bad\ndescription: x\nplaybook: '4.5'\naxes: {recipe.dropout: [0.1]}\napplies_to: {tiers: [a]}\n",
     r"bad.yaml: key 'applies_to': unknown key 'tiers'"),
])
def test_a_malformed_grid_is_one_line_naming_file_and_key(tmp_path, text, message):
    (tmp_path / "sweeps").mkdir()
    (tmp_path / "sweeps" / "bad.yaml").write_text(text)
    with pytest.raises(PresetError, match=message) as e:
        Catalog([tmp_path]).get("sweeps", "bad")
    assert "\n" not in str(e.value)


def test_yaml_values_read_back_as_the_same_value():
    for value in (1e-05, 0.1, 1e+20, 3, True, "cosine", "0.5", [1, 2, 2], None, float("inf")):
        assert parse_override(f"k={yaml_value(value)}")[1] == value


def test_run_options_come_back_from_a_resolved_config():
    catalog = CAT
    config = catalog.resolve(recipe="p1-hybrid-cosine", overrides=["recipe.batch_size=8", "recipe.lr=1.0e-5",
                                                                   "backbone.arch.model_channels=16",
                                                                   "sampler.grid.steps=4"], max_steps=77, device="cpu")
    data = config_to_dict(config)
    spec = RunSpec.from_config(data, catalog)
    assert (spec.dataset, spec.backbone, spec.sampler, spec.recipe) == ("digits", "unet-demo", "ddim",
                                                                        "p1-hybrid-cosine")
    assert spec.max_steps == 77 and spec.device == "cpu"
    assert sorted(spec.overrides) == ["backbone.arch.model_channels=16", "recipe.batch_size=8", "recipe.lr=1.0e-05",
                                      "sampler.grid.steps=4"]
    assert config_to_dict(spec.resolve(catalog)) == data


def test_config_diff_keeps_only_the_keys_that_differ():
    a = config_to_dict(CAT.resolve(overrides=["recipe.dropout=0.1"], max_steps=10))
    b = config_to_dict(CAT.resolve(overrides=["recipe.dropout=0.3", "recipe.lr=2.0e-4"], max_steps=10))
    c = config_to_dict(CAT.resolve(overrides=["recipe.dropout=0.3"], max_steps=20))
    assert config_diff([a, b, c]) == [("recipe.lr", [1e-4, 2e-4, 1e-4]),
                                      ("recipe.total_steps", [10, 10, 20]),
                                      ("recipe.dropout", [0.1, 0.3, 0.3])]
    assert config_diff([a, a]) == []


def test_slots_split_the_cpu_and_give_each_gpu_member_its_own_device(monkeypatch):
    monkeypatch.setattr("difftui.engine.sweeps.slots.cpu_cores", lambda: 8)
    monkeypatch.delenv("DIFFTUI_CPU_THREADS", raising=False)
    cpu = Slots.choose(device="auto", runs_per_device=3, gpu_count=0)
    assert cpu.devices == ("cpu",) and cpu.count == 3 and cpu.member_device == "cpu"
    assert cpu.plan(2).env == {"DIFFTUI_CPU_THREADS": "2"} and cpu.plan(2).gpus is None     # 8 cores // 3 members
    monkeypatch.setenv("DIFFTUI_CPU_THREADS", "1")
    assert cpu.cpu_threads() == 1
    gpus = Slots.choose(device="auto", gpus=(1, 3), runs_per_device=2, gpu_count=4)
    assert gpus.count == 4 and gpus.member_device == "cuda"
    assert [gpus.plan(s).gpus for s in range(4)] == [(1,), (3,), (1,), (3,)]
    assert Slots.choose(device="auto", gpu_count=2).devices == ("0", "1")
    with pytest.raises(SweepError, match=r"--gpus: GPU 2 does not exist here \(2 CUDA device\(s\) visible\)"):
        Slots.choose(gpus=(2,), gpu_count=2)
    with pytest.raises(SweepError, match="CUDA is not available here"):
        Slots.choose(device="cuda", gpu_count=0)


def test_a_cpu_sweep_keeps_the_thread_split_it_was_created_with(monkeypatch, tmp_path):
    from difftui.engine.store import Store
    from difftui.engine.sweeps.control import sweep_slots
    monkeypatch.setattr("difftui.engine.sweeps.slots.cpu_cores", lambda: 8)
    monkeypatch.setenv("DIFFTUI_CPU_THREADS", "1")             # the shell that started the sweep
    slots = Slots.choose(device="cpu", runs_per_device=2, gpu_count=0)
    with Store(tmp_path / "runs.db") as store:
        sweep_id = store.create_sweep(name="s", preset="p1-dropout", base_config={}, grid={}, spec={},
                                      runs_per_device=2, devices=slots.to_list(), cpu_threads=slots.cpu_threads())
        monkeypatch.delenv("DIFFTUI_CPU_THREADS")               # another shell: 8 cores // 2 would be 4
        again = sweep_slots(store.get_sweep(sweep_id))
    assert again.cpu_threads() == 1 and again.plan(0).env == {"DIFFTUI_CPU_THREADS": "1"}
    assert again.describe().endswith("1 thread each")


def test_makespan_fills_slots_in_queue_order():
    assert schedule_makespan([10, 10, 10], 2) == 20          # two at once, then the third
    assert schedule_makespan([30, 10, 10, 10], 2) == 30      # the short ones run beside the long one
    assert schedule_makespan([5, 5], 1) == 10


def test_estimate_uses_the_measured_throughput_of_the_same_network_or_says_unknown(tmp_path):
    spec = tiny_spec(100)
    plan = plan_sweep(CAT, "p1-dropout", spec, device="cpu")
    slots = Slots(("cpu",), 2)
    db = tmp_path / "runs.db"
    with Store(db) as store:
        est = estimate_sweep(store, [m.config for m in plan.members], slots)
        assert est.runs == 3 and est.total_steps == 300 and est.wall_s is None
        assert est.throughput[0].describe() == "unknown: no earlier run of unet-demo on digits (cpu) in runs.db"
        # Two earlier runs of the same network (medians 400 and 600 img/s) and one of another size, ignored.
        for ips, channels in ((400.0, 16), (600.0, 16), (5.0, 32)):
            config = config_to_dict(CAT.resolve(overrides=[f"backbone.arch.model_channels={channels}"], device="cpu"))
            run_id = store.create_run(config, name="x", total_steps=10, device="cpu")
            store.write_batch(run_id, metrics=[(s, 0.0, "img_per_s", ips + d, 0.0) for s, d in
                                               ((1, -1.0), (2, 0.0), (3, 1.0))], run_fields={"device": "cpu"})
        est = estimate_sweep(store, [m.config for m in plan.members], slots)
    assert est.throughput[0].img_per_s == 500.0 and est.throughput[0].runs == 2
    # 3 members of 100 steps x 8 images at 500/2 img/s each (two share the CPU): 3.2 s each, two at once -> 6.4 s.
    assert est.wall_s == pytest.approx(6.4)
    assert est.total_kimg == pytest.approx(2.4)
