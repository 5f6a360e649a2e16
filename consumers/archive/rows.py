"""What the archive keeps of one Kafka record: the typed rows a parse yields, before any SQL."""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from schemas.addressing import Payload
from schemas.common import SecrecyMarking
from schemas.paper import PaperExchangeRecord

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
    # What full-text search reads besides the heading (0008, docs/search.md): the body, never
    # a secret document's, and the names of the sender and recipients.
    body: str | None = None
    party_names: str | None = None


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


def clean(text: object) -> str | None:
    """PostgreSQL text cannot hold NUL; an Avro string can. Raw bytes keep the original."""
    return None if text is None else str(text).replace("\x00", "")


def dumps(value: object) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)
