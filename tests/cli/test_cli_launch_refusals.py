"""Refusals that used to miss or sprawl (issue 16 items 6 and 10): an image folder with fewer images than one batch,
a --db in a folder that does not exist, a --presets folder that is not there: each refused in one line before
anything is created; `difftui data check DIR` takes the folder's path as well as a preset's name; a usage error (a
run id that is not a number) is one line too."""

import json

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from difftui.engine.config.catalog import Catalog
from difftui.engine.launch.checks import launch_checks
from difftui.engine.launch.devices import DeviceProbe
from difftui.tui.cli import app

NO_GPU = DeviceProbe((), "2.x", "test")


def invoke(*args, env=None):
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


def one_line_error(result) -> str:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    (line,) = result.stderr.splitlines()
    assert line.startswith("difftui: error: ") and "Traceback" not in result.stdout
    return line.removeprefix("difftui: error: ")


def write_pictures(folder, n: int, size: int = 16):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{i}.png")


def test_an_image_folder_smaller_than_one_batch_is_refused_before_a_run_row_exists(tmp_path):
    write_pictures(tmp_path / "pics", 5)
    sets = ["dataset.heldout=0", "dataset.resolution=16", "recipe.batch_size=8", "backbone.arch.model_channels=16"]
    args = ["--db", tmp_path / "runs.db", "run", "--dataset", "image-folder", "--set", f"dataset.root={tmp_path / 'pics'}",
            *[a for s in sets for a in ("--set", s)], "--max-steps", "2", "--device", "cpu", "--detach"]
    line = one_line_error(invoke(*args))
    assert line == (f"dataset 'image-folder': 5 training image(s) under {tmp_path / 'pics'}, fewer than one batch "
                    f"of 8 (recipe.batch_size): add images, or lower the batch size")
    assert not (tmp_path / "runs.db").exists() and not (tmp_path / "runs").exists()
    # The TUI's check (engine/data in a subprocess) says the same; a batch the folder holds passes.
    config = Catalog().resolve(dataset="image-folder", overrides=[f"dataset.root={tmp_path / 'pics'}", *sets],
                               max_steps=2, device="cpu")
    assert launch_checks(config, probe=NO_GPU).errors == (line,)
    fits = Catalog().resolve(dataset="image-folder", overrides=[f"dataset.root={tmp_path / 'pics'}", *sets[:2],
                                                               "recipe.batch_size=4", sets[3]], max_steps=2)
    assert launch_checks(fits, probe=NO_GPU).ok


def test_a_db_in_a_missing_folder_and_a_missing_presets_folder_are_refused_naming_them(tmp_path):
    missing = tmp_path / "no" / "such"
    for command in (["ls"], ["show", "1"], ["run", "--detach"]):
        line = one_line_error(invoke("--db", missing / "runs.db", *command))
        assert line == f"--db {missing / 'runs.db'}: the folder {missing} does not exist; create it first, or name " \
                       f"another database"
    line = one_line_error(invoke("ls", env={"DIFFTUI_DB": str(missing / "x.db")}))
    assert line.startswith(f"$DIFFTUI_DB {missing / 'x.db'}: the folder {missing} does not exist")
    assert not (tmp_path / "no").exists()
    assert one_line_error(invoke("--db", tmp_path / "runs.db", "--presets", tmp_path / "gone", "presets")) == \
        f"--presets {tmp_path / 'gone'}: does not exist"
    (tmp_path / "file").write_text("")
    assert one_line_error(invoke("presets", "--presets", tmp_path / "file", "--db", tmp_path / "runs.db")) == \
        f"--presets {tmp_path / 'file'}: is not a folder"
    assert invoke("--db", tmp_path / "runs.db", "ls").exit_code == 0        # an existing folder: as before


def test_data_check_takes_an_image_folders_path(tmp_path, monkeypatch):
    write_pictures(tmp_path / "pics", 6)
    by_path = invoke("data", "check", tmp_path / "pics", "--json", "--workers", "0", "--set", "heldout=0")
    assert by_path.exit_code == 0, by_path.stderr
    table = json.loads(by_path.stdout)
    assert table["items"]["train"] == 6 and table["corrupt"]["count"] == 0
    monkeypatch.chdir(tmp_path)
    relative = invoke("data", "check", "./pics", "--json", "--workers", "0", "--set", "heldout=0")
    assert relative.exit_code == 0 and json.loads(relative.stdout)["items"]["train"] == 6
    assert "does not exist" in one_line_error(invoke("data", "check", tmp_path / "none"))
    assert "no dataset preset named 'nonesuch'" in one_line_error(invoke("data", "check", "nonesuch"))


def test_usage_errors_are_one_line_naming_the_command_like_every_other_user_error(tmp_path):
    """Issue 16 item 10: typer drew a six-line box for a run id that is not a number."""
    db = tmp_path / "runs.db"
    cases = {("show", "abc"): "show: Invalid value for 'ID': expected a whole number (see difftui show --help)",
             ("stop", "1x", "--force"): "stop: Invalid value for 'ID': expected a whole number (see difftui stop "
                                        "--help)",
             ("sweep", "show", "q"): "sweep show: Invalid value for 'sweep_id': expected a whole number (see difftui "
                                     "sweep show --help)",
             ("show",): "show: Missing argument 'ID' (see difftui show --help)",
             ("ls", "--bogus"): "ls: No such option: --bogus (see difftui ls --help)",
             ("nosuch",): "No such command 'nosuch' (see difftui --help)"}
    for args, expected in cases.items():
        assert one_line_error(invoke("--db", db, *args)) == expected, args
