"""Fixtures for the findings-in-the-TUI tests (issue 18 items 2-4): the doctor's recorded runs and the TUI's helpers
(both in tests/kit), with the TUI tests' pinned terminal (UTC, half-blocks, a throwaway config folder)."""

from __future__ import annotations

import time

import pytest


@pytest.fixture(autouse=True)
def utc(monkeypatch, tmp_path):
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.setenv("DIFFTUI_GRAPHICS", "halfcell")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()
