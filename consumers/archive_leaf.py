"""The archive's side of the leaf contract: an archive_record row's columns -> its leaf."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from signing.merkle import leaf_hash
from signing.merkle_leaf import LeafRecord, format_archived_at


def archive_time(at: datetime) -> datetime:
    """UTC, floored to the millisecond the leaf states, so the column gives the leaf back."""
    at = at.astimezone(UTC)
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


def record_leaf(
    *,
    seq: int,
    topic: str,
    partition: int,
    offset: int,
    message_id: str | None,
    sha256: bytes,
    archived_at: datetime,
) -> tuple[bytes, bytes]:
    """(leaf_data, leaf_hash) of one record (signing.merkle_leaf defines the encoding)."""
    data = LeafRecord(
        seq=seq,
        topic=topic,
        partition=partition,
        offset=offset,
        message_id=message_id,
        sha256=sha256.hex(),
        archived_at=format_archived_at(archived_at),
    ).encode()
    return data, leaf_hash(data)


def sha256(raw: bytes) -> bytes:
    return hashlib.sha256(raw).digest()
