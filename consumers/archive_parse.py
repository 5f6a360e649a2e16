"""Pure record -> rows: what the archive keeps of one Kafka record, decided without I/O.

Nothing here raises on bad input: a record that does not parse is still archived (raw bytes and
`parse_error`), because the archive is the evidence of what travelled, valid or not.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypedDict

from schemas.addressing import Payload
from schemas.agency import AgencyDirectory
from schemas.codec import decode_payload
from schemas.common import DocumentCode, DocumentType, SecrecyMarking
from schemas.document import OfficialDocument
from schemas.envelope import Envelope, SignerRole, decode_envelope
from schemas.errors import SchemaError
from schemas.paper import PaperExchangeRecord
from schemas.report import PeriodicReport
from schemas.status import StatusNotice
from signing.envelope import verify_envelope
from signing.errors import VerificationError
from signing.trust import TrustStore

SECRET_REASON = "SECRET_DOCUMENT"


class Kind(enum.StrEnum):
    SUBMISSION = "submission"
    DELIVERY = "delivery"  # an inbox record routed from a submission
    NOTICE = "notice"  # an inbox record that is the platform's own status 02
    DEADLETTER = "deadletter"


@dataclass(frozen=True, slots=True)
class ArchiveTopics:
    submissions: str
    deadletter: str
    inbox_prefix: str  # "<prefix>inbox."

    @property
    def pattern(self) -> re.Pattern[str]:
        alternatives = "|".join(
            (
                re.escape(self.submissions),
                re.escape(self.deadletter),
                re.escape(self.inbox_prefix) + r".+",
            )
        )
        return re.compile(f"^(?:{alternatives})$")


@dataclass(frozen=True, slots=True)
class SourceRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp: datetime  # the Kafka record's timestamp, UTC


@dataclass(frozen=True, slots=True)
class RecordRow:
    topic: str
    partition: int
    offset: int
    kind: Kind
    message_id: str | None
    document_id: str | None
    payload_type: str | None
    sender: str | None
    raw: bytes | None  # None only for a secret document
    raw_sha256: bytes
    parse_error: str | None


@dataclass(frozen=True, slots=True)
class DocumentRow:
    document_id: str
    payload_type: str
    sender: str
    recipients: tuple[str, ...]
    copies: tuple[str, ...]
    number: str | None
    notation: str | None
    doc_type: str | None
    doc_type_name: str | None
    subject: str | None
    promulgation_date: date | None
    due_date: date | None
    priority: int | None
    secrecy: str
    signer: dict[str, Any] | None
    signatures: list[dict[str, Any]]
    submitted_at: datetime


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    document_id: str
    recipient: str
    delivered_at: datetime


@dataclass(frozen=True, slots=True)
class StatusRow:
    document_id: str
    from_agency: str
    to_agency: str
    code: str
    description: str | None
    staff: dict[str, Any] | None
    at: datetime


@dataclass(frozen=True, slots=True)
class RejectionRow:
    reason: str
    detail: str | None
    sender: str | None
    message_id: str | None
    document_id: str | None
    secret: bool
    source: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class Parsed:
    record: RecordRow
    document: DocumentRow | None = None
    delivery: DeliveryRow | None = None
    status: StatusRow | None = None
    rejection: RejectionRow | None = None


@dataclass(frozen=True, slots=True)
class ParseContext:
    topics: ArchiveTopics
    trust: TrustStore
    agencies: AgencyDirectory


def kind_of(topic: str, topics: ArchiveTopics) -> Kind:
    if topic == topics.submissions:
        return Kind.SUBMISSION
    if topic == topics.deadletter:
        return Kind.DEADLETTER
    return Kind.DELIVERY


def clean(text: object) -> str | None:
    """PostgreSQL text cannot hold NUL; an Avro string can. Raw bytes keep the original."""
    return None if text is None else str(text).replace("\x00", "")


def header(src: SourceRecord, name: str) -> str | None:
    for key, value in src.headers:
        if key == name:
            return clean(bytes(value).decode("utf-8", errors="replace"))
    return None


def is_secret(payload: Payload) -> bool:
    # A paper record may register a secret document's metadata (the router forwards it too).
    if isinstance(payload, PaperExchangeRecord):
        return False
    return getattr(payload, "secrecy", SecrecyMarking.NONE) != SecrecyMarking.NONE


def parse_record(src: SourceRecord, ctx: ParseContext) -> Parsed:
    raw = src.value or b""
    kind = kind_of(src.topic, ctx.topics)
    if kind is Kind.DEADLETTER:
        return _parse_deadletter(src, raw)
    digest = hashlib.sha256(raw).digest()
    try:
        envelope = decode_envelope(raw)
    except SchemaError as exc:
        return Parsed(_bare(src, kind, raw, digest, f"envelope: {exc.reason}: {exc}"))
    try:
        payload = decode_payload(envelope, validate=False)
    except SchemaError as exc:
        return Parsed(_from_envelope(src, kind, raw, digest, envelope, f"payload: {exc.reason}"))
    if is_secret(payload):
        return Parsed(_secret_row(src, kind, digest, envelope))
    if kind is Kind.SUBMISSION:
        row = _from_envelope(src, kind, raw, digest, envelope, None)
        return Parsed(row, document=_document(envelope, payload, ctx))
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


def _bare(src: SourceRecord, kind: Kind, raw: bytes, digest: bytes, error: str) -> RecordRow:
    return RecordRow(
        src.topic,
        src.partition,
        src.offset,
        kind,
        header(src, "lt-message-id"),
        _key(src),
        header(src, "lt-payload-type"),
        header(src, "lt-sender"),
        raw,
        digest,
        clean(error[:500]),
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


def _key(src: SourceRecord) -> str | None:
    return clean(src.key.decode("utf-8", errors="replace")) if src.key else None


def _refused_at(src: SourceRecord) -> datetime:
    """The router's own time of refusal (header lt-at), else the record's timestamp."""
    stamped = header(src, "lt-at")
    if stamped:
        try:
            at = datetime.fromisoformat(stamped)
        except ValueError:
            return src.timestamp
        if at.tzinfo is not None:
            return at
    return src.timestamp


def _parse_deadletter(src: SourceRecord, raw: bytes) -> Parsed:
    reason = header(src, "lt-reason") or "UNKNOWN"
    rejection = RejectionRow(
        reason=reason,
        detail=header(src, "lt-detail"),
        sender=header(src, "lt-sender"),
        message_id=header(src, "lt-message-id"),
        document_id=_key(src),
        secret=reason == SECRET_REASON,
        source=header(src, "lt-source"),
        at=_refused_at(src),
    )
    if reason == SECRET_REASON or (not raw and header(src, "lt-sha256")):
        digest = _header_digest(src) or hashlib.sha256(raw).digest()
        row = RecordRow(
            src.topic,
            src.partition,
            src.offset,
            Kind.DEADLETTER,
            None,
            None,
            None,
            rejection.sender,
            None,
            digest,
            f"{reason}: content not archived",
        )
        secret = RejectionRow(reason, None, rejection.sender, None, None, True, None, rejection.at)
        return Parsed(row, rejection=secret)
    digest = hashlib.sha256(raw).digest()
    try:
        envelope = decode_envelope(raw)
        payload = decode_payload(envelope, validate=False)
    except SchemaError as exc:
        row = _bare(src, Kind.DEADLETTER, raw, digest, f"{exc.reason}: {exc}")
        return Parsed(row, rejection=rejection)
    if is_secret(payload):
        row = _secret_row(src, Kind.DEADLETTER, digest, envelope)
        secret = RejectionRow(reason, None, rejection.sender, None, None, True, None, rejection.at)
        return Parsed(row, rejection=secret)
    row = _from_envelope(src, Kind.DEADLETTER, raw, digest, envelope, None)
    return Parsed(row, rejection=rejection)


def _header_digest(src: SourceRecord) -> bytes | None:
    text = header(src, "lt-sha256") or ""
    try:
        digest = bytes.fromhex(text)
    except ValueError:
        return None
    return digest if len(digest) == 32 else None


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


def _document(envelope: Envelope, payload: Payload, ctx: ParseContext) -> DocumentRow | None:
    signatures = signature_facts(envelope, ctx)
    base: dict[str, Any] = {
        "document_id": clean(envelope.document_id) or "",
        "payload_type": str(envelope.payload_type),
        "signatures": signatures,
        "submitted_at": envelope.created_at,
        "due_date": None,
        "priority": None,
        "signer": None,
        "copies": (),
    }
    if isinstance(payload, OfficialDocument):
        base.update(
            copies=_codes(p.code for p in payload.to_places if p.code),
            due_date=payload.due_date,
            priority=int(payload.priority),
            signer={
                "competence": clean(payload.signer.competence),
                "position": clean(payload.signer.position),
                "full_name": clean(payload.signer.full_name),
            },
        )
        return DocumentRow(
            **base,
            sender=clean(payload.sender.code) or "",
            recipients=_codes(a.code for a in payload.to),
            **_code_fields(payload.code, payload.document_type),
            subject=clean(payload.subject),
            promulgation_date=payload.promulgation_date,
            secrecy=str(payload.secrecy),
        )
    if isinstance(payload, PeriodicReport):
        return DocumentRow(
            **base,
            sender=clean(payload.reporting_agency.code) or "",
            recipients=(clean(payload.recipient_agency.code) or "",),
            number=None,
            notation=None,
            doc_type=None,
            doc_type_name=clean(f"{payload.regime_code} {payload.kind}"),
            subject=clean(payload.regime_title),
            promulgation_date=payload.period.end,
            secrecy=str(payload.secrecy),
        )
    if isinstance(payload, PaperExchangeRecord):
        return DocumentRow(
            **base,
            sender=clean(payload.sender.code) or "",
            recipients=_codes(a.code for a in payload.recipients),
            **_code_fields(payload.code, payload.document_type),
            subject=clean(payload.subject),
            promulgation_date=payload.document_date,
            secrecy=str(payload.secrecy),
        )
    return None  # a status notice: its timeline comes from the inbox it reaches


class _CodeFields(TypedDict):
    number: str | None
    notation: str | None
    doc_type: str | None
    doc_type_name: str | None


def _code_fields(code: DocumentCode, document_type: DocumentType) -> _CodeFields:
    """Number, notation and Decree 30 type, as documents and paper registrations both carry."""
    return _CodeFields(
        number=clean(code.number),
        notation=clean(code.notation),
        doc_type=clean(document_type.abbreviation or ""),
        doc_type_name=clean(document_type.name),
    )


def _codes(codes: Any) -> tuple[str, ...]:
    return tuple(clean(c) or "" for c in codes)


def signature_facts(envelope: Envelope, ctx: ParseContext) -> list[dict[str, Any]]:
    """Each signature as verified at the envelope's own time; a failure is recorded, not fatal
    (the archive keeps forgeries too, and says so)."""
    try:
        verified = verify_envelope(
            envelope, trust=ctx.trust, agencies=ctx.agencies, at=envelope.created_at
        )
    except VerificationError as exc:
        return [
            {
                "role": str(sig.role),
                "algorithm": clean(sig.algorithm),
                "fingerprint": _fingerprint(sig.certificate_chain),
                "signing_time": clean(sig.signing_time),
                "valid": False,
                "reason": str(exc.reason),
                "detail": clean(str(exc))
                if exc.signature_index in (None, i)
                else "another signature failed",
            }
            for i, sig in enumerate(envelope.signatures)
        ] or [{"valid": False, "reason": str(exc.reason), "detail": clean(str(exc))}]
    return [
        {
            "role": str(v.role),
            "algorithm": v.algorithm,
            "subject": clean(v.subject),
            "fingerprint": v.certificate_sha256,
            "signing_time": v.signing_time.isoformat(),
            "valid": True,
        }
        for v in verified.signatures
    ]


def _fingerprint(chain: Sequence[bytes]) -> str | None:
    return hashlib.sha256(chain[0]).hexdigest() if chain else None


def dumps(value: object) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)
