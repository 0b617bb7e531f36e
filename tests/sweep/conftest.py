"""Fixtures for the sweep tests: tiny run options, and no supervisor or engine outlives its test."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from difftui.engine.store import Store


def stop_leftover_supervisors(db: Path) -> None:
    """SIGKILL each supervisor of `db` that a failed test left running (by its recorded pid; members are stopped by
    the engine_hygiene fixture)."""
    if not Path(db).exists():
        return
    with Store(db, create=False) as store:
        pids = [s["pid"] for s in store.list_sweeps() if s["pid"] and store.is_sweep_alive(s)]
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
