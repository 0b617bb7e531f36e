"""Fixtures of the evaluation tests: finished tiny runs (trained once per module through the real engine) and an
empty difftui cache for every test."""

import os

import pytest
from eval_testkit import finished_run

from difftui.engine.store import ACTIVE_STATUSES, Store


@pytest.fixture(autouse=True)
def fresh_cache(tmp_path, monkeypatch):
    """Reference statistics and Inception weights land in this test's own cache; one CPU thread per engine."""
    monkeypatch.setenv("DIFFTUI_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("DIFFTUI_CPU_THREADS", "1")
    monkeypatch.delenv("DIFFTUI_INCEPTION", raising=False)
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """(db, run id) of a finished 10-step digits run with a T = 50 chain."""
    old = os.environ.get("DIFFTUI_CPU_THREADS")
    os.environ["DIFFTUI_CPU_THREADS"] = "1"
    try:
        db = tmp_path_factory.mktemp("digits") / "runs.db"
        yield db, finished_run(db)
    finally:
        if old is None:
            os.environ.pop("DIFFTUI_CPU_THREADS", None)
        else:
            os.environ["DIFFTUI_CPU_THREADS"] = old
        with Store(db, create=False) as store:
            assert not [r for r in store.list_runs() if r["status"] in ACTIVE_STATUSES]
