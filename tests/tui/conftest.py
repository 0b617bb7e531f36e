"""Fixtures for the TUI tests. Everything that would make a snapshot drift is pinned: creation and event times are
fixed, the time zone is UTC, grids are drawn from a formula, the grid image uses half-blocks, cursors do not blink,
and the remembered new-run choices live in a throwaway config folder."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from tui_helpers import make_prepared_db


@pytest.fixture(autouse=True)
def utc(monkeypatch, tmp_path):
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.setenv("DIFFTUI_GRAPHICS", "halfcell")
    # The new-run flow remembers the last choices per user (tui/prefs.py): never the real user's file.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
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
