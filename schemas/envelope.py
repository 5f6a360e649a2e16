"""The Envelope: the typed, signed unit that travels on every lienthong topic."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


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


ENVELOPE_SCHEMA = "envelope"


def envelope_to_record(env: Envelope) -> dict[str, Any]:
    """The Avro record form of an Envelope (field names as in envelope/v1.avsc)."""
    if env.created_at.tzinfo is None:
        raise ValueError("Envelope.created_at must be timezone-aware")
    return {
        "message_id": env.message_id,
        "payload_type": env.payload_type.value,
        "payload_schema": env.payload_schema,
        "payload": env.payload,
        "document_id": env.document_id,
        "sender": env.sender,
        "recipients": list(env.recipients),
        "created_at": env.created_at,
        "trace": [{"agency": h.agency, "at": h.at, "note": h.note} for h in env.trace],
        "signatures": [
            {
                "role": s.role.value,
                "algorithm": s.algorithm,
                "certificate_chain": list(s.certificate_chain),
                "signing_time": s.signing_time,
                "value": s.value,
            }
            for s in env.signatures
        ],
    }


def envelope_from_record(rec: dict[str, Any]) -> Envelope:
    """Inverse of envelope_to_record; timestamps come back as UTC-aware datetimes."""
    return Envelope(
        message_id=rec["message_id"],
        payload_type=PayloadType(rec["payload_type"]),
        payload_schema=rec["payload_schema"],
        payload=rec["payload"],
        document_id=rec["document_id"],
        sender=rec["sender"],
        recipients=tuple(rec["recipients"]),
        created_at=rec["created_at"],
        trace=tuple(TraceHop(h["agency"], h["at"], h["note"]) for h in rec["trace"]),
        signatures=tuple(
            Signature(
                role=SignerRole(s["role"]),
                algorithm=s["algorithm"],
                certificate_chain=tuple(s["certificate_chain"]),
                signing_time=s["signing_time"],
                value=s["value"],
            )
            for s in rec["signatures"]
        ),
    )
