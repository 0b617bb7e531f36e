"""The user's last new-run choices (presets and the review form), remembered per user between sessions.

One small JSON file, `$XDG_CONFIG_HOME/difftui/new-run.json` (else `~/.config/difftui/new-run.json`), written
atomically (difftui.engine.atomic) when a run is launched. A missing, unreadable or malformed file is the same as
none: remembering is a convenience and never stops the new-run flow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["prefs_path", "load_choices", "save_choices", "FIELDS"]

# What is remembered: the four presets and the review form's fields.
FIELDS = ("datasets", "backbones", "samplers", "recipes", "batch_size", "max_steps", "overrides", "off_tier")


def prefs_path() -> Path:
    from difftui.engine.user_dirs import config_root
    return config_root() / "new-run.json"


def load_choices(path: Path | None = None) -> dict[str, Any]:
    path = path or prefs_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    out: dict[str, Any] = {}
    for key in FIELDS:
        value = data.get(key)
        if key == "off_tier" and isinstance(value, bool):
            out[key] = value
        elif isinstance(value, str):
            out[key] = value
    return out


def save_choices(choices: dict[str, Any], path: Path | None = None) -> Path:
    """Write the remembered choices (only FIELDS) atomically; returns the file written."""
    from difftui.engine.atomic import atomic_write_text
    path = path or prefs_path()
    data = {k: choices[k] for k in FIELDS if k in choices}
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
