"""Bring the router's store up to date with its changelog (router-state) for some partitions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from consumers.router_state import StateChange
from consumers.router_store import RouterStore

COMMIT_EVERY = 20_000  # records: a long restore interrupted keeps what it has read


@dataclass(frozen=True, slots=True)
class Restored:
    read_from: dict[int, int]  # partition -> changelog offset the restore started at
    up_to: dict[int, int]  # partition -> the offset it reached (exclusive)
    records: int


async def restore_from_changelog(
    bootstrap: str, topic: str, store: RouterStore, partitions: Sequence[int], fetch_bytes: int
) -> Restored:
    """Read each partition's changelog from the store's checkpoint (or from the start, when the
    store has none the log can continue) up to the last stable offset, committed records only."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_partition_fetch_bytes=fetch_bytes,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        start = await consumer.beginning_offsets(tps)
        end = await consumer.end_offsets(tps)  # the last stable offset, read_committed
        read_from = {}
        for tp in tps:
            store.forget(tp.partition)
            read_from[tp.partition] = store.restart_point(tp.partition, start[tp], end[tp])
            consumer.seek(tp, read_from[tp.partition])
        position = dict(read_from)
        remaining = {tp for tp in tps if position[tp.partition] < end[tp]}
        records = since_commit = 0
        store.begin()
        try:
            while remaining:
                batch = await consumer.getmany(*remaining, timeout_ms=500)
                for tp, messages in batch.items():
                    for r in messages:
                        store.apply(tp.partition, StateChange(r.key.decode(), r.value))
                    since_commit += len(messages)
                for tp in remaining:
                    position[tp.partition] = await consumer.position(tp)
                remaining = {tp for tp in remaining if position[tp.partition] < end[tp]}
                if since_commit >= COMMIT_EVERY and remaining:
                    store.commit(position)
                    store.begin()
                    records += since_commit
                    since_commit = 0
            store.commit(position)
            records += since_commit
        except BaseException:
            store.rollback()
            raise
    finally:
        await consumer.stop()
    return Restored(read_from, position, records)
