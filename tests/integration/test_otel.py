"""The OpenTelemetry exporter on the real broker and database (spans kept in memory): one trace
from the SDK's send through the router, the subscriber, its 01 answer and the archive, each span
the child of the one before and carrying the ids of the real headers; and the archive's
trace_id column, which is filled with or without the exporter and never with a forged value."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord

pytest.importorskip(
    "opentelemetry.sdk",
    reason="opentelemetry-sdk is not installed: `pip install -e '.[otel]'` (the dev extra has it)",
)

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from consumers.inbox import Delivery, Refusal
from infra.observe import otel, tracing
from infra.settings import Settings
from producers.sender import DocumentSender
from schemas import trace
from schemas.common import AgencyRef
from schemas.status import StatusCode, StatusNotice
from schemas.trace import TraceContext, parse_traceparent
from tests.conftest import BA_DINH, H26
from tests.integration.test_archive import (  # noqa: F401 - fixtures
    archive_db,
    archive_pki,
    exchange,
    running_archiver,
    wait_for_records,
)
from tests.integration.test_observability import eventually, free_port, served_router
from tests.integration.test_router import creds
from tests.integration.test_subscribe import subscriber as inbox_subscriber
from tests.support import header, kafka_options, read_topic, seed_document, utcnow


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    sink = otel.OtelSpans("lienthong-it", memory, batch=False)
    stop = tracing.install(sink, sink.close)
    try:
        yield memory
    finally:
        stop()


def ids(span: ReadableSpan) -> tuple[str, str, str | None]:
    assert span.context is not None
    parent = f"{span.parent.span_id:016x}" if span.parent is not None else None
    return f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}", parent


def traceparent(record: ConsumerRecord) -> TraceContext:
    context = parse_traceparent(header(record, "traceparent"))
    assert context is not None
    return context


Where = tuple[str, int, int]


def where(record: ConsumerRecord) -> Where:
    return record.topic, record.partition, record.offset


async def stored_trace_ids(url: str) -> dict[Where, str | None]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch('SELECT topic, partition, "offset", trace_id FROM archive_record')
    finally:
        await conn.close()
    return {(r["topic"], r["partition"], r["offset"]): r["trace_id"] for r in rows}


async def test_one_trace_spans_the_sdk_send_the_router_the_subscriber_and_the_archive(
    exchange: Settings,  # noqa: F811
    bootstrap: str,
    archive_pki: Path,  # noqa: F811
    archive_db: str,  # noqa: F811
    exported: InMemorySpanExporter,
) -> None:
    submissions = exchange.topic("submissions")
    doc = seed_document(9301, [BA_DINH])
    async with (
        served_router(exchange, bootstrap, free_port()),
        running_archiver(exchange, bootstrap, archive_db),
    ):
        async with DocumentSender(
            bootstrap,
            credentials=creds(archive_pki, H26),
            topic=submissions,
            client_options=kafka_options(),
        ) as sdk:
            receipt = await sdk.send_document(doc)

        # Ba Đình's system: it receives the document and answers 01 from its handler.
        async with DocumentSender(
            bootstrap,
            credentials=creds(archive_pki, BA_DINH),
            topic=submissions,
            client_options=kafka_options(),
        ) as answering:

            async def on_delivery(delivery: Delivery) -> str:
                notice = StatusNotice(
                    document_id=delivery.envelope.document_id,
                    from_agency=AgencyRef(BA_DINH, "Ủy ban nhân dân quận Ba Đình"),
                    code=StatusCode.ARRIVED,
                    timestamp=utcnow(),
                )
                await answering.send_status(notice)
                return "answered"

            async def on_refusal(refusal: Refusal) -> str:
                raise AssertionError(refusal)

            group = exchange.topic(f"subscriber.{BA_DINH}")
            subscriber = inbox_subscriber(exchange, bootstrap, group, idle=None)
            handled = subscriber.run(on_delivery, on_refusal, max_items=1)
            assert await asyncio.wait_for(handled, 60) == 1

        # The document and the 01, each submitted and delivered.
        assert await wait_for_records(archive_db, 4) == 4
        await eventually(
            lambda: sum(s.name == "archive" for s in exported.get_finished_spans()) == 4
        )
        stored = await stored_trace_ids(archive_db)

    sent_doc, sent_answer = await read_topic(bootstrap, submissions, expect=2, settle_s=0)
    (ba_dinh_copy,) = await read_topic(bootstrap, exchange.inbox(BA_DINH), expect=1, settle_s=0)
    (h26_copy,) = await read_topic(bootstrap, exchange.inbox(H26), expect=1, settle_s=0)
    doc_ctx, answer_ctx = traceparent(sent_doc), traceparent(sent_answer)
    routed_doc, routed_answer = traceparent(ba_dinh_copy), traceparent(h26_copy)

    spans = list(exported.get_finished_spans())
    by_id = {ids(s)[1]: s for s in spans}
    assert len(by_id) == len(spans) == 9  # 2 sends, 2 routes, 1 deliver, 4 archives

    # One trace: the receipt's, through every service.
    assert {ids(s)[0] for s in spans} == {receipt.trace_id}
    assert {answer_ctx.trace_id, routed_doc.trace_id, routed_answer.trace_id} == {receipt.trace_id}

    # send -> route -> deliver -> send (01) -> route (01): each span id is the one the record it
    # wrote carries, each parent the span of the record it handled.
    send = by_id[doc_ctx.span_id]
    assert (send.name, ids(send)[2]) == ("send", None)
    route = by_id[routed_doc.span_id]
    assert (route.name, ids(route)[2]) == ("route", doc_ctx.span_id)
    (deliver,) = [s for s in spans if s.name == "deliver"]
    assert ids(deliver)[2] == routed_doc.span_id
    answer = by_id[answer_ctx.span_id]
    assert (answer.name, ids(answer)[2]) == ("send", ids(deliver)[1])
    route_answer = by_id[routed_answer.span_id]
    assert (route_answer.name, ids(route_answer)[2]) == ("route", answer_ctx.span_id)
    # The archive: one span per record, child of the span that wrote it.
    archived = sorted(ids(s)[2] or "" for s in spans if s.name == "archive")
    assert archived == sorted(
        [doc_ctx.span_id, routed_doc.span_id, answer_ctx.span_id, routed_answer.span_id]
    )
    attributes = dict(route.attributes or {})
    assert attributes["lienthong.outcome"] == "routed"
    assert attributes["messaging.destination.name"] == submissions
    assert attributes["messaging.kafka.offset"] == sent_doc.offset
    assert dict(deliver.attributes or {})["messaging.message.id"] == receipt.message_id
    assert dict(deliver.attributes or {})["lienthong.outcome"] == "delivered"

    # The archive keeps each record's trace id beside its row.
    assert sorted(stored) == sorted(
        where(r) for r in (sent_doc, sent_answer, ba_dinh_copy, h26_copy)
    )
    assert set(stored.values()) == {receipt.trace_id}


async def test_without_the_exporter_the_archive_still_keeps_trace_ids_and_never_a_forged_one(
    exchange: Settings,  # noqa: F811
    bootstrap: str,
    archive_pki: Path,  # noqa: F811
    archive_db: str,  # noqa: F811
) -> None:
    assert trace.span_sink() is None  # the disabled case: no sink, the flow as ever
    submissions = exchange.topic("submissions")
    doc = seed_document(9302, [BA_DINH])
    async with (
        served_router(exchange, bootstrap, free_port()),
        running_archiver(exchange, bootstrap, archive_db),
    ):
        async with DocumentSender(
            bootstrap,
            credentials=creds(archive_pki, H26),
            topic=submissions,
            client_options=kafka_options(),
        ) as sdk:
            receipt = await sdk.send_document(doc)
        # Another client's records: a malformed traceparent, and a well-formed one it chose.
        chosen = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **kafka_options())
        await producer.start()
        try:
            for key, value in ((b"forged", "00-FORGED-00f067aa0ba902b7-01"), (b"chosen", chosen)):
                await producer.send_and_wait(
                    submissions,
                    b"not an envelope",
                    key=key,
                    headers=[("traceparent", value.encode())],
                )
        finally:
            await producer.stop()
        # document, its delivery; two garbage submissions and their two dead letters
        assert await wait_for_records(archive_db, 6) == 6
        stored = await stored_trace_ids(archive_db)

    submitted = await read_topic(bootstrap, submissions, expect=3, settle_s=0)
    letters = await read_topic(bootstrap, exchange.topic("deadletter"), expect=2, settle_s=0)
    by_key = {r.key: r for r in submitted}
    assert stored[where(by_key[doc.document_id.encode()])] == receipt.trace_id
    (copy,) = await read_topic(bootstrap, exchange.inbox(BA_DINH), expect=1, settle_s=0)
    assert stored[where(copy)] == receipt.trace_id
    # The malformed header is not kept; the chosen one is, as the label it is (not evidence).
    assert stored[where(by_key[b"forged"])] is None
    assert stored[where(by_key[b"chosen"])] == chosen.split("-")[1]
    # The router gave the malformed one's dead letter a fresh trace, and kept the chosen one's.
    letter_ids = {stored[where(r)] for r in letters}
    assert chosen.split("-")[1] in letter_ids
    assert None not in letter_ids and len(letter_ids) == 2

    # Nothing but 32 hex digits goes into the column, whoever writes it.
    conn = await asyncpg.connect(archive_db)
    try:
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                'INSERT INTO archive_record (seq, topic, partition, "offset", kind, raw_sha256, '
                "leaf_data, leaf_hash, archived_at, trace_id) "
                "VALUES (1000, 't', 0, 0, 'submission', $1, 'x', $1, now(), $2)",
                b"\0" * 32,
                "00-FORGED",
            )
    finally:
        await conn.close()
