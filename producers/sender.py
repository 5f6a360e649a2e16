"""DocumentSender: seal payloads with an agency's keys, publish them to submissions idempotently."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Protocol

import structlog

from producers.refusals import (
    SendRefused,
    attachment_bytes,
    check_attachment_size,
    check_secrecy,
    check_sender,
    signing_agency,
)
from schemas import trace
from schemas.addressing import Payload, addressing
from schemas.codec import PAYLOADS, decode_payload, encode_envelope
from schemas.common import check_answerable_id
from schemas.document import OfficialDocument
from schemas.envelope import Envelope
from schemas.errors import SchemaError, ValidationError
from schemas.limits import MAX_ENVELOPE_BYTES, MAX_MESSAGE_BYTES
from schemas.paper import PaperExchangeRecord
from schemas.report import PeriodicReport
from schemas.status import StatusCode, StatusNotice
from signing.errors import SigningError
from signing.seal import Credential
from signing.seal import seal as seal_payload

log = structlog.get_logger()


class KafkaProducerLike(Protocol):
    """The part of aiokafka's AIOKafkaProducer the sender uses (a fake stands in for it in
    unit tests)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send_and_wait(
        self, topic: str, value: bytes, key: bytes, headers: list[tuple[str, bytes]]
    ) -> Any: ...


@dataclass(frozen=True, slots=True)
class Receipt:
    """Kafka has acknowledged (acks=all) the envelope at this position."""

    message_id: str
    document_id: str
    topic: str
    partition: int
    offset: int
    size: int  # bytes of the encoded envelope
    trace_id: str = ""  # the W3C trace the record started (its `traceparent` header)


RECEIPTS_KEPT = 10_000
# Payloads with attachments up to this size are sealed on the event loop, bigger ones in a thread.
INLINE_SEAL_BYTES = 256 * 1024


def utc_now() -> datetime:
    return datetime.now(UTC)


def kafka_headers(envelope: Envelope) -> list[tuple[str, bytes]]:
    """The headers every exchange record carries (docs/exchange.md), UTF-8 values."""
    return [
        ("lt-message-id", envelope.message_id.encode("utf-8")),
        ("lt-payload-type", envelope.payload_type.value.encode("utf-8")),
        ("lt-sender", envelope.sender.encode("utf-8")),
    ]


def _send_span(
    envelope: Envelope,
    topic: str,
    context: trace.TraceContext,
    parent: trace.TraceContext | None,
    started: int,
    meta: Any,
    error: BaseException | None,
) -> trace.Span:
    """The send as a span: the ids its record's traceparent carries, the Kafka position it got
    (or why it failed). Ids and codes only: a collector is another party."""
    attributes: dict[str, trace.AttributeValue] = {
        "messaging.system": "kafka",
        "messaging.operation.type": "send",
        "messaging.destination.name": topic,
        "messaging.message.id": envelope.message_id,
        "lienthong.payload_type": envelope.payload_type.value,
        "lienthong.sender": envelope.sender,
    }
    if meta is not None:
        attributes["messaging.destination.partition.id"] = str(meta.partition)
        attributes["messaging.kafka.offset"] = meta.offset
    return trace.Span(
        "send",
        trace.PRODUCER,
        context,
        parent.span_id if parent is not None else None,
        started,
        time.time_ns(),
        attributes,
        error=type(error).__name__ if error is not None else None,
    )


def document_sender_code(document_id: str) -> str:
    """A document id (or a report id) begins with its sender's code, so an answer knows where
    to go offline."""
    try:
        return str(check_answerable_id(document_id, "document_id")["sender"])
    except ValidationError:
        return document_id.split(",", 1)[0]  # validation of the notice will say what is wrong


class DocumentSender:
    """Async context manager around one idempotent producer and one agency's credentials.

    Every ``send_*`` returns a Receipt once Kafka has the record on all in-sync replicas, or
    raises SendRefused before anything leaves the machine. aiokafka's errors (after its own
    retries) propagate unchanged; ``err.retriable`` tells the caller whether to try again.
    """

    def __init__(
        self,
        bootstrap: str,
        *,
        credentials: Sequence[Credential],
        topic: str,
        clock: Callable[[], datetime] = utc_now,
        max_envelope_bytes: int = MAX_ENVELOPE_BYTES,
        producer: KafkaProducerLike | None = None,
        client_id: str = "lienthong-sender",
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._bootstrap = bootstrap
        self._credentials = tuple(credentials)
        # Known up front so a wrong key is refused before any payload is encoded.
        self.agency = signing_agency(self._credentials) if self._credentials else None
        self.topic = topic
        self._clock = clock
        self._max_envelope_bytes = max_envelope_bytes
        # Receipts of envelopes Kafka acknowledged, by message id: publishing one of them again
        # (a caller retrying after a timeout whose send did go through) returns the first
        # receipt instead of a second copy. A copy that still reaches the exchange (the
        # first send's outcome was unknown) is recognised by the router and not delivered twice.
        self._receipts: OrderedDict[str, Receipt] = OrderedDict()
        self._producer = producer
        self._client_id = client_id
        # TLS / SASL (signing.transport.ClientSecurity.aiokafka_options); none for PLAINTEXT.
        self._client_options = dict(client_options or {})
        self._started = False

    async def __aenter__(self) -> DocumentSender:
        if self._producer is None:
            from aiokafka import AIOKafkaProducer

            self._producer = AIOKafkaProducer(
                bootstrap_servers=self._bootstrap,
                client_id=self._client_id,
                acks="all",
                enable_idempotence=True,
                max_request_size=MAX_MESSAGE_BYTES,
                **self._client_options,
            )
        try:
            await self._producer.start()
        except BaseException:
            await self._producer.stop()
            raise
        self._started = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._producer is not None and self._started:
            self._started = False
            await self._producer.stop()  # flushes what is in flight

    # --- the typed front doors ------------------------------------------------------------

    async def send_document(self, document: OfficialDocument) -> Receipt:
        return await self.send(document)

    async def send_report(self, report: PeriodicReport) -> Receipt:
        return await self.send(report)

    async def register_paper(self, record: PaperExchangeRecord) -> Receipt:
        return await self.send(record)

    async def send_status(
        self, notice: StatusNotice, to: str | Sequence[str] | None = None
    ) -> Receipt:
        """An answer (01..06, 15, 16) goes to the document's sender, read off the document id
        when ``to`` is omitted; a revocation request (13) comes from that sender and goes to
        the document's recipients, which ``to`` must name."""
        wanted = [to] if isinstance(to, str) else list(to or ())
        origin = document_sender_code(notice.document_id)
        if notice.code is StatusCode.REVOCATION_REQUESTED:
            if notice.from_agency.code != origin:
                raise self._refused(
                    notice,
                    SendRefused(
                        "not_document_sender",
                        f"only the document's sender {origin} may request its revocation (13)",
                        "from_agency",
                    ),
                )
            if not wanted:
                raise self._refused(
                    notice,
                    SendRefused(
                        "missing_recipient",
                        "a revocation request (13) goes to the document's recipients: name them",
                        "recipients",
                    ),
                )
        else:
            wanted = wanted or [origin]
            if set(wanted) != {origin}:
                raise self._refused(
                    notice,
                    SendRefused(
                        "wrong_recipient",
                        f"status {notice.code} answers the document's sender {origin}, "
                        f"not {', '.join(wanted)}",
                        "recipients",
                    ),
                )
        return await self.send(notice, recipients=wanted)

    async def send(self, payload: Payload, recipients: Sequence[str] | None = None) -> Receipt:
        """Seal and publish any payload; recipients only for status notices."""
        if attachment_bytes(payload) > INLINE_SEAL_BYTES:
            # Encoding and signing 20 MB takes a while: keep the event loop free meanwhile.
            envelope = await asyncio.to_thread(self.seal, payload, recipients)
        else:
            # A small document seals in well under a millisecond: a thread hand-off would cost
            # more, and the thread and the event loop would fight over the GIL at every
            # syscall either makes (measured: bench/pipeline.py, docs/benchmarks.md).
            envelope = self.seal(payload, recipients)
        return await self._publish(envelope)

    # --- sealing and publishing -----------------------------------------------------------

    def seal(self, payload: Payload, recipients: Sequence[str] | None = None) -> Envelope:
        """Check every refusal rule, then seal with this sender's credentials at clock()."""
        try:
            # Secrecy first: a secret document is never encoded, signed or logged in clear.
            check_secrecy(payload)
            check_attachment_size(attachment_bytes(payload))
            if self.agency is None:
                raise SendRefused("missing_agency_credential", "this sender has no credentials")
            where = addressing(payload, recipients)
            check_sender(where.sender, self.agency)
            return seal_payload(
                payload, credentials=self._credentials, at=self._clock(), recipients=recipients
            )
        except SendRefused as exc:
            raise self._refused(payload, exc) from None
        except ValidationError as exc:
            raise self._refused(payload, _from_validation(exc)) from exc
        except SchemaError as exc:
            raise self._refused(payload, _from_schema(exc)) from exc
        except SigningError as exc:
            raise self._refused(payload, SendRefused("signing_failed", str(exc))) from exc

    async def send_envelope(self, envelope: Envelope) -> Receipt:
        """Publish an already-sealed envelope, after the same refusal rules as ``send``."""
        await asyncio.to_thread(self._check_envelope, envelope)
        return await self._publish(envelope)

    async def _publish(self, envelope: Envelope) -> Receipt:
        try:
            value = encode_envelope(envelope)
        except SchemaError as exc:
            raise _from_schema(exc) from exc
        if len(value) > self._max_envelope_bytes:
            raise SendRefused(
                "too_large",
                f"the envelope is {len(value):,} bytes; envelopes are limited to "
                f"{self._max_envelope_bytes:,} (docs/large-documents.md)",
            )
        earlier = self._receipts.get(envelope.message_id)
        if earlier is not None:
            log.info("sent_before", message_id=earlier.message_id, offset=earlier.offset)
            return earlier
        if self._producer is None or not self._started:
            raise RuntimeError("use DocumentSender as `async with DocumentSender(...) as sender`")
        # A send made while handling a traced record (an answer 01) continues that trace.
        parent = trace.current.get()
        context = parent.child() if parent is not None else trace.TraceContext.start()
        spans = trace.span_sink()
        started = time.time_ns() if spans is not None else 0
        try:
            meta = await self._producer.send_and_wait(
                self.topic,
                value,
                key=envelope.document_id.encode("utf-8"),
                headers=[*kafka_headers(envelope), context.header()],
            )
        except BaseException as exc:
            if spans is not None:
                spans(_send_span(envelope, self.topic, context, parent, started, None, exc))
            raise
        if spans is not None:
            spans(_send_span(envelope, self.topic, context, parent, started, meta, None))
        receipt = Receipt(
            message_id=envelope.message_id,
            document_id=envelope.document_id,
            topic=meta.topic,
            partition=meta.partition,
            offset=meta.offset,
            size=len(value),
            trace_id=context.trace_id,
        )
        self._receipts[receipt.message_id] = receipt
        if len(self._receipts) > RECEIPTS_KEPT:
            self._receipts.popitem(last=False)
        log.info(
            "sent",
            message_id=receipt.message_id,
            document_id=receipt.document_id,
            payload_type=envelope.payload_type.value,
            sender=envelope.sender,
            topic=receipt.topic,
            partition=receipt.partition,
            offset=receipt.offset,
            size=receipt.size,
            trace_id=receipt.trace_id,
        )
        return receipt

    def _check_envelope(self, envelope: Envelope) -> None:
        if not envelope.signatures:
            raise SendRefused("not_signed", "the envelope carries no signature")
        try:
            payload = decode_payload(envelope, validate=False)
        except SchemaError as exc:
            raise _from_schema(exc) from exc
        try:
            check_secrecy(payload)
            check_attachment_size(attachment_bytes(payload))
            PAYLOADS[type(payload)].validate(payload)
            where = addressing(payload, envelope.recipients)
        except SendRefused as exc:
            raise self._refused(payload, exc) from None
        except ValidationError as exc:
            raise self._refused(payload, _from_validation(exc)) from exc
        if (where.sender, where.document_id) != (envelope.sender, envelope.document_id):
            raise self._refused(
                payload,
                SendRefused(
                    "sender_mismatch",
                    f"envelope says {envelope.sender} / {envelope.document_id}, payload says "
                    f"{where.sender} / {where.document_id}",
                ),
            )

    def _refused(self, payload: Payload, refusal: SendRefused) -> SendRefused:
        # Only identifiers and digests: a refused document may be secret.
        digests = [
            a.sha256.hex()
            for a in getattr(payload, "attachments", ())
            if isinstance(a.sha256, bytes)
        ]
        log.warning(
            "send_refused",
            reason=refusal.reason_code,
            field=refusal.field,
            document_id=_payload_id(payload),
            payload_type=type(payload).__name__,
            attachment_sha256=digests or None,
        )
        return refusal


def _payload_id(payload: Payload) -> str:
    if isinstance(payload, PeriodicReport):
        return payload.report_id
    if isinstance(payload, PaperExchangeRecord):
        return payload.record_id
    return payload.document_id


def _from_validation(exc: ValidationError) -> SendRefused:
    return SendRefused(exc.reason, exc.message, exc.field)


def _from_schema(exc: SchemaError) -> SendRefused:
    # encode_payload wraps the domain rule that failed; its reason is the useful one.
    cause = exc.__cause__
    if isinstance(cause, ValidationError):
        return _from_validation(cause)
    return SendRefused(exc.detail or exc.reason, exc.message)
