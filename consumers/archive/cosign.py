"""Witness cosignatures into the archive: each line of each cosigned checkpoint published on the
cosignatures topic, stored as published (cosignature table). Nothing is verified here: auditors
verify every line against the witness keys they pinned (`audit check --witness`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from signing.note import NoteError, parse_checkpoint, parse_note

log = structlog.get_logger()

INSERT_COSIGNATURE = """
INSERT INTO cosignature (origin, size, root, witness, key_id, line, note)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT DO NOTHING
"""


async def store_cosigned(conn: asyncpg.Connection, data: bytes) -> int:
    """Store every signature line of a cosigned checkpoint but the log's own; returns how many
    were new. Anything that is not a checkpoint note is refused (NoteError)."""
    note = parse_note(data)
    checkpoint = parse_checkpoint(note.text)
    text = data.decode("utf-8")
    added = 0
    for sig in note.signatures:
        if sig.name == checkpoint.origin:
            continue  # the log's signature: tree_head.checkpoint has it
        status = await conn.execute(
            INSERT_COSIGNATURE,
            checkpoint.origin,
            checkpoint.size,
            checkpoint.root,
            sig.name,
            sig.key_id,
            sig.line(),
            text,
        )
        added += status.endswith(" 1")
    return added


async def collect_cosignatures(
    bootstrap: str,
    topic: str,
    database_url: str,
    stop: asyncio.Event,
    client_options: Mapping[str, Any] | None = None,
) -> None:
    """Follow the cosignatures topic from its beginning (a small topic; rows are deduplicated)
    and store each record; a record that is not a checkpoint note is logged and skipped."""
    conn = await asyncpg.connect(database_url)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        **(client_options or {}),
    )
    try:
        await consumer.start()
        consumer.assign([TopicPartition(topic, 0)])
        await consumer.seek_to_beginning()
        while not stop.is_set():
            try:
                batch = await consumer.getmany(timeout_ms=500, max_records=200)
            except KafkaError as exc:
                log.warning("cosignatures.unavailable", error=repr(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 2.0)
                continue
            for records in batch.values():
                for record in records:
                    try:
                        added = await store_cosigned(conn, record.value or b"")
                    except (NoteError, UnicodeDecodeError) as exc:
                        log.warning("cosignatures.refused", offset=record.offset, error=str(exc))
                        continue
                    if added:
                        log.info("cosignatures.stored", offset=record.offset, lines=added)
    finally:
        await consumer.stop()
        await conn.close()
