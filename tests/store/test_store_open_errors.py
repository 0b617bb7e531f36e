"""Why runs.db cannot be opened, named (issue 16 item 10): a disk filled by other data is "full", not "not a usable run
database (disk I/O error)"; a read-only folder is blamed on the folder, not on the database. Real file systems: a
small tmpfs, filled or remounted read-only (as root; skipped where nothing can be mounted)."""

import subprocess

import pytest
from typer.testing import CliRunner

from difftui.engine.store import Store, StoreError
from difftui.tui.cli import app

CONFIG = {"dataset": {"name": "digits"}, "backbone": {"name": "unet-demo"}, "sampler": {"name": "ddim"},
          "recipe": {"name": "p1-default"}}


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs at tmp_path/disk holding a runs.db with one run."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1M", "tmpfs", str(disk)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        with Store(disk / "runs.db") as store:
            store.create_run(CONFIG, name="kept", total_steps=10)
        yield disk
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], capture_output=True)


def one_line_error(*args) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 2, (result.stdout, result.stderr)
    (line,) = result.stderr.splitlines()[-1:]
    assert "Traceback" not in result.stdout + result.stderr
    return line.removeprefix("difftui: error: ")


def test_a_disk_full_of_other_data_is_named_full(small_disk):
    with open(small_disk / "other-data", "wb") as f:             # fill the disk to its last byte
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    full = f"the disk holding {small_disk} is full (0 bytes left); free some space there"
    for args in (["ls"], ["delete", "1", "--yes"]):
        assert one_line_error("--db", small_disk / "runs.db", *args) == f"{small_disk / 'runs.db'}: {full}"
    with pytest.raises(StoreError, match="is full") as refused:
        Store(small_disk / "new.db")
    assert refused.value.reason == "full"


def test_a_read_only_folder_is_blamed_on_the_folder_not_the_database(small_disk):
    if subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], capture_output=True).returncode != 0:
        pytest.skip("cannot remount read-only")
    folder = (f"the folder {small_disk} is read-only for this user (SQLite writes runs.db's -wal and -shm files "
              f"beside it)")
    assert one_line_error("--db", small_disk / "runs.db", "delete", "1", "--yes") == \
        f"{small_disk / 'runs.db'}: {folder}"
    with pytest.raises(StoreError) as refused:
        Store(small_disk / "new.db")
    assert str(refused.value) == f"{small_disk / 'new.db'}: {folder}" and refused.value.reason == "read_only"
    listed = CliRunner().invoke(app, ["--db", str(small_disk / "runs.db"), "ls"])
    assert listed.exit_code == 0 and "kept" in listed.stdout              # still listed, read-only (issue 11)
