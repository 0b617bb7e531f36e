"""Fixtures for the findings-in-the-TUI tests (issue 18 items 2-4): the doctor's recorded runs (tests/doctor) and the
TUI's helpers (tests/tui), with the TUI tests' pinned terminal (UTC, half-blocks, a throwaway config folder)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).parent
for folder in (HERE.parent / "doctor", HERE.parent / "tui"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))


@pytest.fixture(autouse=True)
def utc(monkeypatch, tmp_path):
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.setenv("DIFFTUI_GRAPHICS", "halfcell")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()
