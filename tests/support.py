"""Helpers shared by the exchange tests: documents of the seed scenario, and topic I/O."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from infra.services.migrate import migrate
from infra.services.topic_setup import ensure_for_agencies
from infra.settings import Settings
from schemas.codec import encode_envelope
from schemas.common import AgencyRef, DocumentCode
from schemas.document import OfficialDocument, document_from_record
from schemas.envelope import Envelope
from schemas.samples import example_record
from signing.transport import ClientSecurity

FETCH = 40 * 1024 * 1024

# How the session's test clients reach the broker: PLAINTEXT for the single broker, the
# administrator's TLS identity on the secure cluster (tests/conftest.py sets it).
_SECURITY: list[ClientSecurity] = [ClientSecurity()]


def use_kafka_security(security: ClientSecurity) -> None:
    _SECURITY[0] = security


def kafka_options() -> dict[str, Any]:
    """Keyword arguments for an aiokafka client of the test session (security settings)."""
    return _SECURITY[0].aiokafka_options()


def librdkafka_options() -> dict[str, str]:
    """The same identity as librdkafka properties (confluent-kafka: the outside client)."""
    return _SECURITY[0].librdkafka_options()


def seed_document(
    number: int, to: Sequence[str], *, names: dict[str, str] | None = None
) -> OfficialDocument:
    """Decision 4612/QĐ-UBND of Hà Nội People's Committee, renumbered and readdressed."""
    base = document_from_record(example_record("official_document/v2/decision-4612-qd-ubnd.json"))
    notation = base.code.notation
    date = base.promulgation_date
    return dataclasses.replace(
        base,
        document_id=f"{base.sender.code},{date:%Y/%m/%d},{number}/{notation}",
        code=DocumentCode(str(number), notation),
        to=tuple(AgencyRef(code, (names or {}).get(code, f"Cơ quan {code}")) for code in to),
        to_places=(),
    )


async def ensure_exchange_topics(
    settings: Settings, bootstrap: str, agencies: Iterable[str]
) -> None:
    await ensure_for_agencies(settings, bootstrap, agencies)


async def publish(
    bootstrap: str, topic: str, items: Iterable[Envelope | bytes], key: bytes | None = None
) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        max_request_size=FETCH,
        **kafka_options(),
    )
    await producer.start()
    try:
        for item in items:
            if isinstance(item, Envelope):
                await producer.send_and_wait(
                    topic, encode_envelope(item), key=item.document_id.encode()
                )
            else:
                await producer.send_and_wait(topic, item, key=key)
    finally:
        await producer.stop()


async def read_topic(
    bootstrap: str, topic: str, *, expect: int, timeout_s: float = 30.0, settle_s: float = 1.0
) -> list[ConsumerRecord]:
    """Everything committed on a topic: waits for `expect` records, then a little more so that a
    duplicate (which would be a bug) has the chance to show up."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_partition_fetch_bytes=FETCH,
        fetch_max_bytes=FETCH,
        **kafka_options(),
    )
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while len(records) < expect and loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            records += [r for rs in batch.values() for r in rs]
        settle = loop.time() + settle_s
        while loop.time() < settle:
            batch = await consumer.getmany(timeout_ms=200)
            records += [r for rs in batch.values() for r in rs]
    finally:
        await consumer.stop()
    return records


def header(record: ConsumerRecord, name: str) -> str | None:
    for key, value in record.headers or ():
        if key == name:
            return bytes(value).decode()
    return None


def utcnow() -> datetime:
    return datetime.now(UTC)


@asynccontextmanager
async def fresh_database(
    server_url: str,
    name: str | None = None,
    seed: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
) -> AsyncIterator[str]:
    """A new, migrated database on the session's server (with `seed` run on it), dropped
    afterwards: the rows a test writes never meet another test's rows."""
    name = name or f"lt_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    finally:
        await admin.close()
    url = urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))
    try:
        conn = await asyncpg.connect(url)
        try:
            await migrate(conn)
            if seed is not None:
                await seed(conn)
        finally:
            await conn.close()
        yield url
    finally:
        # A new connection: a test may have restarted the server under the first one.
        admin = await asyncpg.connect(server_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
