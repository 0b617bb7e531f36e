"""Fixtures shared by every test folder."""

import os
import signal
from pathlib import Path

import pytest

from difftui.engine.store import ACTIVE_STATUSES, Store


def stop_leftover_engines(db: Path) -> None:
    """SIGTERM (checkpoint, then exit) each engine of `db` that a failed test left running, by its recorded pid."""
    if not Path(db).exists():
        return
    with Store(db, create=False) as store:
        pids = [r["pid"] for r in store.list_runs() if r["status"] in ACTIVE_STATUSES and r["pid"]]
        # Evaluator processes (issue 9) too: SIGTERM ends them with a status.
        pids += [j["pid"] for r in store.list_runs() for j in store.jobs_for(r["id"], active=True) if j["pid"]]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="session", autouse=True)
def private_user_dirs(tmp_path_factory):
    """No test reads or writes the real user's folders: difftui's cache (tier figures, data caches, FID statistics,
    Inception weights) and the remembered new-run choices live in throwaway folders, shared by the session so that a
    network measured once is not measured again by every test. Engines and evaluators started by the tests inherit
    them through the environment."""
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("user-dirs")
    mp.setenv("DIFFTUI_CACHE", str(root / "cache"))
    mp.setenv("XDG_CACHE_HOME", str(root / "xdg-cache"))
    mp.setenv("XDG_CONFIG_HOME", str(root / "xdg-config"))
    mp.delenv("DIFFTUI_DATA_CACHE", raising=False)
    mp.delenv("DIFFTUI_INCEPTION", raising=False)
    mp.delenv("DIFFTUI_PRESETS", raising=False)
    mp.delenv("DIFFTUI_VAE", raising=False)
    yield root
    mp.undo()


@pytest.fixture
def engine_hygiene(monkeypatch, tmp_path):
    """For tests that start real engines on tmp_path/runs.db: one CPU thread per engine (tiny models gain nothing
    from a second, and the tests share a small CPU), and no engine outlives its test."""
    monkeypatch.setenv("DIFFTUI_CPU_THREADS", "1")
    yield tmp_path / "runs.db"
    stop_leftover_engines(tmp_path / "runs.db")
