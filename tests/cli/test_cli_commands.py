"""The typer CLI through CliRunner: help, presets, every user error as one line on stderr with exit 2, and a tiny
run driven by the commands (run --detach, ls, show, stop --wait, resume)."""


import time

import pytest
from typer.testing import CliRunner

from difftui.tui.cli import app

TINY = ["--set", "recipe.batch_size=8", "--set", "backbone.arch.model_channels=16", "--set", "sampler.grid.steps=10"]


pytestmark = pytest.mark.usefixtures("engine_hygiene")     # tests/conftest.py


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("difftui: error: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0]


def test_help_lists_the_commands():
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("run", "ls", "show", "stop", "resume", "presets"):
        assert command in result.stdout


def test_presets_lists_each_kind_with_measured_backbone_size():
    for kind, names in (("datasets", ("digits", "cifar10", "image-folder")), ("samplers", ("ddim",)),
                        ("recipe", ("p1-default", "p3-cifar10"))):
        result = invoke("presets", kind)
        assert result.exit_code == 0, result.stderr
        assert all(n in result.stdout for n in names)
    backbones = invoke("presets", "backbones")
    assert backbones.exit_code == 0, backbones.stderr
    row = next(line for line in backbones.stdout.splitlines() if line.startswith("unet-cifar10 "))
    assert row.split()[1:] == ["32", "anchor", "52.55", "52.5", "8.39", "-", "recipe"]   # measured beside the paper
    c64 = next(line for line in backbones.stdout.splitlines() if line.startswith("unet-c64 "))
    assert c64.split()[-1] == "0.000141"                                  # playbook A.6: 1e-4 / sqrt(64/128)
    assert "digits" not in backbones.stdout
    assert_one_line_error(invoke("presets", "gadgets"), "unknown preset kind 'gadgets'")


MALFORMED = {
    "unknown key": ("datasets", "bad.yaml", "name: bad\ndescription: x\nsource: digits\nresolution: 8\n"
                    "channels: 1\nanchor: none\ncolour: blue\n", "unknown key 'colour'"),
    "wrong type": ("datasets", "bad.yaml", "name: bad\ndescription: x\nsource: digits\nresolution: eight\n"
                   "channels: 1\nanchor: none\n", "key 'resolution': expected an integer"),
    "missing field": ("datasets", "bad.yaml", "name: bad\ndescription: x\nsource: digits\nresolution: 8\n"
                      "anchor: none\n", "missing key 'channels'"),
    "bad yaml": ("datasets", "bad.yaml", "name: bad\ndescription: [unclosed\n", "not valid YAML at line"),
    "wrong arch key": ("backbones", "bad.yaml", "name: bad\ndescription: x\nfamily: unet\nresolution: 8\n"
                       "anchor: null\narch: {model_channels: 16, channel_mult: [1, 2], num_res_blocks: 1,"
                       " attention_resolutions: [], widht: 3}\n", "unknown key 'widht'"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_each_malformed_preset_is_one_line_naming_file_and_key(tmp_path, case):
    kind, filename, text, fragment = MALFORMED[case]
    (tmp_path / kind).mkdir()
    (tmp_path / kind / filename).write_text(text)
    flag = "--dataset" if kind == "datasets" else "--backbone"
    result = invoke("--db", tmp_path / "runs.db", "--presets", tmp_path, "run", flag, "bad", "--detach")
    assert_one_line_error(result, "bad.yaml", fragment)
    assert not (tmp_path / "runs.db").exists()          # nothing was launched
    assert_one_line_error(invoke("--presets", tmp_path, "presets", kind), "bad.yaml", fragment)


def test_bad_overrides_and_missing_data_are_one_line(tmp_path):
    db = tmp_path / "runs.db"
    assert_one_line_error(invoke("--db", db, "run", "--set", "recipe.nope=3"), "recipe.nope")
    assert_one_line_error(invoke("--db", db, "run", "--set", "novalue"), "expected key=value")
    assert_one_line_error(invoke("--db", db, "run", "--set", "recipe.batch_size=many"), "batch_size")
    assert_one_line_error(invoke("--db", db, "run", "--backbone", "nonesuch"), "no backbone preset named 'nonesuch'")
    assert_one_line_error(invoke("--db", db, "run", "--recipe", "p3-cifar10", "--sampler", "ddim"), "p3-cifar10",
                          "ddim")
    assert_one_line_error(invoke("--db", db, "run", "--dataset", "cifar10", "--set", f"dataset.root={tmp_path}"),
                          str(tmp_path / "cifar-10-batches-py"))
    assert_one_line_error(invoke("--db", db, "run", "--dataset", "image-folder", "--set",
                                 f"dataset.root={tmp_path / 'pics'}"), "image folder", "does not exist")
    assert not db.exists()


def test_unknown_runs_are_one_line(tmp_path):
    db = tmp_path / "runs.db"
    assert_one_line_error(invoke("--db", db, "show", 7), "no such run database")
    assert invoke("--db", db, "ls").stdout.startswith("no runs yet")
    db.touch()
    for command in ("show", "stop", "resume"):
        assert_one_line_error(invoke("--db", db, command, 7), "no run 7")


def test_a_tiny_run_through_the_commands(tmp_path):
    db = tmp_path / "runs.db"
    result = invoke("--db", db, "run", *TINY, "--max-steps", 100_000, "--device", "cpu", "--name", "tiny",
                    "--set", "recipe.snapshot_every=100000", "--detach")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("run 1 started")
    from difftui.engine.store import Store
    deadline = time.monotonic() + 120                      # a stop before the first step trains nothing
    while time.monotonic() < deadline:
        with Store(db) as store:
            if store.get_run(1)["step"] >= 1:
                break
        time.sleep(0.1)
    stopped = invoke("--db", db, "stop", 1, "--wait")
    assert stopped.exit_code == 0, stopped.stderr
    assert "run 1 stopped at step" in stopped.stdout
    listing = invoke("--db", db, "ls")
    assert "tiny" in listing.stdout and "stopped" in listing.stdout and "digits" in listing.stdout
    assert_one_line_error(invoke("--db", db, "stop", 1), "run 1 is not running (status stopped)")
    # Resume to a reachable end and follow it in the terminal until it completes.
    step = int(stopped.stdout.split("at step")[-1])
    resumed = invoke("--db", db, "resume", 1, "--max-steps", step + 10)
    assert resumed.exit_code == 0, resumed.stderr
    assert f"run 1 completed at step {step + 10}/{step + 10}" in resumed.stdout
    assert "latest grid:" in resumed.stdout
    shown = invoke("--db", db, "show", 1)
    assert shown.exit_code == 0
    for fragment in ("completed", "started on cpu", f"resumed from step {step}", "L_simple", "grids     1"):
        assert fragment in shown.stdout, fragment
    assert_one_line_error(invoke("--db", db, "resume", 1), "already completed")


def test_a_missing_device_is_refused_before_a_run_exists(tmp_path):
    import torch
    if torch.cuda.is_available():
        pytest.skip("checks the no-CUDA refusal")
    result = invoke("--db", tmp_path / "runs.db", "run", *TINY, "--max-steps", 5, "--device", "cuda")
    assert_one_line_error(result, "device 'cuda' requested but CUDA is not available")
    assert not (tmp_path / "runs.db").exists() and not (tmp_path / "runs").exists()


def test_bare_difftui_opens_the_tui_with_the_db_and_preset_dirs(tmp_path, monkeypatch):
    from difftui.tui import app as tui_app
    opened = {}
    monkeypatch.setattr(tui_app.DifftuiApp, "run", lambda self: opened.update(db=self.db_path,
                                                                               presets=self.preset_dirs))
    monkeypatch.setenv("DIFFTUI_DB", str(tmp_path / "env.db"))
    assert invoke("--presets", tmp_path).exit_code == 0
    assert opened == {"db": (tmp_path / "env.db").absolute(), "presets": [tmp_path]}
    assert invoke("--db", tmp_path / "flag.db").exit_code == 0
    assert opened["db"] == (tmp_path / "flag.db").absolute()


def test_off_tier_size_is_refused_naming_the_tiers_and_marked_when_forced(tmp_path):
    db = tmp_path / "runs.db"
    assert_one_line_error(invoke("--db", db, "run", "--backbone", "unet-c64", "--set", "backbone.arch.model_channels=160",
                                 "--detach"),
                          "model_channels=160 is not a P1 tier (allowed: 64, 96, 128, 192)", "--off-tier")
    # With the explicit flag the config resolves and the run row carries the mark that `ls` shows (playbook 1.7).
    from difftui.engine.config.catalog import Catalog, config_to_dict
    from difftui.engine.store import Store
    config = Catalog().resolve(backbone="unet-c64", overrides=["backbone.arch.model_channels=160"], off_tier=True)
    assert config.backbone.off_tier
    with Store(db) as store:
        store.create_run(config_to_dict(config), name="wide", total_steps=10)
    listing = invoke("--db", db, "ls")
    assert listing.exit_code == 0 and "(off-tier)" in listing.stdout


@pytest.mark.parametrize("args, message", [
    (["--gpus", "0,x"], "--gpus '0,x': expected GPU numbers separated by commas, e.g. 0,1"),
    (["--gpus", "0,1", "--nproc-per-node", "3"], "--gpus names 2 GPU(s) but --nproc-per-node is 3"),
    (["--nnodes", "2"], "--nnodes > 1 needs --rdzv-endpoint HOST:PORT"),
    (["--device", "cpu", "--nproc-per-node", "3"], "recipe.batch_size 8 does not split over 3 processes"),
])
def test_bad_launch_options_are_one_line_and_create_no_run(tmp_path, args, message):
    db = tmp_path / "runs.db"
    assert_one_line_error(invoke("--db", db, "run", *TINY, "--max-steps", 5, *args), message)
    from difftui.engine.store import Store
    if db.exists():
        with Store(db) as store:
            assert store.list_runs() == []
