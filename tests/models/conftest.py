"""Helpers for the backbone tests: shipped tiers by name, and meta-device builds for the big ones."""

import dataclasses

import pytest
import torch

from difftui.engine.config.catalog import Catalog
from difftui.engine.config.model import BackboneTier


@pytest.fixture(scope="session")
def catalog():
    return Catalog()


@pytest.fixture(scope="session")
def tier(catalog):
    def get(name: str, **arch_overrides) -> BackboneTier:
        t = catalog.get("backbones", name)
        if arch_overrides:
            t = dataclasses.replace(t, arch={**t.arch, **arch_overrides}, off_tier=True)
        return t
    return get


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
