"""Every room is shipped: a package folder missing from pyproject.toml's `packages` imports in an editable install
(the tests' own) and is absent from a wheel, where `difftui` then fails at its first import of it."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PREFIX = {"engine": "difftui.engine", "tui": "difftui.tui", "presets": "difftui.presets"}


def test_every_package_folder_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = set()
    for top, name in PREFIX.items():
        for init in (ROOT / top).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT / top).parts
            found.add(".".join((name, *parts)))
    assert len(found) >= 20
    assert sorted(found - listed) == []
    assert sorted(listed - found) == []
