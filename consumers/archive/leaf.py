"""The archive's side of the leaf contract: an archive_record row's columns -> its leaf."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime

from signing.merkle import leaf_hash
from signing.merkle_leaf import (
    CONTENT,
    WITHHELD,
    LeafRecord,
    canonical_json,
    decode_leaf,
    format_archived_at,
)


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
    withheld: bool = False,
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
        withheld=withheld,
    ).encode()
    return data, leaf_hash(data)


def sha256(raw: bytes) -> bytes:
    return hashlib.sha256(raw).digest()


def leaves(
    first_seq: int,
    records: Sequence[
        tuple[str, int, int, str | None, bytes] | tuple[str, int, int, str | None, bytes, bool]
    ],
    archived_at: datetime,
) -> list[tuple[bytes, bytes]]:
    """(leaf_data, leaf_hash) of consecutive records (topic, partition, offset, message_id,
    sha256[, withheld]) archived together: the same bytes `record_leaf` gives each of them.

    `record_leaf` re-parses every leaf it encodes (LeafRecord.encode -> decode_leaf); here the
    inputs are checked for what decode_leaf refuses (negative or non-integer numbers, a digest
    that is not 32 bytes, a non-string topic or message id), the timestamp is formatted once,
    and the first leaf of the batch still goes through decode_leaf.
    """
    stamp = format_archived_at(archived_at)
    out: list[tuple[bytes, bytes]] = []
    for i, record in enumerate(records):
        topic, partition, offset, message_id, sha256 = record[:5]
        withheld = len(record) > 5 and record[5] is True
        seq = first_seq + i
        if not (
            type(seq) is int
            and type(partition) is int
            and type(offset) is int
            and seq >= 0
            and partition >= 0
            and offset >= 0
            and isinstance(topic, str)
            and (message_id is None or isinstance(message_id, str))
            and len(sha256) == 32
        ):
            raise ValueError(f"record {topic!r}/{partition}/{offset} cannot make a leaf")
        fields: dict[str, object] = {
            "archived_at": stamp,
            "message_id": message_id,
            "offset": offset,
            "partition": partition,
            "seq": seq,
            "sha256": sha256.hex(),
            "topic": topic,
        }
        if withheld:
            fields[CONTENT] = WITHHELD
        data = canonical_json(fields)
        out.append((data, leaf_hash(data)))
    if out:
        decode_leaf(out[0][0])  # never write a leaf a verifier would refuse
    return out
