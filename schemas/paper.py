"""PaperExchangeRecord: a clerk's registration of a document that travelled on paper."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from schemas.common import (
    MAX_SUBJECT,
    AgencyRef,
    DocumentCode,
    DocumentType,
    SecrecyMarking,
    check_agency_code,
    check_aware,
    check_text,
    require,
)


class PaperDirection(enum.StrEnum):
    INCOMING = "INCOMING"
    OUTGOING = "OUTGOING"


class PaperReason(enum.StrEnum):
    SECRET = "SECRET"
    RECIPIENT_NOT_CONNECTED = "RECIPIENT_NOT_CONNECTED"
    SYSTEM_OUTAGE = "SYSTEM_OUTAGE"
    LEGAL_REQUIREMENT = "LEGAL_REQUIREMENT"
    OTHER = "OTHER"


@dataclass(frozen=True, slots=True)
class PaperExchangeRecord:
    """Counts in the denominator of the paperless share. A secret document may be recorded
    here (it is exactly what must go on paper) but carries no subject."""

    record_id: str
    direction: PaperDirection
    registering_agency: str
    sender: AgencyRef
    recipients: tuple[AgencyRef, ...]
    code: DocumentCode
    document_type: DocumentType
    document_date: date
    registered_by: str
    registered_at: datetime
    subject: str | None = None
    paper_reason: PaperReason | None = None
    secrecy: SecrecyMarking = SecrecyMarking.NONE


def validate_paper(rec: PaperExchangeRecord) -> None:
    check_text(rec.record_id, 100, "record_id")
    check_agency_code(rec.registering_agency, "registering_agency")
    rec.sender.validate("sender")
    require(len(rec.recipients) > 0, "no_recipients", "at least one recipient", "recipients")
    for i, r in enumerate(rec.recipients):
        r.validate(f"recipients[{i}]")
    party = rec.sender.code if rec.direction is PaperDirection.OUTGOING else None
    if party is not None:
        require(
            party == rec.registering_agency,
            "bad_direction",
            "an OUTGOING record is registered by the sender",
            "registering_agency",
        )
    else:
        require(
            rec.registering_agency in {r.code for r in rec.recipients},
            "bad_direction",
            "an INCOMING record is registered by one of the recipients",
            "registering_agency",
        )
    rec.code.validate("code")
    rec.document_type.validate("document_type")
    check_text(rec.registered_by, 200, "registered_by")
    check_aware(rec.registered_at, "registered_at")
    check_text(rec.subject, MAX_SUBJECT, "subject", required=False)
    if rec.secrecy is not SecrecyMarking.NONE:
        require(rec.subject is None, "secret_subject", "no subject for secret documents", "subject")


def paper_to_record(rec: PaperExchangeRecord) -> dict[str, Any]:
    return {
        "record_id": rec.record_id,
        "direction": rec.direction.value,
        "registering_agency": rec.registering_agency,
        "sender": rec.sender.to_record(),
        "recipients": [r.to_record() for r in rec.recipients],
        "code": {"number": rec.code.number, "notation": rec.code.notation},
        "document_type": rec.document_type.to_record(),
        "document_date": rec.document_date,
        "subject": rec.subject,
        "registered_by": rec.registered_by,
        "registered_at": rec.registered_at,
        "paper_reason": None if rec.paper_reason is None else rec.paper_reason.value,
        "secrecy": rec.secrecy.value,
    }


def paper_from_record(rec: dict[str, Any]) -> PaperExchangeRecord:
    reason = rec["paper_reason"]
    return PaperExchangeRecord(
        record_id=rec["record_id"],
        direction=PaperDirection(rec["direction"]),
        registering_agency=rec["registering_agency"],
        sender=AgencyRef.from_record(rec["sender"]),
        recipients=tuple(AgencyRef.from_record(r) for r in rec["recipients"]),
        code=DocumentCode(rec["code"]["number"], rec["code"]["notation"]),
        document_type=DocumentType.from_record(rec["document_type"]),
        document_date=rec["document_date"],
        subject=rec["subject"],
        registered_by=rec["registered_by"],
        registered_at=rec["registered_at"],
        paper_reason=None if reason is None else PaperReason(reason),
        secrecy=SecrecyMarking(rec["secrecy"]),
    )
