"""Shared fixtures for the schemas tests: the shipped registry and agency directory."""

from __future__ import annotations

import pytest

from schemas.agency import AgencyDirectory
from schemas.registry import SchemaRegistry, default_registry


@pytest.fixture(scope="session")
def registry() -> SchemaRegistry:
    return default_registry()


@pytest.fixture(scope="session")
def directory() -> AgencyDirectory:
    return AgencyDirectory.default()
