"""The user's named Slurm profiles: `$XDG_CONFIG_HOME/difftui/slurm.yaml` (else `~/.config/difftui/slurm.yaml`).

    default: gpu                  # optional: the profile `--slurm` alone (and the review screen) starts with
    profiles:
      gpu:
        partition: gpu
        time: "24:00:00"
        gpus_per_node: 4
        cpus_per_task: 8
        mem: 256G
        sbatch: {mail-type: END}
      debug: {partition: debug, time: "30:00"}

Each profile is a `SlurmOptions` (options.py), validated when the file is read: a malformed file is one line naming
the file, the profile and the key, and nothing is launched. `--save-profile NAME` writes one profile (atomically,
keeping the others); the file may as well be edited by hand.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from difftui.engine.atomic import atomic_write_text
from difftui.engine.config.schema import PresetError
from difftui.engine.launch.slurm.options import SlurmOptions, options_from_mapping
from difftui.engine.user_dirs import config_root

__all__ = ["profiles_path", "load_profiles", "get_profile", "save_profile", "default_profile_name"]


def profiles_path() -> Path:
    return config_root() / "slurm.yaml"


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise PresetError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise PresetError(f"{path}: not valid YAML{where}: {getattr(e, 'problem', None) or e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PresetError(f"{path}: expected a mapping with 'profiles', got {type(data).__name__}")
    unknown = set(data) - {"default", "profiles"}
    if unknown:
        raise PresetError(f"{path}: unknown key {sorted(unknown)[0]!r} (expected 'default' and 'profiles')")
    profiles = data.get("profiles") or {}
    if not isinstance(profiles, dict):
        raise PresetError(f"{path}: key 'profiles': expected a mapping of profile names")
    if data.get("default") is not None and data["default"] not in profiles:
        raise PresetError(f"{path}: key 'default': no profile {data['default']!r} (profiles: "
                          f"{', '.join(map(str, profiles)) or 'none'})")
    return data


def load_profiles(path: Path | None = None) -> dict[str, SlurmOptions]:
    """Every profile of the file, validated (PresetError, one line, for the first fault); {} without a file."""
    path = path or profiles_path()
    data = _read(path)
    out = {}
    for name, body in (data.get("profiles") or {}).items():
        out[str(name)] = options_from_mapping(body, f"{path}: profile {name!r}")
    return out


def default_profile_name(path: Path | None = None) -> str | None:
    path = path or profiles_path()
    return _read(path).get("default")


def get_profile(name: str | None, path: Path | None = None) -> SlurmOptions:
    """The profile `name`; None or "" is the file's default profile, else the cluster's defaults (no options)."""
    path = path or profiles_path()
    profiles = load_profiles(path)
    if not name:
        name = default_profile_name(path)
        if name is None:
            return SlurmOptions()
    if name not in profiles:
        raise PresetError(f"no Slurm profile {name!r} in {path} (profiles: {', '.join(profiles) or 'none'}; save one "
                          f"with --save-profile {name})")
    return profiles[name]


def save_profile(name: str, options: SlurmOptions, path: Path | None = None) -> Path:
    """Write `options` as profile `name` (replacing one of that name, keeping the others and the default)."""
    path = path or profiles_path()
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise PresetError(f"--save-profile {name!r}: expected a name of letters, digits, '-' and '_'")
    data = _read(path)
    profiles = dict(data.get("profiles") or {})
    profiles[name] = options.to_dict()
    data["profiles"] = profiles
    os.makedirs(path.parent, exist_ok=True)
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))
    return path
