"""The Envelope: the typed, signed unit that travels on every lienthong topic."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


class PayloadType(enum.StrEnum):
    OFFICIAL_DOCUMENT = "OFFICIAL_DOCUMENT"
    STATUS_NOTICE = "STATUS_NOTICE"
    PERIODIC_REPORT = "PERIODIC_REPORT"
    PAPER_EXCHANGE_RECORD = "PAPER_EXCHANGE_RECORD"


class SignerRole(enum.StrEnum):
    PERSON = "PERSON"
    AGENCY = "AGENCY"
    PLATFORM = "PLATFORM"


@dataclass(frozen=True, slots=True)
class TraceHop:
    agency: str
    at: datetime
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Signature:
    role: SignerRole
    algorithm: str
    certificate_chain: tuple[bytes, ...]  # DER, signer first
    signing_time: str  # ISO 8601 with offset, e.g. 2026-11-27T10:15:30+07:00
    value: bytes


@dataclass(frozen=True, slots=True)
class Envelope:
    message_id: str
    payload_type: PayloadType
    payload_schema: str  # "<full name>@<fingerprint hex>"
    payload: bytes
    document_id: str
    sender: str
    recipients: tuple[str, ...]
    created_at: datetime  # timezone-aware
    trace: tuple[TraceHop, ...] = field(default=())
    signatures: tuple[Signature, ...] = field(default=())
