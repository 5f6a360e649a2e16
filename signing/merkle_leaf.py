"""The archive's leaf data: canonical JSON naming one archived Kafka record and its SHA-256."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

REQUIRED = ("seq", "topic", "partition", "offset", "message_id", "sha256", "archived_at")
# Optional, with one value: "withheld" when the archive keeps only the digest of the bytes
# (a secret document, bytes that did not decode). Absent, the leaf says the bytes were kept,
# so erasing them later (raw set to NULL) contradicts what was signed.
CONTENT = "content"
WITHHELD = "withheld"
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_ARCHIVED_AT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


class LeafFormatError(ValueError):
    """Leaf data is not canonical leaf JSON."""


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8 (no \\u escapes): one byte string per value."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def format_archived_at(moment: datetime) -> str:
    """UTC, milliseconds (floored) always written: 2026-03-10T02:00:00.123Z."""
    if moment.tzinfo is None:
        raise ValueError("archived_at must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class LeafRecord:
    """One leaf: where the record came from and the SHA-256 of its exact bytes."""

    seq: int  # the leaf index
    topic: str
    partition: int
    offset: int
    message_id: str | None  # None when the bytes did not parse as an envelope
    sha256: str  # lowercase hex of SHA-256 over the record's value bytes
    archived_at: str  # format_archived_at(...)
    extra: dict[str, Any] = field(default_factory=dict)  # other fields, hashed all the same
    withheld: bool = False  # the archive keeps the digest only (leaf field "content")

    def encode(self) -> bytes:
        fields = {
            "seq": self.seq,
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "message_id": self.message_id,
            "sha256": self.sha256,
            "archived_at": self.archived_at,
        }
        if self.withheld:
            fields[CONTENT] = WITHHELD
        clash = (set(fields) | {CONTENT}) & set(self.extra)
        if clash:
            raise ValueError(f"extra fields shadow required ones: {sorted(clash)}")
        data = canonical_json({**self.extra, **fields})
        decode_leaf(data)  # never write a leaf a verifier would refuse
        return data


def _int(obj: dict[str, Any], name: str) -> int:
    value = obj[name]
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise LeafFormatError(f"leaf field {name!r} is not a non-negative integer")
    return value


def _str(obj: dict[str, Any], name: str, *, nullable: bool = False) -> Any:
    value = obj[name]
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise LeafFormatError(f"leaf field {name!r} is not a string")
    return value


def decode_leaf(data: bytes) -> LeafRecord:
    """Parse leaf data, refusing anything that is not exactly its canonical encoding."""
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise LeafFormatError(f"leaf data is not UTF-8 JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise LeafFormatError("leaf data is not a JSON object")
    missing = [name for name in REQUIRED if name not in obj]
    if missing:
        raise LeafFormatError(f"leaf data lacks {missing}")
    try:
        canonical = canonical_json(obj)
    except ValueError as exc:
        raise LeafFormatError(f"leaf data cannot be canonical: {exc}") from exc
    if canonical != data:
        # Two encodings of one record would be two leaves: only the canonical one counts.
        raise LeafFormatError("leaf data is not canonical JSON (sorted keys, no spaces, UTF-8)")
    sha = _str(obj, "sha256")
    if not _SHA256_HEX.match(sha):
        raise LeafFormatError("leaf field 'sha256' is not 64 lowercase hex digits")
    archived_at = _str(obj, "archived_at")
    if not _ARCHIVED_AT.match(archived_at):
        raise LeafFormatError("leaf field 'archived_at' is not YYYY-MM-DDTHH:MM:SS.mmmZ")
    if CONTENT in obj and obj[CONTENT] != WITHHELD:
        raise LeafFormatError(f"leaf field 'content' is {obj[CONTENT]!r}; only 'withheld' exists")
    return LeafRecord(
        seq=_int(obj, "seq"),
        topic=_str(obj, "topic"),
        partition=_int(obj, "partition"),
        offset=_int(obj, "offset"),
        message_id=_str(obj, "message_id", nullable=True),
        sha256=sha,
        archived_at=archived_at,
        extra={k: v for k, v in obj.items() if k not in REQUIRED and k != CONTENT},
        withheld=CONTENT in obj,
    )
