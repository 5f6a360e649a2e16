"""Topic manifests (schemas/topics/*.yaml) loaded as typed TopicSpec objects for infra and tests."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import yaml

from schemas.agency import AgencyCode

DEFAULT_PREFIX = "lienthong."
COMPATIBILITY_MODES = frozenset({"BACKWARD_TRANSITIVE", "FULL_TRANSITIVE"})
_REQUIRED = (
    "topic", "description", "producers", "consumers", "key", "partitions",
    "replication_factor", "retention_ms", "max_message_bytes", "cleanup_policy",
    "compatibility", "schemas", "dlq", "examples",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic. ``name`` has no prefix; a per-agency template keeps ``{agency}`` in it."""

    name: str
    description: str
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    key: str
    partitions: int
    replication_factor: int
    retention_ms: int
    max_message_bytes: int
    cleanup_policy: str
    compatibility: str
    envelope: str | None
    schemas: tuple[str, ...]
    dlq: str | None
    examples: tuple[str, ...]  # paths under schemas/examples/
    per_agency: bool = False

    @property
    def config(self) -> dict[str, str]:
        """Kafka topic configs, as strings, ready for CreateTopics."""
        return {
            "retention.ms": str(self.retention_ms),
            "max.message.bytes": str(self.max_message_bytes),
            "cleanup.policy": self.cleanup_policy,
        }

    def full_name(self, prefix: str = DEFAULT_PREFIX, agency: str | None = None) -> str:
        """The Kafka topic name; per-agency templates need a (strictly valid) agency code."""
        if self.per_agency:
            if agency is None:
                raise ValueError(f"{self.name} is per agency: pass agency=")
            return prefix + self.name.format(agency=AgencyCode.parse(agency).value)
        if agency is not None:
            raise ValueError(f"{self.name} is not per agency")
        return prefix + self.name


def _spec(doc: Any, origin: str) -> TopicSpec:
    if not isinstance(doc, dict):
        raise ValueError(f"{origin}: manifest must be a mapping")
    missing = [k for k in _REQUIRED if k not in doc]
    if missing:
        raise ValueError(f"{origin}: missing {', '.join(missing)}")
    if doc["compatibility"] not in COMPATIBILITY_MODES:
        raise ValueError(f"{origin}: compatibility must be one of {sorted(COMPATIBILITY_MODES)}")
    if doc["cleanup_policy"] not in {"delete", "compact", "compact,delete"}:
        raise ValueError(f"{origin}: bad cleanup_policy {doc['cleanup_policy']!r}")
    per_agency = bool(doc.get("per_agency", False))
    if per_agency != ("{agency}" in doc["topic"]):
        raise ValueError(f"{origin}: per_agency topics (only) must contain '{{agency}}'")
    if int(doc["partitions"]) < 1 or int(doc["replication_factor"]) < 1:
        raise ValueError(f"{origin}: partitions and replication_factor must be >= 1")
    return TopicSpec(
        name=str(doc["topic"]),
        description=str(doc["description"]),
        producers=tuple(doc["producers"]),
        consumers=tuple(doc["consumers"]),
        key=str(doc["key"]),
        partitions=int(doc["partitions"]),
        replication_factor=int(doc["replication_factor"]),
        retention_ms=int(doc["retention_ms"]),
        max_message_bytes=int(doc["max_message_bytes"]),
        cleanup_policy=str(doc["cleanup_policy"]),
        compatibility=str(doc["compatibility"]),
        envelope=doc.get("envelope"),
        schemas=tuple(doc["schemas"]),
        dlq=doc["dlq"],
        examples=tuple(doc["examples"]),
        per_agency=per_agency,
    )


def load_topic_manifests(root: Traversable | None = None) -> list[TopicSpec]:
    """All manifests, sorted by name (default: the ones shipped in schemas/topics/)."""
    folder = root or resources.files("schemas").joinpath("topics")
    specs = [
        _spec(yaml.safe_load(f.read_text("utf-8")), f.name)
        for f in folder.iterdir()
        if f.name.endswith(".yaml")
    ]
    names = [s.name for s in specs]
    if len(names) != len(set(names)):
        raise ValueError(f"duplicate topic names in {names}")
    return sorted(specs, key=lambda s: s.name)


def topic_spec(name: str) -> TopicSpec:
    for spec in load_topic_manifests():
        if spec.name == name:
            return spec
    raise KeyError(name)
