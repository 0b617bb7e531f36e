"""`difftui data check | card | prepare` through CliRunner: the table as JSON for scripts, the card, the cache, and
every user error as one line on stderr with exit 2."""

import json

from datakit import MESSY, write_messy_folder
from typer.testing import CliRunner

from difftui.tui.cli import app


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("difftui: error: "), result.stderr
    for f in fragments:
        assert f in lines[0], (f, lines[0])


def test_data_check_json_prints_the_table_for_scripts(tmp_path):
    write_messy_folder(tmp_path / "messy")
    result = invoke("data", "check", "image-folder", "--set", f"root={tmp_path / 'messy'}",
                    "--set", "dataset.heldout=0", "--json", "--workers", "0")
    assert result.exit_code == 0, result.stderr
    table = json.loads(result.stdout)
    assert table["corrupt"]["count"] == 3 and table["items"]["train"] == MESSY["files"]
    assert table["exact_duplicates"]["redundant"] == 1 and table["near_duplicates"]["redundant"] == 1
    text = invoke("data", "check", "image-folder", "--set", f"root={tmp_path / 'messy'}", "--set", "heldout=0")
    assert text.exit_code == 0 and "Data-quality table: image-folder" in text.stdout and "cached" in text.stdout


def test_data_card_prints_markdown(tmp_path):
    result = invoke("data", "card", "cifar10", "--recipe", "p3-cifar10", "--set", f"root={tmp_path}")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("# Data card: cifar10") and "augmentation with p = 0.12" in result.stdout


def test_data_prepare_builds_the_cache_and_reports_skipped_files(tmp_path, data_cache):
    write_messy_folder(tmp_path / "messy")
    result = invoke("data", "prepare", "image-folder", "--set", f"root={tmp_path / 'messy'}", "--set", "heldout=0",
                    "--set", "resolution=16")
    assert result.exit_code == 0, result.stderr
    assert "image-folder (train): 10 items of 3x16x16 in " + str(data_cache) in " ".join(result.stdout.split())
    assert "3 unreadable files skipped" in result.stdout


def test_data_errors_are_one_line(tmp_path):
    assert_one_line_error(invoke("data", "check", "nonesuch"), "no dataset preset named 'nonesuch'")
    assert_one_line_error(invoke("data", "check", "image-folder", "--set", f"root={tmp_path / 'none'}"),
                          "does not exist")
    assert_one_line_error(invoke("data", "check", "digits", "--set", "nokey=3"), "dataset.nokey")
    assert_one_line_error(invoke("data", "check", "imagenet64", "--set", f"root={tmp_path}"),
                          "train_data_batch_1.npz", "put these files there")
    assert_one_line_error(invoke("data", "prepare", "imagenet256-latents", "--set", f"root={tmp_path}",
                                 "--set", f"vae={tmp_path / 'vae'}"), "VAE weights not found", "sd-vae-ft-ema")
