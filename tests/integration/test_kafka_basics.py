"""The broker the project starts does what the exchange relies on: durable, idempotent,
transactional produce and read_committed consume."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.support import kafka_options


async def _create_topic(bootstrap: str, name: str, partitions: int = 1) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **kafka_options())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()


async def _read_all(
    bootstrap: str, topic: str, *, isolation: str, expect: int, timeout_s: float = 15.0
) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        **kafka_options(),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level=isolation,
    )
    await consumer.start()
    values: list[bytes] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while len(values) < expect and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            values += [m.value for msgs in batch.values() for m in msgs if m.value is not None]
        # Give a straggler (which would be a bug) a moment to show up.
        extra = await consumer.getmany(timeout_ms=1000)
        values += [m.value for msgs in extra.values() for m in msgs if m.value is not None]
    finally:
        await consumer.stop()
    return values


async def test_idempotent_producer_round_trip(bootstrap: str, unique: str) -> None:
    topic = f"test.roundtrip.{unique}"
    await _create_topic(bootstrap, topic, partitions=3)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, **kafka_options(), acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        sent = [f"Quyết định {i}/QĐ-UBND".encode() for i in range(20)]
        metas = [await producer.send_and_wait(topic, v, key=b"000.00.00.H26") for v in sent]
    finally:
        await producer.stop()
    # One key, one partition: order is preserved end to end.
    assert len({m.partition for m in metas}) == 1
    assert [m.offset for m in metas] == list(range(metas[0].offset, metas[0].offset + 20))
    got = await _read_all(bootstrap, topic, isolation="read_uncommitted", expect=20)
    assert got == sent


async def test_read_committed_sees_committed_transaction_only(bootstrap: str, unique: str) -> None:
    topic = f"test.txn.{unique}"
    await _create_topic(bootstrap, topic)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, **kafka_options(), transactional_id=f"test-{unique}"
    )
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send_and_wait(topic, b"committed-1")
            await producer.send_and_wait(topic, b"committed-2")
        await producer.begin_transaction()
        await producer.send_and_wait(topic, b"aborted")
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send_and_wait(topic, b"committed-3")
    finally:
        await producer.stop()
    committed = await _read_all(bootstrap, topic, isolation="read_committed", expect=3)
    assert committed == [b"committed-1", b"committed-2", b"committed-3"]
    everything = await _read_all(bootstrap, topic, isolation="read_uncommitted", expect=4)
    assert b"aborted" in everything
