"""The optional OpenTelemetry exporter with the SDK's in-memory exporter: a simulated send ->
route -> deliver (-> 01 answer) -> archive is one trace whose spans carry the very ids of the
traceparent headers, each the child of the one before; abuses (a refused secret document, an
unsampled or forged parent, an application's own current span, a failed send); and, without a
sink, nothing built at all."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip(
    "opentelemetry.sdk",
    reason="opentelemetry-sdk is not installed: `pip install -e '.[otel]'` (the dev extra has it)",
)

from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaTimeoutError
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

import consumers.archive.archiver as archiver_module
import consumers.router.metrics as router_metrics
from consumers.archive.rows import Kind, Parsed, RecordRow
from consumers.inbox.subscriber import Delivery, InboxSubscriber, Refusal, examine
from consumers.router.metrics import route_span
from consumers.router.routing import Rejected, Routed
from infra.observe import otel, tracing
from producers.sender import DocumentSender
from schemas import trace
from schemas.agency import AgencyDirectory
from schemas.codec import decode_envelope, encode_envelope
from schemas.common import AgencyRef
from schemas.document import OfficialDocument
from schemas.envelope import SignerRole
from schemas.status import StatusCode, StatusNotice
from signing.pkidir import PkiDirectory
from signing.profile import CertRole
from signing.seal import load_credential
from tests.support import seed_document

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
H26 = "000.00.00.H26"
BA_DINH = "000.00.31.H26"
SUBMISSIONS = "lienthong.submissions"
INBOX = f"lienthong.inbox.{BA_DINH}"


@dataclass
class Meta:
    topic: str
    partition: int
    offset: int


@dataclass
class FakeProducer:
    """Kafka's place in these unit tests: what was sent, and an optional failure."""

    sent: list[tuple[str, bytes, bytes, list[tuple[str, bytes]]]] = field(default_factory=list)
    fail: BaseException | None = None

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def send_and_wait(
        self, topic: str, value: bytes, key: bytes, headers: list[tuple[str, bytes]]
    ) -> Meta:
        if self.fail is not None:
            raise self.fail
        self.sent.append((topic, value, key, headers))
        return Meta(topic, 0, len(self.sent) - 1)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pki")
    d = PkiDirectory(root)
    d.init(now=NOW - timedelta(days=1))
    for code in (H26, BA_DINH):
        d.issue(agency_code=code, role=CertRole.AGENCY, now=NOW - timedelta(days=1))
    return root


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    """The OTel sink installed for the test (exporting each span as it ends), removed after."""
    memory = InMemorySpanExporter()
    sink = otel.OtelSpans("lienthong-test", memory, batch=False)
    stop = tracing.install(sink, sink.close)
    try:
        yield memory
    finally:
        stop()
    assert trace.span_sink() is None


def decision() -> OfficialDocument:
    return seed_document(4612, [BA_DINH])


def sender(pki: Path, code: str, producer: FakeProducer) -> DocumentSender:
    return DocumentSender(
        "unused:9092",
        credentials=[load_credential(pki, code, SignerRole.AGENCY)],
        topic=SUBMISSIONS,
        clock=lambda: NOW,
        producer=producer,
    )


def traceparent(headers: list[tuple[str, bytes]]) -> trace.TraceContext:
    context = trace.from_headers(headers)
    assert context is not None
    return context


def kafka_record(topic: str, offset: int, value: bytes, headers: list[tuple[str, bytes]]) -> Any:
    return ConsumerRecord(topic, 0, offset, 0, 0, b"k", value, None, 1, len(value), tuple(headers))


def hex_ids(span: ReadableSpan) -> tuple[str, str, str | None]:
    """(trace id, span id, parent span id) in the headers' lower-case hex."""
    ctx = span.context
    assert ctx is not None
    parent = f"{span.parent.span_id:016x}" if span.parent is not None else None
    return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}", parent


def one(spans: list[ReadableSpan], name: str, **attributes: object) -> ReadableSpan:
    found = [
        s
        for s in spans
        if s.name == name and all((s.attributes or {}).get(k) == v for k, v in attributes.items())
    ]
    assert len(found) == 1, [(s.name, dict(s.attributes or {})) for s in spans]
    return found[0]


async def test_send_route_deliver_answer_archive_form_one_trace_of_parents_and_children(
    pki: Path, exported: InMemorySpanExporter
) -> None:
    # send: the SDK writes the submission; its traceparent names the send span.
    submitted = FakeProducer()
    async with sender(pki, H26, submitted) as sdk:
        receipt = await sdk.send_document(decision())
    _, value, _, headers = submitted.sent[0]
    sent = traceparent(headers)
    assert sent.trace_id == receipt.trace_id

    # route: what the router does per submission (consumers.router.service): its own span id,
    # carried by the inbox copy, child of the sender's; the span ends at the commit.
    submission = kafka_record(SUBMISSIONS, 0, value, headers)
    parent = trace.from_headers(submission.headers)
    assert parent is not None
    routed_ctx = parent.child()
    envelope = decode_envelope(value)
    routed = Routed(envelope, (BA_DINH,), (), "digest")
    sink = trace.span_sink()
    assert sink is not None
    sink(route_span(routed, submission, routed_ctx, parent.span_id, 1, 2, "lienthong.router"))
    inbox_headers = trace.replace_header(headers, routed_ctx)

    # deliver: the subscriber hands the verified copy to the agency's handler, which answers 01
    # within the delivery's span.
    item = examine(
        encode_envelope(envelope),
        agency_code=BA_DINH,
        trust=PkiDirectory(pki).trust_store(),
        agencies=AgencyDirectory.default(),
        at=NOW + timedelta(minutes=1),
        topic=INBOX,
        offset=4,
    )
    assert isinstance(item, Delivery)
    item = replace(item, trace=trace.from_headers(inbox_headers))
    subscriber = InboxSubscriber(
        "unused:9092",
        BA_DINH,
        topic=INBOX,
        group_id="lienthong.subscriber",
        trust=PkiDirectory(pki).trust_store(),
        agencies=AgencyDirectory.default(),
        clock=lambda: NOW,
    )
    answered = FakeProducer()
    subscriber._hand_out(item)
    async with sender(pki, BA_DINH, answered) as answering:
        notice = StatusNotice(
            document_id=envelope.document_id,
            from_agency=AgencyRef(BA_DINH, "Ủy ban nhân dân quận Ba Đình"),
            code=StatusCode.ARRIVED,
            timestamp=NOW,
        )
        answer = await answering.send_status(notice, H26)
    subscriber._finish(item, "written")
    answer_ctx = traceparent(answered.sent[0][3])

    # archive: the submission and its inbox copy, each a child of the span that wrote it.
    parsed = [
        Parsed(_row(SUBMISSIONS, 0, Kind.SUBMISSION, envelope.message_id)),
        Parsed(_row(INBOX, 4, Kind.DELIVERY, envelope.message_id)),
    ]
    archiver_module._archive_spans(sink, parsed, [(0, sent, 10), (0, routed_ctx, 10)], 41, 20)

    spans = list(exported.get_finished_spans())
    assert len(spans) == 6
    send = one(
        spans, "send", **{"messaging.destination.name": SUBMISSIONS, "lienthong.sender": H26}
    )
    route = one(spans, "route")
    deliver = one(spans, "deliver")
    answer_send = one(spans, "send", **{"lienthong.sender": BA_DINH})
    archived_submission = one(spans, "archive", **{"lienthong.kind": "submission"})
    archived_copy = one(spans, "archive", **{"lienthong.kind": "delivery"})

    # One trace, the receipt's; every span id is the one its record's header carries.
    assert {hex_ids(s)[0] for s in spans} == {receipt.trace_id}
    assert answer.trace_id == receipt.trace_id
    assert hex_ids(send) == (sent.trace_id, sent.span_id, None)  # the root
    assert hex_ids(route)[1:] == (routed_ctx.span_id, sent.span_id)
    deliver_id = hex_ids(deliver)[1]
    assert hex_ids(deliver)[2] == routed_ctx.span_id
    assert deliver_id not in (sent.span_id, routed_ctx.span_id, answer_ctx.span_id)
    assert hex_ids(answer_send)[1:] == (answer_ctx.span_id, deliver_id)
    assert hex_ids(archived_submission)[2] == sent.span_id
    assert hex_ids(archived_copy)[2] == routed_ctx.span_id
    assert (archived_submission.attributes or {})["lienthong.archive.seq"] == 41
    assert (archived_copy.attributes or {})["lienthong.archive.seq"] == 42

    # Kinds, outcome, position and service, as a tracing backend shows them.
    assert send.kind is otel_trace.SpanKind.PRODUCER
    assert {route.kind, deliver.kind, archived_copy.kind} == {otel_trace.SpanKind.CONSUMER}
    assert (route.attributes or {})["lienthong.outcome"] == "routed"
    assert (route.attributes or {})["lienthong.recipients"] == 1
    assert (deliver.attributes or {})["lienthong.outcome"] == "delivered"
    assert (deliver.attributes or {})["messaging.kafka.offset"] == 4
    assert (send.attributes or {})["messaging.kafka.offset"] == 0
    assert deliver.status.is_ok and route.status.is_ok
    assert send.resource.attributes["service.name"] == "lienthong-test"
    for span in spans:
        assert span.start_time is not None and span.end_time is not None
        assert span.start_time <= span.end_time
    # The handler's trace context is put back once the item is handled.
    assert trace.current.get() is None


def _row(topic: str, offset: int, kind: Kind, message_id: str) -> RecordRow:
    return RecordRow(
        topic, 0, offset, kind, message_id, "doc", "OfficialDocument", H26, b"raw", b"\0" * 32, None
    )


def test_a_refused_secret_document_is_an_error_span_without_its_ids(
    exported: InMemorySpanExporter,
) -> None:
    sent = trace.TraceContext.start()
    record = kafka_record(SUBMISSIONS, 9, b"x", [sent.header()])
    refused = Rejected(
        "SECRET_NOT_ALLOWED",
        "detail that names the document",
        "ab" * 32,
        secret=True,
        message_id="m-1",
        document_id="123/QĐ-UBND",
        sender=H26,
        keep_content=False,
    )
    sink = trace.span_sink()
    assert sink is not None
    sink(route_span(refused, record, sent.child(), sent.span_id, 1, 2, "g"))
    (span,) = exported.get_finished_spans()
    assert span.status.status_code is otel_trace.StatusCode.ERROR
    assert span.status.description == "SECRET_NOT_ALLOWED"
    attributes = dict(span.attributes or {})
    assert attributes["lienthong.outcome"] == "rejected"
    assert "messaging.message.id" not in attributes
    flat = repr(attributes)
    assert "123/QĐ-UBND" not in flat and "names the document" not in flat


def test_an_unsampled_parent_is_not_exported_and_its_child_keeps_the_flag(
    exported: InMemorySpanExporter,
) -> None:
    # A foreign client's traceparent with the sampled flag off: the W3C flag is obeyed.
    parent = trace.parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
    assert parent is not None and not parent.sampled
    child = parent.child()
    assert not child.sampled
    sink = trace.span_sink()
    assert sink is not None
    sink(trace.Span("route", trace.CONSUMER, child, parent.span_id, 1, 2))
    assert exported.get_finished_spans() == ()


async def test_a_root_send_is_not_attached_to_the_applications_current_span(
    pki: Path, exported: InMemorySpanExporter
) -> None:
    # An agency system with OpenTelemetry of its own, a span open while it calls the SDK.
    app = TracerProvider().get_tracer("agency-system")
    producer = FakeProducer()
    with app.start_as_current_span("agency.request"):
        async with sender(pki, H26, producer) as sdk:
            receipt = await sdk.send_document(decision())
    (span,) = exported.get_finished_spans()
    assert hex_ids(span) == (receipt.trace_id, traceparent(producer.sent[0][3]).span_id, None)


async def test_a_failed_send_is_an_error_span_and_still_raises(
    pki: Path, exported: InMemorySpanExporter
) -> None:
    producer = FakeProducer(fail=KafkaTimeoutError())
    async with sender(pki, H26, producer) as sdk:
        with pytest.raises(KafkaTimeoutError):
            await sdk.send_document(decision())
    (span,) = exported.get_finished_spans()
    assert span.name == "send"
    assert span.status.status_code is otel_trace.StatusCode.ERROR
    assert span.status.description == "KafkaTimeoutError"
    assert "messaging.kafka.offset" not in (span.attributes or {})


async def test_a_handler_that_fails_ends_its_deliver_span_in_error(
    pki: Path, exported: InMemorySpanExporter
) -> None:
    routed = trace.TraceContext.start()
    item = _refusal(routed)
    subscriber = _subscriber(pki)
    subscriber._hand_out(item)
    inside = trace.current.get()
    assert inside is not None and inside.trace_id == routed.trace_id
    assert inside.span_id != routed.span_id  # the deliver span's, for what the handler sends
    subscriber._abandon(item)
    (span,) = exported.get_finished_spans()
    assert hex_ids(span)[1:] == (inside.span_id, routed.span_id)
    assert span.status.description == "handler_failed"
    assert trace.current.get() is None


async def test_without_a_sink_nothing_is_built(pki: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The disabled case: no Span is ever constructed, and the handler sees the record's own
    trace as before (the 01 then continues it from the router's span)."""
    assert trace.span_sink() is None

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("a span was built without a sink")

    monkeypatch.setattr(trace, "Span", forbidden)
    monkeypatch.setattr(router_metrics, "Span", forbidden)
    monkeypatch.setattr(archiver_module, "Span", forbidden)

    producer = FakeProducer()
    async with sender(pki, H26, producer) as sdk:
        receipt = await sdk.send_document(decision())
    assert traceparent(producer.sent[0][3]).trace_id == receipt.trace_id
    routed = trace.TraceContext.start()
    item = _refusal(routed)
    subscriber = _subscriber(pki)
    subscriber._hand_out(item)
    assert trace.current.get() is routed
    subscriber._finish(item, None)
    assert trace.current.get() is None


def _refusal(context: trace.TraceContext) -> Refusal:
    return Refusal("SIGNATURE_INVALID", "bad", b"x", 0, 3, topic=INBOX, trace=context)


def _subscriber(pki: Path) -> InboxSubscriber:
    return InboxSubscriber(
        "unused:9092",
        BA_DINH,
        topic=INBOX,
        group_id="g",
        trust=PkiDirectory(pki).trust_store(),
        agencies=AgencyDirectory.default(),
        clock=lambda: NOW,
    )
