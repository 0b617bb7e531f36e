"""Launch checks and device defaults (issue 11 items 5 and 6): what must hold on this machine before a run row
exists, asked by the CLI and the TUI alike."""

import pytest

from difftui.engine.config.catalog import Catalog
from difftui.engine.launch.checks import CPU_DEFAULT_STEPS, default_max_steps, launch_checks
from difftui.engine.launch.devices import DeviceProbe, describe_device, device_error, probe_devices
from difftui.engine.launch.request import LaunchRequest, resolve_new_run, review_facts

NO_GPU = DeviceProbe((), "2.14.1+cu130", "subprocess")
ONE_GPU = DeviceProbe(("NVIDIA H100 80GB HBM3",), "2.14.1+cu130", "subprocess")


@pytest.mark.parametrize("spec, probe, error", [
    ("auto", NO_GPU, None), ("cpu", NO_GPU, None), ("auto", ONE_GPU, None), ("cuda", ONE_GPU, None),
    ("cuda:0", ONE_GPU, None),
    ("cuda", NO_GPU, "device 'cuda' requested but CUDA is not available here (torch 2.14.1+cu130); use --device cpu "
                     "or auto"),
    ("cuda:1", ONE_GPU, "device 'cuda:1' requested but only 1 CUDA device(s) exist"),
    ("tpu", ONE_GPU, "unknown device 'tpu' (expected auto, cpu, cuda or cuda:K)"),
])
def test_the_device_must_exist(spec, probe, error):
    assert device_error(spec, probe) == error


def test_the_device_in_words():
    assert describe_device("auto", NO_GPU) == "cpu (no CUDA)"
    assert describe_device("cpu", ONE_GPU) == "cpu"
    assert describe_device("auto", ONE_GPU) == "cuda:0 (NVIDIA H100 80GB HBM3)"


def test_defaults_fit_the_device():
    config = Catalog().resolve()
    assert config.recipe.total_steps == 500_000                                   # playbook 4.0's recipe
    assert default_max_steps(config, NO_GPU) == CPU_DEFAULT_STEPS == 1000
    assert default_max_steps(config, ONE_GPU) == 500_000
    assert default_max_steps(Catalog().resolve(device="cpu"), ONE_GPU) == 1000
    short = Catalog().resolve(overrides=["recipe.total_steps=300"])
    assert default_max_steps(short, NO_GPU) == 300                               # never more than the recipe's


def test_an_explicit_choice_beats_the_device_default():
    catalog = Catalog()
    assert resolve_new_run(catalog, probe=NO_GPU) == (catalog.resolve(max_steps=1000), True)
    assert resolve_new_run(catalog, probe=ONE_GPU)[0].recipe.total_steps == 500_000
    assert resolve_new_run(catalog, probe=NO_GPU, max_steps="2e4")[0].recipe.total_steps == 20_000
    assert resolve_new_run(catalog, probe=NO_GPU, overrides=["recipe.total_steps=5000"])[0].recipe.total_steps == 5000
    form = LaunchRequest(choices=(("datasets", "digits"),), batch_size="16", max_steps="", overrides="", off_tier=False)
    assert form.resolve([], probe=NO_GPU).recipe.total_steps == 1000
    assert LaunchRequest((), "", "1_500", "", False).resolve([], probe=NO_GPU).recipe.total_steps == 1500


def test_launch_checks_refuse_a_missing_device_and_missing_data(tmp_path):
    config = Catalog().resolve(dataset="image-folder", overrides=["dataset.root=pics"], device="cuda", cwd=tmp_path)
    report = launch_checks(config, probe=NO_GPU)
    assert not report.ok
    assert report.errors[0].startswith("device 'cuda' requested but CUDA is not available")
    assert report.errors[1] == (f"image folder {tmp_path / 'pics'} does not exist; put the images (png, jpg, webp, "
                                f"...; sub-folders allowed) or a zip of them there, or pass --set "
                                f"dataset.root=DIR_OR_ZIP")
    fine = launch_checks(Catalog().resolve(max_steps=1000), probe=NO_GPU)
    assert fine.ok and fine.warnings == () and fine.device == "cpu (no CUDA)"
    warned = launch_checks(Catalog().resolve(max_steps=10), probe=NO_GPU, check_data=None)
    assert warned.ok and len(warned.warnings) == 2


def test_the_device_probe_runs_once_without_torch_in_this_process():
    import subprocess
    import sys
    code = ("import sys; from difftui.engine.launch.devices import probe_devices; a = probe_devices(); "
            "b = probe_devices(); print(a is b, a.source, 'torch' in sys.modules, a.torch_version)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    same, source, torch_loaded, version = out.stdout.split()
    assert (same, source, torch_loaded) == ("True", "subprocess", "False") and version.startswith("2.")
    import torch
    assert probe_devices(refresh=True).count == (torch.cuda.device_count() if torch.cuda.is_available() else 0)


def test_review_facts_come_from_the_tier_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("DIFFTUI_CACHE", str(tmp_path))
    from difftui.engine.config.tier_figures import run_key
    from difftui.engine.run.builders import measure_net
    config = Catalog().resolve(max_steps=1000)
    facts = review_facts(config, probe=NO_GPU, measure=False)           # unet-demo on the 8x8 digits: shipped
    assert (facts["params"], facts["macs"]) == measure_net(run_key(config))
    assert facts["device"] == "cpu (no CUDA)" and facts["tier"] == "not a paper anchor" and facts["warnings"] == []
    bad = review_facts(Catalog().resolve(device="cuda:2", max_steps=1000), probe=ONE_GPU, measure=False)
    assert bad["device_error"] == "device 'cuda:2' requested but only 1 CUDA device(s) exist"
