"""Pure record -> rows: what the archive keeps of one Kafka record, decided without I/O.

Nothing here raises on bad input: a record that does not parse is still archived, because the
archive is the evidence of what travelled, valid or not. Its bytes are kept only when they
decoded and are not secret: bytes that do not decode might be a secret document's, so of them
the archive keeps the digest, the size and why (as the router's dead letter does).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from consumers.archive.deadletter import parse_dead_letter
from consumers.archive.document import document_row, signature_facts
from consumers.archive.rows import (
    SECRET_REASON,
    ArchiveTopics,
    DeliveryRow,
    DocumentRow,
    Kind,
    Parsed,
    RecordRow,
    RejectionRow,
    SourceRecord,
    StatusRow,
    clean,
    dumps,
    header,
    is_secret,
)
from schemas.addressing import Payload
from schemas.agency import AgencyDirectory
from schemas.codec import decode_envelope, decode_payload
from schemas.envelope import Envelope, SignerRole
from schemas.errors import SchemaError
from schemas.status import StatusNotice
from signing.trust import TrustStore

__all__ = [  # the rows are defined in archive_rows; importers of this module still find them
    "SECRET_REASON",
    "ArchiveTopics",
    "DeliveryRow",
    "DocumentRow",
    "Kind",
    "ParseContext",
    "Parsed",
    "PayloadCache",
    "RecordRow",
    "RejectionRow",
    "SourceRecord",
    "StatusRow",
    "clean",
    "dumps",
    "parse_record",
    "signature_facts",
]


class PayloadCache:
    """Decoded payloads by their exact bytes, least recently used first.

    A delivery carries its submission's payload bytes unchanged (the router adds a trace hop to
    the envelope, not to the payload), so the archiver would decode every payload twice, or
    once per recipient and once more. Decoding is a pure function of (payload type, schema,
    bytes), so a hit returns what decoding again would; only successes are kept. Bounded by
    entries and by payload bytes, so large attachments cannot make it grow.
    """

    def __init__(self, max_entries: int = 8192, max_bytes: int = 16 * 1024 * 1024) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.hits = 0
        self._bytes = 0
        self._entries: OrderedDict[tuple[str, str, bytes], Payload] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def decode(self, envelope: Envelope) -> Payload:
        key = (str(envelope.payload_type), envelope.payload_schema, bytes(envelope.payload))
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return found
        payload = decode_payload(envelope, validate=False)
        size = len(key[2])
        if size > self.max_bytes // 16:
            return payload  # one large payload would evict hundreds of small ones
        with self._lock:
            if key not in self._entries:
                self._entries[key] = payload
                self._bytes += size
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                old, _ = self._entries.popitem(last=False)
                self._bytes -= len(old[2])
        return payload


@dataclass(frozen=True, slots=True)
class ParseContext:
    """Built once per archiver process: the TrustStore's chain cache and the payload cache
    only pay off if every record is parsed with the same context."""

    topics: ArchiveTopics
    trust: TrustStore
    agencies: AgencyDirectory
    payloads: PayloadCache = field(default_factory=PayloadCache, compare=False)


def kind_of(topic: str, topics: ArchiveTopics) -> Kind:
    if topic == topics.submissions:
        return Kind.SUBMISSION
    if topic == topics.deadletter:
        return Kind.DEADLETTER
    return Kind.DELIVERY


def parse_record(src: SourceRecord, ctx: ParseContext) -> Parsed:
    raw = src.value or b""
    kind = kind_of(src.topic, ctx.topics)
    if kind is Kind.DEADLETTER:
        return parse_dead_letter(src, raw)
    digest = hashlib.sha256(raw).digest()
    try:
        envelope = decode_envelope(raw)
    except SchemaError as exc:
        return Parsed(_withheld(src, kind, digest, len(raw), None, f"envelope: {exc.reason}"))
    try:
        payload = ctx.payloads.decode(envelope)
    except SchemaError as exc:
        return Parsed(_withheld(src, kind, digest, len(raw), envelope, f"payload: {exc.reason}"))
    if is_secret(payload):
        return Parsed(_secret_row(src, kind, digest, envelope))
    if kind is Kind.SUBMISSION:
        row = _from_envelope(src, kind, raw, digest, envelope, None)
        return Parsed(row, document=document_row(envelope, payload, ctx.trust, ctx.agencies))
    if isinstance(payload, StatusNotice) and SignerRole.PLATFORM in _roles(envelope):
        kind = Kind.NOTICE
    row = _from_envelope(src, kind, raw, digest, envelope, None)
    recipient = src.topic[len(ctx.topics.inbox_prefix) :]
    status = None
    if isinstance(payload, StatusNotice):
        status = StatusRow(
            document_id=clean(payload.document_id) or "",
            from_agency=clean(payload.from_agency.code) or "",
            to_agency=recipient,
            code=str(payload.code),
            description=clean(payload.description),
            staff=_staff(payload),
            at=payload.timestamp,
        )
    delivery = None
    if kind is Kind.DELIVERY:
        # Delivered when the router routed it: its trace hop, stamped by the router's clock.
        routed_at = envelope.trace[-1].at if envelope.trace else src.timestamp
        delivery = DeliveryRow(clean(envelope.document_id) or "", recipient, routed_at)
    return Parsed(row, delivery=delivery, status=status)


def _roles(envelope: Envelope) -> list[str]:
    return [str(s.role) for s in envelope.signatures]


def _withheld(
    src: SourceRecord, kind: Kind, digest: bytes, size: int, envelope: Envelope | None, why: str
) -> RecordRow:
    """Bytes that did not decode whole: they may be a secret document's, so neither they nor
    the key or document id (a number and notation) are kept; the digest proves what they were."""
    return RecordRow(
        src.topic,
        src.partition,
        src.offset,
        kind,
        clean(envelope.message_id) if envelope else None,
        None,
        str(envelope.payload_type) if envelope else None,
        clean(envelope.sender) if envelope else header(src, "lt-sender"),
        None,
        digest,
        clean(f"{why}: content not archived ({size} bytes)"),
    )


def _from_envelope(
    src: SourceRecord,
    kind: Kind,
    raw: bytes,
    digest: bytes,
    envelope: Envelope,
    error: str | None,
) -> RecordRow:
    return RecordRow(
        src.topic,
        src.partition,
        src.offset,
        kind,
        clean(envelope.message_id),
        clean(envelope.document_id),
        str(envelope.payload_type),
        clean(envelope.sender),
        raw,
        digest,
        clean(error[:500]) if error else None,
    )


def _secret_row(src: SourceRecord, kind: Kind, digest: bytes, envelope: Envelope) -> RecordRow:
    """A secret document must not be kept even if it reached a topic: its digest proves what it
    was, its sender who sent it; its document id (number and notation) stays out, as in the
    router's dead letter."""
    return RecordRow(
        src.topic,
        src.partition,
        src.offset,
        kind,
        clean(envelope.message_id),
        None,
        str(envelope.payload_type),
        clean(envelope.sender),
        None,
        digest,
        f"{SECRET_REASON}: content not archived",
    )


def _staff(notice: StatusNotice) -> dict[str, Any] | None:
    s = notice.staff
    if s is None:
        return None
    return {
        "name": clean(s.name),
        "department": clean(s.department),
        "email": clean(s.email),
        "telephone": clean(s.telephone),
    }
