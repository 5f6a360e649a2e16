"""Routing does not depend on the partition a client chose: records moved to their document's
partition, replays and duplicates caught across partitions, a librdkafka client's statuses
routed (its default partitioner is not Java's murmur2)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest
from confluent_kafka import Producer

from consumers.router.partitions import home_partition
from infra.settings import Settings
from schemas.codec import decode_envelope, decode_payload, encode_envelope
from schemas.common import AgencyRef
from schemas.envelope import Envelope
from schemas.status import StatusCode, StatusNotice
from signing.seal import seal
from tests.conftest import BA_DINH, H26
from tests.integration.test_router import creds, exchange, running_router
from tests.support import (
    header,
    kafka_options,
    librdkafka_options,
    publish,
    read_topic,
    seed_document,
    utcnow,
)

__all__ = ["exchange"]  # the fixture, used by name below

PARTITIONS = 12  # schemas/topics/submissions.yaml


def other_partition(document_id: str) -> int:
    return (home_partition(document_id, PARTITIONS) + 5) % PARTITIONS


async def produce_to(
    bootstrap: str,
    topic: str,
    raw: bytes,
    key: bytes,
    partition: int,
    headers: list[tuple[str, bytes]] | None = None,
) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, **kafka_options(), acks="all", max_request_size=2**25
    )
    await producer.start()
    try:
        await producer.send_and_wait(topic, raw, key=key, partition=partition, headers=headers)
    finally:
        await producer.stop()


def status(pki_dir: Path, document_id: str, code: str, seconds: int = 0) -> Envelope:
    notice = StatusNotice(
        document_id=document_id,
        from_agency=AgencyRef(BA_DINH, "Ủy ban nhân dân quận Ba Đình"),
        code=StatusCode(code),
        timestamp=utcnow() + timedelta(seconds=seconds),
    )
    return seal(notice, credentials=creds(pki_dir, BA_DINH), at=utcnow(), recipients=[H26])


def librdkafka_produce(bootstrap: str, topic: str, envelope: Envelope) -> int:
    """As an outside team's client would: confluent-kafka with its defaults (partitioner
    consistent_random: CRC32 of the key), keyed by the document id. Returns the partition."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", **librdkafka_options()})
    landed: list[int] = []

    def delivered(err: object, msg: object) -> None:
        assert err is None, err
        landed.append(msg.partition())  # type: ignore[attr-defined]

    producer.produce(
        topic, encode_envelope(envelope), key=envelope.document_id.encode(), on_delivery=delivered
    )
    assert producer.flush(30) == 0
    return landed[0]


async def test_a_status_from_a_librdkafka_client_is_routed_whatever_its_partition(
    exchange: Settings, bootstrap: str, pki_dir: Path
) -> None:
    doc = seed_document(7601, [BA_DINH])
    answers = [status(pki_dir, doc.document_id, code, i) for i, code in enumerate(("01", "03"))]
    async with running_router(exchange, bootstrap) as router:
        await publish(
            bootstrap,
            exchange.topic("submissions"),
            [seal(doc, credentials=creds(pki_dir, H26), at=utcnow())],
        )
        await read_topic(bootstrap, exchange.inbox(BA_DINH), expect=1)
        landed = [librdkafka_produce(bootstrap, exchange.topic("submissions"), a) for a in answers]
        to_h26 = await read_topic(bootstrap, exchange.inbox(H26), expect=2)
        dead = await read_topic(bootstrap, exchange.topic("deadletter"), expect=0, settle_s=0.5)
        forwarded = router.metrics.registry.get_sample_value("lienthong_router_forwarded_total")
    home = home_partition(doc.document_id, PARTITIONS)
    # The point of the test: librdkafka's partitioner put this key elsewhere than murmur2 does.
    assert set(landed) == {landed[0]} and landed[0] != home, (landed, home)
    codes = [decode_payload(decode_envelope(r.value)).code for r in to_h26]  # type: ignore[union-attr]
    assert codes == ["01", "03"] and dead == []
    assert forwarded == 2


async def test_the_same_bytes_on_another_partition_are_not_delivered_twice(
    exchange: Settings, bootstrap: str, pki_dir: Path
) -> None:
    doc = seed_document(7602, [BA_DINH])
    envelope = seal(doc, credentials=creds(pki_dir, H26), at=utcnow())
    raw = encode_envelope(envelope)
    changed = seal(
        dataclasses.replace(doc, subject="Kế hoạch khác"),
        credentials=creds(pki_dir, H26),
        at=utcnow(),
    )
    submissions = exchange.topic("submissions")
    async with running_router(exchange, bootstrap):
        await publish(bootstrap, submissions, [envelope])
        await read_topic(bootstrap, exchange.inbox(BA_DINH), expect=1)
        # A copy of the exact bytes, and the same document id with new content, each on a
        # partition that is not the document's, with a key that is not its id.
        await produce_to(bootstrap, submissions, raw, b"replay", other_partition(doc.document_id))
        await produce_to(
            bootstrap,
            submissions,
            encode_envelope(changed),
            b"other",
            other_partition(doc.document_id),
        )
        dead = await read_topic(bootstrap, exchange.topic("deadletter"), expect=2)
        inbox = await read_topic(bootstrap, exchange.inbox(BA_DINH), expect=1)
        to_h26 = await read_topic(bootstrap, exchange.inbox(H26), expect=1)
    assert len(inbox) == 1  # delivered once
    assert sorted(header(r, "lt-reason") or "" for r in dead) == [
        "DUPLICATE_DOCUMENT",
        "RESUBMITTED",
    ]
    assert all(header(r, "lt-forwarded-from") is None for r in dead)
    # The copy is no fault of the sender's: only the new content under a used id is answered.
    notice = decode_payload(decode_envelope(to_h26[0].value))
    assert isinstance(notice, StatusNotice)
    assert (notice.description or "").startswith("DUPLICATE_DOCUMENT")


@pytest.mark.parametrize("key", [b"", b"not-the-document-id"])
async def test_any_partition_and_any_key_deliver_once_keyed_by_the_document(
    exchange: Settings, bootstrap: str, pki_dir: Path, key: bytes
) -> None:
    doc = seed_document(7603 + len(key), [BA_DINH])
    raw = encode_envelope(seal(doc, credentials=creds(pki_dir, H26), at=utcnow()))
    submissions = exchange.topic("submissions")
    async with running_router(exchange, bootstrap) as router:
        await produce_to(bootstrap, submissions, raw, key, other_partition(doc.document_id))
        [delivered] = await read_topic(bootstrap, exchange.inbox(BA_DINH), expect=1)
        moved = router.metrics.registry.get_sample_value("lienthong_router_forwarded_total")
    assert delivered.key == doc.document_id.encode() and moved == 1


async def test_a_record_already_moved_is_routed_where_it_is(
    exchange: Settings, bootstrap: str, pki_dir: Path
) -> None:
    """The router moves a record at most once (header lt-forwarded-from), so two routers that
    disagree on the partition count cannot bounce it between them forever."""
    doc = seed_document(7620, [BA_DINH])
    raw = encode_envelope(seal(doc, credentials=creds(pki_dir, H26), at=utcnow()))
    moved_from = [("lt-forwarded-from", b"elsewhere/0/0")]
    async with running_router(exchange, bootstrap) as router:
        await produce_to(
            bootstrap,
            exchange.topic("submissions"),
            raw,
            doc.document_id.encode(),
            other_partition(doc.document_id),
            moved_from,
        )
        delivered = await read_topic(bootstrap, exchange.inbox(BA_DINH), expect=1)
        moved = router.metrics.registry.get_sample_value("lienthong_router_forwarded_total")
    assert len(delivered) == 1 and moved == 0
