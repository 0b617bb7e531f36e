"""Every data test writes its caches under its own tmp_path (never the user's ~/.cache)."""

import pytest


@pytest.fixture(autouse=True)
def data_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFTUI_DATA_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"
