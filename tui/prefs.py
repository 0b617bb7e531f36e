"""The user's last new-run choices (presets and the review form), remembered per user between sessions.

The user's settings live beside it in `settings.json`, written by hand (load_settings; SETTINGS lists each key, its
choices and its default). A bad value there is said once (a warning on stderr names the file, key and value) and the
default used.

The new-run choices: one small JSON file, `$XDG_CONFIG_HOME/difftui/new-run.json` (else `~/.config/difftui/new-run.json`), written
atomically (difftui.engine.atomic) when a run is launched. A missing, unreadable or malformed file is the same as
none: remembering is a convenience and never stops the new-run flow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["prefs_path", "load_choices", "save_choices", "FIELDS", "settings_path", "load_settings", "SETTINGS"]

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


#----------------------------------------------------------------------------
# Settings (settings.json, written by the user).

# key -> (choices, default, what it does). findings_notify (issue 18): how the dashboard tells of a finding that
# appears while it is open, beyond its badge and toast: "bell" (the terminal's bell), "osc9" (an OSC 9 desktop
# notification: iTerm2, WezTerm, kitty, Windows Terminal), "off" (the default: a terminal left open stays quiet).
SETTINGS = {"findings_notify": (("off", "bell", "osc9"), "off", "bell or desktop notification on a new finding")}

_warned: set[tuple[str, str]] = set()


def settings_path() -> Path:
    from difftui.engine.user_dirs import config_root
    return config_root() / "settings.json"


def load_settings(path: Path | None = None) -> dict[str, Any]:
    """Every setting, the user's value where settings.json gives a valid one, else its default."""
    path = path or settings_path()
    out = {key: default for key, (_, default, _) in SETTINGS.items()}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return out
    except (OSError, ValueError) as e:
        _warn(path, "", f"{path}: not read ({e}); the defaults are used")
        return out
    if not isinstance(data, dict):
        _warn(path, "", f"{path}: expected a JSON object; the defaults are used")
        return out
    for key, value in data.items():
        if key not in SETTINGS:
            _warn(path, key, f"{path}: unknown key {key!r} (keys: {', '.join(SETTINGS)})")
        elif value not in SETTINGS[key][0]:
            _warn(path, key, f"{path}: {key}: {value!r} is not one of {', '.join(SETTINGS[key][0])}; "
                             f"{SETTINGS[key][1]!r} is used")
        else:
            out[key] = value
    return out


def _warn(path: Path, key: str, line: str) -> None:
    import sys
    if (str(path), key) not in _warned:
        _warned.add((str(path), key))
        print(f"difftui: warning: {line}", file=sys.stderr, flush=True)
