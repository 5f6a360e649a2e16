"""InboxSubscriber on the real broker: own inbox only, its own verification, commits, stop."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from consumers.inbox.subscriber import WRONG_RECIPIENT, Delivery, InboxSubscriber, Refusal
from infra.context import agency_directory, trust_store
from infra.settings import Settings
from schemas.codec import encode_envelope, encode_payload
from schemas.common import AgencyRef, Attachment
from schemas.document import OfficialDocument, document_from_record
from schemas.envelope import Envelope, SignerRole
from schemas.samples import example_record
from signing.seal import load_credential, seal
from tests.support import kafka_options

H26 = "000.00.00.H26"
BA_DINH = "000.00.31.H26"
HAI_BA_TRUNG = "000.00.32.H26"
NAMES = {BA_DINH: "Ủy ban nhân dân quận Ba Đình", HAI_BA_TRUNG: "Ủy ban nhân dân quận Hai Bà Trưng"}


def now() -> datetime:
    return datetime.now(UTC)


def make_document(
    number: str, to: Sequence[str], attachments: Sequence[Attachment] = ()
) -> OfficialDocument:
    """Decision 4612 renumbered (so each test has its own document id), sent to ``to`` only."""
    base = document_from_record(example_record("official_document/v2/decision-4612-qd-ubnd.json"))
    code = dataclasses.replace(base.code, number=number)
    return dataclasses.replace(
        base,
        code=code,
        document_id=f"{H26},{base.promulgation_date:%Y/%m/%d},{code}",
        to=tuple(AgencyRef(c, NAMES[c]) for c in to),
        to_places=(),
        attachments=tuple(attachments),
    )


def seal_document(pki: Path, doc: OfficialDocument) -> Envelope:
    creds = [
        load_credential(pki, H26, SignerRole.PERSON, person_name="Nguyễn Văn Sửu"),
        load_credential(pki, H26, SignerRole.AGENCY),
    ]
    return seal(doc, credentials=creds, at=now())


async def put(bootstrap: str, topic: str, envelopes: Sequence[Envelope | bytes]) -> None:
    """What the router does: the envelope bytes into an inbox, keyed by document id."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, **kafka_options(), acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        for env in envelopes:
            value = env if isinstance(env, bytes) else encode_envelope(env)
            key = b"x" if isinstance(env, bytes) else env.document_id.encode()
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


def subscriber(
    settings: Settings,
    bootstrap: str,
    group: str,
    *,
    agency: str = BA_DINH,
    stop: asyncio.Event | None = None,
    from_beginning: bool = False,
    idle: float | None = 2.0,
) -> InboxSubscriber:
    return InboxSubscriber(
        bootstrap,
        agency,
        topic=settings.inbox(agency),
        group_id=group,
        trust=trust_store(settings),
        agencies=agency_directory(settings),
        clock=now,
        from_beginning=from_beginning,
        stop=stop,
        idle_timeout=idle,
        client_options=kafka_options(),
    )


async def read_all(sub: InboxSubscriber) -> list[Delivery | Refusal]:
    items: list[Delivery | Refusal] = []
    async with sub:
        async for item in sub:
            items.append(item)
    return items


def message_ids(items: Sequence[Delivery | Refusal]) -> list[str | None]:
    return [i.envelope.message_id if isinstance(i, Delivery) else i.message_id for i in items]


async def test_ba_dinh_reads_only_its_own_inbox(
    exchange_topics: Settings, bootstrap: str, pki_dir: Path, unique: str
) -> None:
    settings = exchange_topics
    mine = seal_document(pki_dir, make_document(f"1{unique[:6]}", [BA_DINH]))
    theirs = seal_document(pki_dir, make_document(f"2{unique[:6]}", [HAI_BA_TRUNG]))
    misrouted = seal_document(pki_dir, make_document(f"3{unique[:6]}", [HAI_BA_TRUNG]))
    await put(bootstrap, settings.inbox(BA_DINH), [mine, misrouted])
    await put(bootstrap, settings.inbox(HAI_BA_TRUNG), [theirs])

    items = await read_all(subscriber(settings, bootstrap, f"test.sub.{unique}"))

    assert {i.topic for i in items} == {settings.inbox(BA_DINH)}
    by_id = {mid: i for mid, i in zip(message_ids(items), items, strict=True)}
    assert theirs.message_id not in by_id
    delivered = by_id[mine.message_id]
    assert isinstance(delivered, Delivery)
    assert delivered.verified.agency_code == H26
    assert delivered.verified.person_name == "Nguyễn Văn Sửu"
    assert delivered.payload == make_document(f"1{unique[:6]}", [BA_DINH])
    assert delivered.raw == encode_envelope(mine)
    # A record the router should never have put here is refused, not acted on.
    refused = by_id[misrouted.message_id]
    assert isinstance(refused, Refusal) and refused.reason_code == WRONG_RECIPIENT


async def test_a_tampered_envelope_is_refused_by_the_subscriber_itself(
    exchange_topics: Settings, bootstrap: str, pki_dir: Path, unique: str
) -> None:
    settings = exchange_topics
    doc = make_document(f"4{unique[:6]}", [BA_DINH])
    envelope = seal_document(pki_dir, doc)
    # Same envelope and signatures, another subject: exactly what a router must not do.
    _, _, forged = encode_payload(dataclasses.replace(doc, subject="Cấp 7.800.000.000 đồng"))
    tampered = dataclasses.replace(envelope, payload=forged)
    await put(bootstrap, settings.inbox(BA_DINH), [tampered, b"\xc3\x01cut"])

    items = await read_all(subscriber(settings, bootstrap, f"test.sub.{unique}"))

    refusal = next(
        i for i in items if isinstance(i, Refusal) and i.message_id == envelope.message_id
    )
    assert refusal.reason_code == "BAD_SIGNATURE"
    assert (refusal.document_id, refusal.sender) == (doc.document_id, H26)
    assert any(isinstance(i, Refusal) and i.reason_code == "truncated" for i in items)


async def test_offsets_are_committed_per_group(
    exchange_topics: Settings, bootstrap: str, pki_dir: Path, unique: str
) -> None:
    settings = exchange_topics
    envelopes = [
        seal_document(pki_dir, make_document(f"5{unique[:5]}{n}", [BA_DINH])) for n in (1, 2)
    ]
    await put(bootstrap, settings.inbox(BA_DINH), envelopes)
    ours = {e.message_id for e in envelopes}
    group = f"test.sub.{unique}"

    handled: list[str] = []

    async def handler(d: Delivery) -> str:
        handled.append(d.envelope.message_id)
        return "noted"

    async def on_refusal(r: Refusal) -> str:
        return "ignored"

    await subscriber(settings, bootstrap, group).run(handler, on_refusal, asyncio.Event())
    assert ours <= set(handled)

    again = await read_all(subscriber(settings, bootstrap, group))
    assert ours.isdisjoint(message_ids(again))

    rewound = await read_all(subscriber(settings, bootstrap, group, from_beginning=True))
    assert ours <= set(message_ids(rewound))
    fresh = await read_all(subscriber(settings, bootstrap, f"{group}.other"))
    assert ours <= set(message_ids(fresh))


async def test_stop_event_ends_the_run_after_the_item_in_hand(
    exchange_topics: Settings, bootstrap: str, pki_dir: Path, unique: str
) -> None:
    settings = exchange_topics
    group = f"test.sub.{unique}"
    # Start the group at the inbox's end so only this test's three documents follow.
    await read_all(subscriber(settings, bootstrap, group, idle=1.0))
    envelopes = [
        seal_document(pki_dir, make_document(f"6{unique[:5]}{n}", [BA_DINH])) for n in (1, 2, 3)
    ]
    await put(bootstrap, settings.inbox(BA_DINH), envelopes)

    stop = asyncio.Event()
    seen: list[str] = []

    async def handler(d: Delivery) -> None:
        seen.append(d.envelope.message_id)
        stop.set()  # as SIGTERM would, in the middle of handling

    async def on_refusal(r: Refusal) -> None:
        stop.set()

    sub = subscriber(settings, bootstrap, group, stop=stop, idle=None)
    handled = await asyncio.wait_for(sub.run(handler, on_refusal), timeout=30)
    assert handled == 1 and seen == [envelopes[0].message_id]

    rest = await read_all(subscriber(settings, bootstrap, group))
    assert message_ids(rest)[:2] == [envelopes[1].message_id, envelopes[2].message_id]


async def test_a_failing_handler_leaves_the_record_uncommitted(
    exchange_topics: Settings, bootstrap: str, pki_dir: Path, unique: str
) -> None:
    settings = exchange_topics
    group = f"test.sub.{unique}"
    await read_all(subscriber(settings, bootstrap, group, idle=1.0))  # start at the end
    envelope = seal_document(pki_dir, make_document(f"7{unique[:6]}", [BA_DINH]))
    await put(bootstrap, settings.inbox(BA_DINH), [envelope])

    async def broken(d: Delivery) -> None:
        raise OSError("disk full")

    async def on_refusal(r: Refusal) -> None:
        return None

    with pytest.raises(OSError, match="disk full"):
        await subscriber(settings, bootstrap, group).run(broken, on_refusal)
    again = await read_all(subscriber(settings, bootstrap, group))
    assert message_ids(again) == [envelope.message_id]
