"""Fixtures for the sweep tests: tiny run options, and no supervisor or engine outlives its test."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from difftui.engine.launch import liveness
from difftui.engine.store import Store


def stop_leftover_supervisors(db: Path) -> None:
    """SIGKILL each supervisor of `db` that a failed test left running (by its recorded pid; members are stopped by
    the engine_hygiene fixture)."""
    if not Path(db).exists():
        return
    with Store(db, create=False) as store:
        pids = [s["pid"] for s in store.list_sweeps() if s["pid"] and liveness.sweep_alive(s)]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture
def sweep_db(engine_hygiene):
    """tmp_path/runs.db for tests that start real supervisors and engines (one CPU thread each)."""
    yield engine_hygiene
    stop_leftover_supervisors(engine_hygiene)


@pytest.fixture
def tui_env(monkeypatch):
    """What would make a snapshot drift is pinned: UTC, half-block grids, one CPU thread per member (the slots'
    thread count is shown), no GPU named."""
    import time
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.setenv("DIFFTUI_GRAPHICS", "halfcell")
    monkeypatch.setenv("DIFFTUI_CPU_THREADS", "1")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def pytest_collection_modifyitems(config, items):
    # textual_image 0.12 calls Pillow's deprecated Image.getdata; not ours to fix (as tests/tui/conftest.py).
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.filterwarnings("ignore:Image.Image.getdata:DeprecationWarning"))
