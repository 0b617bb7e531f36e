"""Faults, with real engines where it matters: a diverging run fails cleanly with a finite newest checkpoint and every
front end renders its NaN; a truncated newest checkpoint resumes from the previous one; a checkpoint that would run
code is refused; temp files of interrupted writes are removed; a full disk is reported as such."""

import errno
import math
from pathlib import Path

import pytest
import torch
from engine_testkit import tiny_config, wait_for
from typer.testing import CliRunner

from difftui.engine.launch import runs as launch
from difftui.engine.run import checkpoint
from difftui.engine.run.checkpoint import (
    CheckpointError,
    DiskFull,
    list_checkpoints,
    load_checkpoint,
    load_newest,
    save_checkpoint,
)
from difftui.engine.store import ACTIVE_STATUSES, Store
from difftui.tui.cli import app

pytestmark = pytest.mark.usefixtures("engine_hygiene")     # tests/conftest.py

ENDED = lambda run: run["status"] not in ACTIVE_STATUSES


def test_a_diverging_run_fails_cleanly_with_a_finite_newest_checkpoint_and_renders_its_nan(tmp_path):
    db = tmp_path / "runs.db"
    # An absurd learning rate: the loss overflows within a few steps and stays non-finite.
    config = tiny_config(200, "recipe.lr=1000000.0", "recipe.log_every=5", "recipe.snapshot_every=7",
                         "recipe.grid_every=100000", "recipe.max_nonfinite_steps=5")
    run_id = launch.new_run(db, config).run_id
    run = wait_for(db, run_id, ENDED)
    assert run["status"] == "failed"
    assert run["error"].startswith("RunFailed: ") and "not finite for" in run["error"]
    assert "steps in a row (up to step" in run["error"] and "recipe.max_nonfinite_steps = 5" in run["error"]
    assert "\n" not in run["error"]
    ckpts = list_checkpoints(tmp_path / "runs" / str(run_id) / "checkpoints")
    assert ckpts, "a checkpoint before the divergence"
    state = load_checkpoint(ckpts[-1][1])
    for key in ("model", "ema"):
        weights = state[key] if key == "model" else state[key]["net"]
        assert all(torch.isfinite(v).all() for v in weights.values() if v.is_floating_point())
    with Store(db) as store:
        values = store.latest_values(run_id)
        skipped = store.series(run_id, "skipped_steps")
        events = [e["message"] for e in store.events_since(run_id)]
    assert math.isnan(values["L_simple"])                   # the last interval had no finite step: NaN, not NULL
    assert sum(v for _, v in skipped) >= 5
    assert any("steps up to step" in e and "skipped" in e for e in events)
    # The front ends render it.
    runner = CliRunner()
    shown = runner.invoke(app, ["--db", str(db), "show", str(run_id)])
    assert shown.exit_code == 0, shown.output
    assert "L_simple NaN" in shown.stdout and "failed" in shown.stdout
    listed = runner.invoke(app, ["--db", str(db), "ls"])
    assert listed.exit_code == 0 and "NaN" in listed.stdout
    # Resuming it fails again the same clean way, from its finite checkpoint (never from a NaN state).
    proc = launch.resume(db, run_id).proc
    assert proc.wait(timeout=120) == 1
    run = wait_for(db, run_id, ENDED)
    assert run["status"] == "failed" and "not finite for" in run["error"]


def test_a_truncated_newest_checkpoint_resumes_from_the_previous_one_naming_the_bad_file(tmp_path):
    db = tmp_path / "runs.db"
    config = tiny_config(30, "recipe.log_every=5", "recipe.snapshot_every=10", "recipe.grid_every=100000",
                         "recipe.keep_snapshots=5")
    run_id = launch.new_run(db, config).run_id
    assert wait_for(db, run_id, ENDED)["status"] == "completed"
    folder = tmp_path / "runs" / str(run_id) / "checkpoints"
    newest = folder / "ckpt-0000030.pt"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])     # a write cut short
    (folder / ".ckpt-0000030.pt.abcd.tmp").write_bytes(b"\0" * 1000)         # an interrupted write's temp file
    proc = launch.resume(db, run_id, total_steps=40).proc
    assert proc.wait(timeout=120) == 0
    run = wait_for(db, run_id, ENDED)
    assert run["status"] == "completed" and run["step"] == 40
    with Store(db) as store:
        events = [e["message"] for e in store.events_since(run_id)]
        steps = [s for s, _ in store.series(run_id, "L_simple")]
    bad = [e for e in events if e.startswith("ckpt-0000030.pt is unreadable")]
    assert len(bad) == 1 and "set aside as ckpt-0000030.pt.bad" in bad[0]
    assert "resumed from step 20 (ckpt-0000020.pt)" in events
    assert any(e.startswith("removed .ckpt-0000030.pt.abcd.tmp") for e in events)
    assert steps == [5, 10, 15, 20, 25, 30, 35, 40]         # rows after step 20 were replaced, none doubled
    assert (folder / "ckpt-0000030.pt.bad").exists() and not list(folder.glob(".ckpt-*.tmp"))


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (Path.touch, (tmp_path / "pwned",))

    path = tmp_path / "ckpt-0000010.pt"
    torch.save({"step": 10, "model": {}, "optimizer": {}, "ema": {}, "stream": {}, "x": Payload()}, path)
    with pytest.raises(CheckpointError, match=r"ckpt-0000010.pt is unreadable .*weights_only"):
        load_checkpoint(path)
    assert not (tmp_path / "pwned").exists()


def test_load_newest_falls_back_and_fails_with_every_reason_when_none_loads(tmp_path):
    good = {"step": 1, "model": {"w": torch.ones(2)}, "optimizer": {}, "ema": {}, "stream": {}}
    save_checkpoint(tmp_path, 1, good, keep=5)
    (tmp_path / "ckpt-0000002.pt").write_bytes(b"not a zip")
    seen = []
    path, state = load_newest(tmp_path, on_bad=lambda p, reason: seen.append(p.name))
    assert path.name == "ckpt-0000001.pt" and state["step"] == 1 and seen == ["ckpt-0000002.pt"]
    (tmp_path / "ckpt-0000001.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"no checkpoint loads: ckpt-0000001.pt is unreadable"):
        load_newest(tmp_path)
    assert load_newest(tmp_path / "empty") is None


def test_a_full_disk_is_reported_as_such_before_and_during_the_write(tmp_path, monkeypatch):
    state = {"step": 1, "model": {"w": torch.zeros(1024, 1024)}, "optimizer": {}, "ema": {}, "stream": {}}
    monkeypatch.setattr(checkpoint, "_free_bytes", lambda folder: 1 * 2**20)
    with pytest.raises(DiskFull, match=r"disk full: cannot write .*ckpt-0000001.pt \(needs about 5 MB, 1 MB free"):
        save_checkpoint(tmp_path, 1, state)
    # The space ran out while writing: torch's zip writer says "unexpected pos"; we say disk full.
    free = iter([2**40, 0])
    monkeypatch.setattr(checkpoint, "_free_bytes", lambda folder: next(free, 0))

    def short_write(obj, f):
        raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 20723584 vs 20723472")
    monkeypatch.setattr(torch, "save", short_write)
    with pytest.raises(DiskFull, match="disk full"):
        save_checkpoint(tmp_path, 1, state)
    assert list(tmp_path.iterdir()) == []                   # no half-written file, no temp file left


def test_a_write_error_that_is_not_a_full_disk_names_the_file(tmp_path, monkeypatch):
    def failing(obj, f):
        raise OSError(errno.EIO, "Input/output error")
    monkeypatch.setattr(torch, "save", failing)
    with pytest.raises(CheckpointError, match=r"cannot write .*ckpt-0000003.pt: \[Errno 5\] Input/output error"):
        save_checkpoint(tmp_path, 3, {"step": 3})
