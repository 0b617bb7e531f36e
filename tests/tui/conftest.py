"""Fixtures for the TUI tests. Everything that would make a snapshot drift is pinned: creation and event times are
fixed, the time zone is UTC, grids are drawn from a formula, the grid image uses half-blocks, cursors do not blink."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from tui_helpers import make_prepared_db


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.setenv("DIFFTUI_GRAPHICS", "halfcell")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def prepared_db(tmp_path) -> Path:
    """Three finished runs and one 'running' run whose process is gone, with fixed times and data."""
    return make_prepared_db(tmp_path)


def pytest_collection_modifyitems(config, items):
    # textual_image 0.12 calls Pillow's deprecated Image.getdata; not ours to fix.
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.filterwarnings("ignore:Image.Image.getdata:DeprecationWarning"))
