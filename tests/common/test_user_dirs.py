"""One cache folder for everything difftui computes once per user (engine/user_dirs.py)."""

from pathlib import Path

from difftui.engine.config.model import DatasetProfile
from difftui.engine.config.tier_figures import user_cache_path
from difftui.engine.data.cache import cache_root as data_cache_root
from difftui.engine.eval.metrics.reference import reference_path
from difftui.engine.eval.metrics.weights import inception_candidates
from difftui.engine.user_dirs import cache_root


def _profile(**kw) -> DatasetProfile:
    return DatasetProfile(name="x", description="", source="image_folder", resolution=8, channels=3, anchor="none",
                          **kw)


def test_cache_root_is_difftui_cache_then_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("DIFFTUI_CACHE", str(tmp_path / "own"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "own"
    monkeypatch.delenv("DIFFTUI_CACHE")
    assert cache_root() == tmp_path / "xdg" / "difftui"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "difftui"


def test_tier_figures_data_caches_and_inception_weights_share_the_one_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("DIFFTUI_CACHE", str(tmp_path / "c"))
    monkeypatch.delenv("DIFFTUI_DATA_CACHE", raising=False)
    assert user_cache_path() == tmp_path / "c" / "tier_figures.json"
    assert data_cache_root(_profile()) == tmp_path / "c" / "data"
    assert inception_candidates()[0].parent == tmp_path / "c" / "inception"
    assert reference_path("k") == tmp_path / "c" / "fid-refs" / "k.npz"
    # A data set's own cache_dir, then DIFFTUI_DATA_CACHE, come before it.
    monkeypatch.setenv("DIFFTUI_DATA_CACHE", str(tmp_path / "d"))
    assert data_cache_root(_profile()) == tmp_path / "d"
    own = _profile(cache_dir=Path(tmp_path / "e"))
    assert data_cache_root(own) == tmp_path / "e"
