"""DocumentSender on the real broker: every payload type lands on submissions, signed and keyed."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from infra.context import trust_store
from infra.settings import Settings
from producers.refusals import SendRefused
from producers.sender import DocumentSender, Receipt
from schemas.agency import AgencyDirectory
from schemas.codec import decode_envelope, decode_payload
from schemas.common import AgencyRef, Attachment, SecrecyMarking
from schemas.document import OfficialDocument, document_from_record
from schemas.envelope import Envelope, SignerRole
from schemas.limits import MAX_MESSAGE_BYTES
from schemas.paper import paper_from_record
from schemas.report import report_from_record
from schemas.samples import example_record
from schemas.status import StatusCode, StatusNotice
from signing import verify_envelope
from signing.seal import Credential, load_credential
from tests.support import kafka_options

H26 = "000.00.00.H26"
BA_DINH = "000.00.31.H26"
DONG_DA = "000.00.33.H26"
NOI_VU = "000.00.02.H26"
PERSON = "Nguyễn Văn Sửu"


def _now() -> datetime:
    return datetime.now(UTC)


def _creds(pki: Path, code: str, person: str | None = None) -> list[Credential]:
    creds = [load_credential(pki, code, SignerRole.AGENCY)]
    if person:
        creds.append(load_credential(pki, code, SignerRole.PERSON, person_name=person))
    return creds


def _decision(unique: str) -> OfficialDocument:
    """Decision 4612 with a number of its own, so its key is this test's alone."""
    doc = document_from_record(example_record("official_document/v2/decision-4612-qd-ubnd.json"))
    number = str(int(unique[:6], 16) % 10**9)
    code = replace(doc.code, number=number)
    doc_id = f"{doc.sender.code},{doc.promulgation_date:%Y/%m/%d},{number}/{code.notation}"
    return replace(doc, code=code, document_id=doc_id)


async def read_back(bootstrap: str, receipts: Sequence[Receipt]) -> list[ConsumerRecord]:
    """The records at exactly these positions, read_committed, in receipt order."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        **kafka_options(),
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
        fetch_max_bytes=MAX_MESSAGE_BYTES,
    )
    await consumer.start()
    found: dict[tuple[int, int], ConsumerRecord] = {}
    try:
        for r in receipts:
            tp = TopicPartition(r.topic, r.partition)
            consumer.assign([tp])
            consumer.seek(tp, r.offset)
            deadline = asyncio.get_running_loop().time() + 20
            while (r.partition, r.offset) not in found:
                assert asyncio.get_running_loop().time() < deadline, f"no record at {r}"
                batch = await consumer.getmany(tp, timeout_ms=500)
                for msg in batch.get(tp, []):
                    found[(msg.partition, msg.offset)] = msg
    finally:
        await consumer.stop()
    return [found[(r.partition, r.offset)] for r in receipts]


def check_record(msg: ConsumerRecord, receipt: Receipt, settings: Settings) -> Envelope:
    """Key, headers and signatures as docs/exchange.md says; returns the decoded envelope."""
    envelope = decode_envelope(msg.value)
    assert msg.key == envelope.document_id.encode("utf-8") == receipt.document_id.encode()
    headers = {k: v.decode("utf-8") for k, v in msg.headers}
    assert headers == {
        "lt-message-id": receipt.message_id,
        "lt-payload-type": envelope.payload_type.value,
        "lt-sender": envelope.sender,
    }
    assert envelope.message_id == receipt.message_id
    assert len(msg.value) == receipt.size
    verify_envelope(
        envelope, trust=trust_store(settings), agencies=AgencyDirectory.default(), at=_now()
    )
    return envelope


async def test_every_payload_type_reads_back_signed_keyed_and_in_order(
    exchange_topics: Settings, bootstrap: str, pki_dir: Path, unique: str
) -> None:
    settings = exchange_topics
    topic = settings.topic("submissions")
    doc = _decision(unique)
    report = replace(
        report_from_record(example_record("periodic_report/v1/labour-report-2019-q3.json")),
        report_id=f"{NOI_VU}/BC/{unique}",
        reporting_agency=AgencyRef(NOI_VU, "Sở Nội vụ thành phố Hà Nội"),
    )
    paper = replace(
        paper_from_record(example_record("paper_exchange_record/v1/paper-incoming-vpcp.json")),
        record_id=f"{DONG_DA}/DEN/{unique}",
    )
    async with DocumentSender(
        bootstrap,
        credentials=_creds(pki_dir, H26, PERSON),
        topic=topic,
        clock=_now,
        client_options=kafka_options(),
    ) as h26:
        sent_doc = await h26.send_document(doc)
    async with DocumentSender(
        bootstrap,
        credentials=_creds(pki_dir, BA_DINH),
        topic=topic,
        clock=_now,
        client_options=kafka_options(),
    ) as ba_dinh:
        statuses = [
            await ba_dinh.send_status(
                StatusNotice(doc.document_id, AgencyRef(BA_DINH, "UBND quận Ba Đình"), code, _now())
            )
            for code in (StatusCode.ARRIVED, StatusCode.ACCEPTED, StatusCode.COMPLETED)
        ]
    async with DocumentSender(
        bootstrap,
        credentials=_creds(pki_dir, NOI_VU),
        topic=topic,
        clock=_now,
        client_options=kafka_options(),
    ) as noi_vu:
        sent_report = await noi_vu.send_report(report)
    async with DocumentSender(
        bootstrap,
        credentials=_creds(pki_dir, DONG_DA),
        topic=topic,
        clock=_now,
        client_options=kafka_options(),
    ) as dong_da:
        sent_paper = await dong_da.register_paper(paper)

    receipts = [sent_doc, *statuses, sent_report, sent_paper]
    records = await read_back(bootstrap, receipts)
    envelopes = [check_record(m, r, settings) for m, r in zip(records, receipts, strict=True)]

    assert decode_payload(envelopes[0]) == doc
    assert envelopes[0].recipients == doc.recipient_codes
    assert [s.role for s in envelopes[0].signatures] == [SignerRole.PERSON, SignerRole.AGENCY]
    assert [decode_payload(e).code for e in envelopes[1:4]] == ["01", "03", "06"]  # type: ignore[union-attr]
    assert all(e.recipients == (H26,) for e in envelopes[1:4])
    assert decode_payload(envelopes[4]) == report
    assert envelopes[4].recipients == (H26,)
    assert decode_payload(envelopes[5]) == paper
    assert envelopes[5].recipients == ()
    # One key per document: its statuses share its partition and come after it.
    assert {r.partition for r in receipts[:4]} == {sent_doc.partition}
    assert [r.offset for r in receipts[:4]] == sorted(r.offset for r in receipts[:4])


async def test_a_20_mb_attachment_goes_through_byte_identical(
    exchange_topics: Settings, bootstrap: str, pki_dir: Path, unique: str
) -> None:
    data = os.urandom(20 * 1024 * 1024)
    doc = replace(
        _decision(unique),
        attachments=(Attachment.inline("ho-so-quet.pdf", "application/pdf", data),),
    )
    async with DocumentSender(
        bootstrap,
        credentials=_creds(pki_dir, H26),
        topic=exchange_topics.topic("submissions"),
        clock=_now,
        client_options=kafka_options(),
    ) as sender:
        receipt = await sender.send_document(doc)
    assert receipt.size > len(data)
    (msg,) = await read_back(bootstrap, [receipt])
    envelope = check_record(msg, receipt, exchange_topics)
    got = decode_payload(envelope)
    assert isinstance(got, OfficialDocument)
    (attachment,) = got.attachments
    assert attachment.data == data
    assert attachment.sha256 == hashlib.sha256(data).digest()


async def test_a_secret_document_is_refused_and_nothing_reaches_the_topic(
    exchange_topics: Settings, bootstrap: str, pki_dir: Path, unique: str
) -> None:
    topic = exchange_topics.topic("submissions")
    doc = replace(_decision(unique), secrecy=SecrecyMarking.MAT)
    before = await _end_offsets(bootstrap, topic)
    async with DocumentSender(
        bootstrap,
        credentials=_creds(pki_dir, H26),
        topic=topic,
        clock=_now,
        client_options=kafka_options(),
    ) as sender:
        with pytest.raises(SendRefused) as refused:
            await sender.send_document(doc)
    assert refused.value.reason_code == "secret_document"
    assert await _end_offsets(bootstrap, topic) == before


async def test_a_document_of_another_agency_is_refused(
    exchange_topics: Settings, bootstrap: str, pki_dir: Path, unique: str
) -> None:
    async with DocumentSender(
        bootstrap,
        credentials=_creds(pki_dir, BA_DINH),
        topic=exchange_topics.topic("submissions"),
        clock=_now,
        client_options=kafka_options(),
    ) as sender:
        with pytest.raises(SendRefused) as refused:
            await sender.send_document(_decision(unique))
    assert refused.value.reason_code == "sender_mismatch"


async def _end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, **kafka_options(), isolation_level="read_uncommitted"
    )
    await consumer.start()
    try:
        await consumer.topics()  # fetches metadata for every topic
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return {tp.partition: off for tp, off in ends.items()}
