"""Where difftui keeps what it computes once per user: one cache folder for everything.

`$DIFFTUI_CACHE`, else `$XDG_CACHE_HOME/difftui`, else `~/.cache/difftui`. Beneath it: `tier_figures.json` (parameters
and MACs of networks the shipped figures do not hold), `data/` (preprocessed data sets and their quality tables;
`$DIFFTUI_DATA_CACHE` or a profile's `dataset.cache_dir` put them elsewhere), `fid-refs/` (the real images' FID
statistics) and `inception/` (the FID network's weights). No torch here: the TUI asks this module too.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_root"]


def cache_root() -> Path:
    own = os.environ.get("DIFFTUI_CACHE", "").strip()
    if own:
        return Path(own).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "difftui"
