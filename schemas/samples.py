"""The shipped example payloads: the seed scenario as records of their writer schemas."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from schemas.jsonform import from_json
from schemas.registry import SchemaRegistry, SchemaVersion, default_registry


def example_paths() -> list[str]:
    """Every example as '<name>/v<N>/<file>.json', sorted."""
    root = resources.files("schemas").joinpath("examples")
    return sorted(
        f"{name.name}/{ver.name}/{f.name}"
        for name in root.iterdir()
        if name.is_dir()
        for ver in name.iterdir()
        if ver.is_dir()
        for f in ver.iterdir()
        if f.name.endswith(".json")
    )


def load_example(
    relpath: str, registry: SchemaRegistry | None = None
) -> tuple[SchemaVersion, dict[str, Any]]:
    """The writer schema version an example belongs to, and the example as a record of it."""
    name, version, _ = relpath.split("/")
    sv = (registry or default_registry()).get(name, int(version.removeprefix("v")))
    text = resources.files("schemas").joinpath("examples", relpath).read_text("utf-8")
    return sv, from_json(sv.raw, json.loads(text))


def example_record(relpath: str) -> dict[str, Any]:
    return load_example(relpath)[1]
