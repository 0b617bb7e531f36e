"""The CLI side of issue 11: launch checks before a run exists (item 6), the tier cache behind `presets backbones`
(item 7), and item 8: --db/--presets after the command, delete, ls/show --json and piping, clean metavars, numbers in
any notation, a read-only runs.db."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from difftui.engine.store import Store
from difftui.tui.cli import app
from difftui.tui.cli.common import json_safe
from difftui.tui.cli.root import hoist_global_options

pytestmark = pytest.mark.usefixtures("engine_hygiene")     # tests/conftest.py

TINY = ["--set", "recipe.batch_size=16", "--set", "backbone.arch.model_channels=16", "--set", "sampler.grid.steps=5"]


def config_dict():
    from difftui.engine.config.catalog import Catalog, config_to_dict
    return config_to_dict(Catalog().resolve(overrides=["recipe.batch_size=8"], max_steps=10))


def invoke(*args, **kwargs):
    return CliRunner().invoke(app, [str(a) for a in args], **kwargs)


def one_line_error(result, *fragments):
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("difftui: error: "), result.stderr
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0]


def add_run(db, name="r", status="completed", **fields):
    with Store(db) as store:
        run_id = store.create_run(config_dict(), name=name, total_steps=10)
        store.update_run(run_id, status=status, **fields)
    return run_id


#----------------------------------------------------------------------------
# Launch checks (item 6).

@pytest.mark.parametrize("args, fragment", [
    (["--backbone", "dit-s-2"], "backbone 'dit-s-2' is a latent tier (4x32x32 latents of 256x256 images, playbook A.1)"),
    (["--recipe", "p5-dydit-finetune"], "recipe 'p5-dydit-finetune' sets a DyDiT FLOPs target"),
    (["--dataset", "image-folder", "--set", "dataset.root=nowhere"], "does not exist"),
    (["--max-steps", "0"], "--max-steps: expected >= 1, got 0"),
    (["--max-steps", "lots"], "--max-steps: expected a whole number, got 'lots'"),
    (["--set", "recipe.lr=abc"], "key 'recipe.lr': expected a number, got 'abc'"),
])
def test_a_launch_that_would_fail_leaves_no_run_row_and_no_folder(tmp_path, monkeypatch, args, fragment):
    monkeypatch.chdir(tmp_path)
    line = one_line_error(invoke("--db", tmp_path / "runs.db", "run", *args, "--detach"), fragment)
    if "nowhere" in args[-1]:
        assert str(tmp_path / "nowhere") in line                # resolved against the user's directory
    assert not (tmp_path / "runs.db").exists() and not (tmp_path / "runs").exists()


def test_no_cuda_is_refused_after_numbers_in_any_notation_are_read(tmp_path):
    import torch
    if torch.cuda.is_available():
        pytest.skip("checks the no-CUDA refusal")
    one_line_error(invoke("--db", tmp_path / "runs.db", "run", "--max-steps", "1e5", "--set", "recipe.lr=1e6",
                          "--set", "recipe.batch_size=1_024", "--device", "cuda"),
                   "device 'cuda' requested but CUDA is not available")
    assert not (tmp_path / "runs.db").exists()


@pytest.mark.slow
def test_a_relative_data_root_is_stored_absolute_and_the_engine_reads_the_same_folder(tmp_path, monkeypatch):
    from PIL import Image
    monkeypatch.chdir(tmp_path)
    (tmp_path / "goodimgs").mkdir()
    for i in range(8):
        Image.new("RGB", (16, 16), (30 * i, 0, 0)).save(tmp_path / "goodimgs" / f"{i}.png")
    args = ("run", "--dataset", "image-folder", "--set", "dataset.root=goodimgs", "--set", "dataset.resolution=8",
            *TINY, "--max-steps", "2e1", "--device", "cpu", "--db", "runs.db")
    # 7 training images (one held out) < batch 16: the launch check (issue 16 item 6) found the folder at its
    # absolute path and refused the batch before any run row exists.
    result = invoke(*args)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert (f"7 training image(s) under {tmp_path / 'goodimgs'}, fewer than one batch of 16" in result.stderr
            and result.stderr.count("\n") == 1)
    with Store(tmp_path / "runs.db") as store:
        assert store.get_run(1) is None
    # With a batch that fits, the engine (whose working directory is runs/1/) reads the same folder and trains.
    result = invoke(*args, "--set", "recipe.batch_size=4")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert "max steps 20 < recipe.grid_every 500" in result.stderr                  # a warning, not a refusal
    with Store(tmp_path / "runs.db") as store:
        config, run = store.run_config(1), store.get_run(1)
    assert config["dataset"]["root"] == str(tmp_path / "goodimgs") and config["recipe"]["total_steps"] == 20
    assert (run["status"], run["step"]) == ("completed", 20)


#----------------------------------------------------------------------------
# Item 8.

def test_global_options_are_accepted_after_the_command(tmp_path):
    assert hoist_global_options(["ls", "--db", "x", "--status", "running"], {"ls": 1}) == \
        ["--db", "x", "ls", "--status", "running"]
    assert hoist_global_options(["--db", "a", "show", "3", "--presets=p", "--", "--db"], {"show": 1}) == \
        ["--presets=p", "--db", "a", "show", "3", "--", "--db"]
    db = tmp_path / "after.db"
    add_run(db, name="later")
    listing = invoke("ls", "--db", db)
    assert listing.exit_code == 0 and "later" in listing.stdout
    assert invoke("show", 1, "--db", db).exit_code == 0
    (tmp_path / "p" / "recipes").mkdir(parents=True)
    (tmp_path / "p" / "recipes" / "mine.yaml").write_text("name: mine\ndescription: my recipe\n")
    assert "my recipe" in invoke("presets", "recipes", "--presets", tmp_path / "p").stdout


def test_ls_and_show_json_encode_nan_and_infinity_as_strings(tmp_path):
    db = tmp_path / "runs.db"
    run_id = add_run(db, name="diverged", status="failed")
    with Store(db) as store:
        # SQLite keeps infinities in a REAL column (it turns NaN into NULL, which reads back as null).
        store.write_batch(run_id, metrics=[(5, 0.04, "L_simple", float("inf"), 1.0),
                                           (5, 0.04, "grad_norm", float("inf"), 1.0),
                                           (5, 0.04, "lr", float("-inf"), 1.0)])

    def strict(text):
        return json.loads(text, parse_constant=lambda c: pytest.fail(f"invalid JSON constant {c}"))
    runs = strict(invoke("ls", "--json", "--db", db).stdout)
    assert runs[0]["name"] == "diverged" and runs[0]["last_loss"] == "Infinity" and runs[0]["off_tier"] is False
    shown = strict(invoke("show", run_id, "--json", "--db", db).stdout)
    assert shown["last"] == {"L_simple": "Infinity", "grad_norm": "Infinity", "lr": "-Infinity"}
    assert shown["config"]["sampler"]["grid"]["S_tmax"] == "Infinity"           # the stored config's own inf
    assert json_safe({"a": [float("nan"), 1.5]}) == {"a": ["NaN", 1.5]}
    assert shown["config"]["recipe"]["batch_size"] == 8 and shown["status"] == "failed"
    assert strict(invoke("ls", "--json", "--db", tmp_path / "none.db").stdout) == []


def test_piped_ls_and_show_never_wrap_a_word(tmp_path):
    db = tmp_path / "runs.db"
    name = "a-rather-long-run-name-that-a-narrow-terminal-would-fold-" * 3
    add_run(db, name=name, error="engine process ended without a final status " * 4)
    listing = invoke("ls", "--db", db)                      # CliRunner's stdout is not a terminal, as with a pipe
    assert any(name in line and "completed" in line for line in listing.stdout.splitlines()), listing.stdout
    shown = invoke("show", 1, "--db", db).stdout.splitlines()
    assert any(name in line for line in shown) and any(line.count("without a final status") == 4 for line in shown)


def test_delete_refuses_a_live_run_and_asks_unless_yes(tmp_path):
    db = tmp_path / "runs.db"
    live = add_run(db, name="live")
    # A process holding the run's lock stands in for a live engine (a run is alive exactly while its lock is held).
    code = ("import sys, time\nfrom difftui.engine.launch.lock import OwnerLock\n"
            "OwnerLock(sys.argv[1]).acquire('run')\nprint('locked', flush=True)\ntime.sleep(120)\n")
    engine = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "runs" / str(live) / "lock")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert engine.stdout.readline().strip() == "locked"
        with Store(db) as store:
            store.update_run(live, status="running", pid=engine.pid, host=socket.gethostname(),
                             heartbeat=time.time())
        one_line_error(invoke("delete", live, "--yes", "--db", db), f"run {live} is running", "stop it first")
    finally:
        engine.kill()
        engine.wait()
    done = add_run(db, name="done")
    folder = tmp_path / "runs" / str(done)
    assert folder.is_dir()
    one_line_error(invoke("delete", done, "--db", db), "pass --yes")      # no terminal to ask
    assert folder.is_dir()
    result = invoke("delete", done, "--yes", "--db", db)
    assert result.exit_code == 0 and f"run {done} deleted" in result.stdout
    assert not folder.exists()
    with Store(db) as store:
        assert store.get_run(done) is None and store.get_run(live) is not None
    one_line_error(invoke("delete", 99, "--yes", "--db", db), "no run 99")


def test_help_has_clean_metavars():
    for command in ([], ["run"], ["ls"], ["show"], ["stop"], ["resume"], ["delete"], ["presets"], ["eval"]):
        text = invoke(*command, "--help").stdout
        assert text.strip(), command
        for bad in ("<bool>", "<list", "<str>", "<int", "<path>"):
            assert bad not in text, (command, bad, text)


def test_presets_backbones_prints_from_the_cache_without_measuring(monkeypatch, tmp_path):
    from difftui.engine.config import tier_figures as tier_cache
    monkeypatch.setenv("DIFFTUI_CACHE", str(tmp_path))

    def refuse(*a, **k):
        raise AssertionError("measured although every shipped tier is cached")
    monkeypatch.setattr(tier_cache.subprocess, "run", refuse)
    start = time.perf_counter()
    result = invoke("presets", "backbones")
    seconds = time.perf_counter() - start
    assert result.exit_code == 0, result.stderr
    assert seconds < 10, seconds                           # was 20-28 s measuring every tier
    row = next(line for line in result.stdout.splitlines() if line.startswith("dit-xl-2 "))
    assert row.split()[1:6] == ["32", "anchor", "674.83", "674.8", "119"]


#----------------------------------------------------------------------------
# A runs.db in a folder this user cannot write.

@pytest.fixture
def read_only_folder(tmp_path):
    """(db path in a read-only folder, the folder). chmod where it bites; as root a read-only bind mount."""
    src = tmp_path / "src"
    src.mkdir()
    add_run(src / "runs.db", name="archived")
    if os.geteuid() != 0:
        os.chmod(src / "runs.db", 0o444)
        os.chmod(src, 0o555)
        yield src / "runs.db"
        os.chmod(src, 0o755)
        return
    ro = tmp_path / "ro"
    ro.mkdir()
    if subprocess.run(["mount", "--bind", str(src), str(ro)], capture_output=True).returncode != 0:
        pytest.skip("root, and no read-only bind mount here")
    try:
        if subprocess.run(["mount", "-o", "remount,ro,bind", str(ro)], capture_output=True).returncode != 0:
            pytest.skip("cannot remount read-only")
        yield ro / "runs.db"
    finally:
        # Lazily: a connection the CLI left for the garbage collector would make a plain umount fail ("busy") and
        # leave the mount behind under pytest's temp folders.
        subprocess.run(["umount", "--lazy", str(ro)], capture_output=True)


def test_a_read_only_runs_db_is_listed_and_shown_with_one_line_saying_so(read_only_folder):
    db = read_only_folder
    assert not os.access(db.parent, os.W_OK)
    listing = invoke("ls", "--db", db)
    assert listing.exit_code == 0, listing.stderr
    assert "archived" in listing.stdout
    note = listing.stderr.splitlines()
    assert len(note) == 1 and "is read-only here" in note[0]
    shown = invoke("show", 1, "--db", db)
    assert shown.exit_code == 0 and "archived" in shown.stdout
    assert json.loads(invoke("show", 1, "--json", "--db", db).stdout)["name"] == "archived"
    assert not any(p.name.endswith(("-wal", "-shm")) for p in db.parent.iterdir())
