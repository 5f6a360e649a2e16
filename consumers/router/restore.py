"""Bring the router's store up to date with its changelog (router-state) for some partitions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from consumers.router.state import StateChange
from consumers.router.store import Checkpoint, RouterStore

COMMIT_EVERY = 20_000  # records: a long restore interrupted keeps what it has read


@dataclass(frozen=True, slots=True)
class Restored:
    read_from: dict[int, int]  # partition -> changelog offset the restore started at
    up_to: dict[int, int]  # partition -> the offset it reached (exclusive)
    records: int


async def restore_from_changelog(
    bootstrap: str,
    topic: str,
    store: RouterStore,
    partitions: Sequence[int],
    fetch_bytes: int,
    *,
    client_options: Mapping[str, Any] | None = None,
) -> Restored:
    """Read each partition's changelog from the store's checkpoint (or from the start, when the
    log cannot continue it) up to the last stable offset, committed records only."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_partition_fetch_bytes=fetch_bytes,
        **(client_options or {}),
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        start = await consumer.beginning_offsets(tps)
        end = await consumer.end_offsets(tps)  # the last stable offset, read_committed
        kept: dict[TopicPartition, Checkpoint] = {}
        for tp in tps:
            store.forget(tp.partition)
            checkpoint = store.restart_point(tp.partition, start[tp], end[tp])
            if checkpoint is not None:
                kept[tp] = checkpoint
        for tp in await _foreign(consumer, kept, end):
            store.wipe(tp.partition)  # the topic was recreated: its log is another one
            del kept[tp]
        reached: dict[int, Checkpoint] = {}
        for tp in tps:
            reached[tp.partition] = kept.get(tp) or Checkpoint(start[tp])
            consumer.seek(tp, reached[tp.partition].next_offset)
        read_from = {p: c.next_offset for p, c in reached.items()}
        up_to, records = await _read(consumer, store, reached, end)
        return Restored(read_from, up_to, records)
    finally:
        await consumer.stop()


async def _foreign(
    consumer: AIOKafkaConsumer,
    checkpoints: dict[TopicPartition, Checkpoint],
    end: dict[TopicPartition, int],
) -> list[TopicPartition]:
    """The partitions whose log no longer holds, where the checkpoint says, the last record the
    store applied (same offset, same key); compacted away also counts, to be safe."""
    pending = {tp: c for tp, c in checkpoints.items() if c.last_offset is not None}
    for tp, c in pending.items():
        consumer.seek(tp, c.last_offset)
    foreign = []
    while pending:
        batch = await consumer.getmany(*pending, timeout_ms=500, max_records=len(pending) * 50)
        for tp, records in batch.items():
            if tp in pending and records:
                first, c = records[0], pending.pop(tp)
                if first.offset != c.last_offset or (first.key or b"").decode() != c.last_key:
                    foreign.append(tp)
        for tp in list(pending):
            if await consumer.position(tp) >= end[tp]:
                foreign.append(tp)
                del pending[tp]
    return foreign


async def _read(
    consumer: AIOKafkaConsumer,
    store: RouterStore,
    reached: dict[int, Checkpoint],
    end: dict[TopicPartition, int],
) -> tuple[dict[int, int], int]:
    """Apply the changelog from each partition's position to its end, committing as it goes;
    the offsets reached and how many records were applied."""
    last = {p: (c.last_offset, c.last_key) for p, c in reached.items()}
    position = {p: c.next_offset for p, c in reached.items()}

    def checkpoints() -> dict[int, Checkpoint]:
        return {p: Checkpoint(position[p], *last[p]) for p in position}

    records = since_commit = 0
    remaining = {tp for tp in end if position[tp.partition] < end[tp]}
    store.begin()
    try:
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=500)
            for tp, messages in batch.items():
                for r in messages:
                    store.apply(tp.partition, StateChange(r.key.decode(), r.value))
                if messages:
                    last[tp.partition] = (messages[-1].offset, messages[-1].key.decode())
                since_commit += len(messages)
            for tp in remaining:
                position[tp.partition] = await consumer.position(tp)
            remaining = {tp for tp in remaining if position[tp.partition] < end[tp]}
            if since_commit >= COMMIT_EVERY and remaining:
                store.commit(checkpoints())
                store.begin()
                records, since_commit = records + since_commit, 0
        store.commit(checkpoints())
    except BaseException:
        store.rollback()
        raise
    return position, records + since_commit
