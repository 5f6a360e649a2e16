"""Every known Avro schema version, loaded once from schemas/avro/<name>/v<N>.avsc."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

_VERSION_FILE = re.compile(r"^v(\d+)\.avsc$")


@dataclass(frozen=True, slots=True)
class SchemaVersion:
    """One version of one record schema, parsed once."""

    directory: str  # e.g. "official_document"
    version: int
    fullname: str  # e.g. "vn.lienthong.v1.OfficialDocument"
    raw: dict[str, Any]
    parsed: Any  # fastavro's parsed form; opaque
    canonical: str  # Parsing Canonical Form
    fingerprint: bytes  # 8 bytes, as on the wire (little-endian CRC-64-AVRO)

    @property
    def name(self) -> str:
        return self.fullname.rsplit(".", 1)[-1]

    @property
    def identity(self) -> str:
        return f"{self.fullname}@{self.fingerprint.hex()}"


def parse_version(directory: str, version: int, raw: dict[str, Any]) -> SchemaVersion:
    """Parse a schema dict; each version gets its own name space so versions never clash."""
    parsed = fastavro.parse_schema(raw, named_schemas={})
    canonical = to_parsing_canonical_form(raw)
    namespace = raw.get("namespace")
    name = raw["name"]
    fullname = name if "." in name or not namespace else f"{namespace}.{name}"
    return SchemaVersion(
        directory=directory,
        version=version,
        fullname=fullname,
        raw=raw,
        parsed=parsed,
        canonical=canonical,
        fingerprint=bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO")),
    )


class SchemaRegistry:
    """Fingerprint -> writer schema, and name -> versions (oldest first)."""

    def __init__(self, versions: list[SchemaVersion]) -> None:
        self._by_fingerprint: dict[bytes, SchemaVersion] = {}
        self._by_key: dict[str, list[SchemaVersion]] = {}
        for sv in sorted(versions, key=lambda v: (v.directory, v.version)):
            if sv.fingerprint in self._by_fingerprint:
                other = self._by_fingerprint[sv.fingerprint]
                raise ValueError(f"{sv.directory} v{sv.version} duplicates {other.identity}")
            self._by_fingerprint[sv.fingerprint] = sv
            # Look-ups accept the directory name, the short name or the full name.
            for key in {sv.directory, sv.name, sv.fullname}:
                self._by_key.setdefault(key, []).append(sv)

    @classmethod
    def load(cls, root: Traversable) -> SchemaRegistry:
        versions: list[SchemaVersion] = []
        for folder in root.iterdir():
            if not folder.is_dir():
                continue
            for file in folder.iterdir():
                m = _VERSION_FILE.match(file.name)
                if m:
                    raw = json.loads(file.read_text("utf-8"))
                    versions.append(parse_version(folder.name, int(m.group(1)), raw))
        return cls(versions)

    def by_fingerprint(self, fp: bytes) -> SchemaVersion | None:
        return self._by_fingerprint.get(fp)

    def versions(self, name: str) -> list[SchemaVersion]:
        """All versions of a record, oldest first; KeyError if unknown."""
        return list(self._by_key[name])

    def latest(self, name: str) -> SchemaVersion:
        return self._by_key[name][-1]

    def get(self, name: str, version: int) -> SchemaVersion:
        for sv in self._by_key[name]:
            if sv.version == version:
                return sv
        raise KeyError(f"{name} v{version}")

    def names(self) -> list[str]:
        """Directory names of all records, sorted."""
        return sorted({sv.directory for sv in self._by_fingerprint.values()})

    def __iter__(self) -> Iterator[SchemaVersion]:
        return iter(sorted(self._by_fingerprint.values(), key=lambda v: (v.directory, v.version)))


@functools.cache
def default_registry() -> SchemaRegistry:
    """The registry of the .avsc files shipped in this package (parsed once per process)."""
    return SchemaRegistry.load(resources.files("schemas").joinpath("avro"))
