"""Where difftui keeps what it computes once per user (one cache folder for everything), and what the user configures.

`$DIFFTUI_CACHE`, else `$XDG_CACHE_HOME/difftui`, else `~/.cache/difftui`. Beneath it: `tier_figures.json` (parameters
and MACs of networks the shipped figures do not hold), `data/` (preprocessed data sets and their quality tables;
`$DIFFTUI_DATA_CACHE` or a profile's `dataset.cache_dir` put them elsewhere), `fid-refs/` (the real images' FID
statistics) and `inception/` (the FID network's weights).

The user's own settings live in `$XDG_CONFIG_HOME/difftui`, else `~/.config/difftui`: `slurm.yaml` (the Slurm
profiles, engine/launch/slurm/profiles.py) and the TUI's remembered new-run choices (`new-run.json`, tui/prefs.py).
No torch here: the TUI asks this module too.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_root", "config_root"]


def cache_root() -> Path:
    own = os.environ.get("DIFFTUI_CACHE", "").strip()
    if own:
        return Path(own).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "difftui"


def config_root() -> Path:
    xdg = os.environ.get("XDG_CONFIG_HOME", "").strip()
    return (Path(xdg).expanduser() if xdg else Path.home() / ".config") / "difftui"
