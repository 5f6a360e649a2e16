"""Who a payload is from, whom it goes to, and which document it is about: read off the payload."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from schemas.document import OfficialDocument
from schemas.errors import ValidationError
from schemas.paper import PaperExchangeRecord
from schemas.report import PeriodicReport
from schemas.status import StatusNotice

Payload = OfficialDocument | StatusNotice | PeriodicReport | PaperExchangeRecord


@dataclass(frozen=True, slots=True)
class Addressing:
    sender: str
    recipients: tuple[str, ...]
    document_id: str  # the Kafka key: everything about one document shares it


def _unique(codes: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(codes))


def addressing(payload: Payload, recipients: Sequence[str] | None = None) -> Addressing:
    """A status names no recipient of its own: it goes back to the document's sender, which the
    caller passes as `recipients`. Paper records are registrations kept by the platform only."""
    if isinstance(payload, OfficialDocument):
        to = [a.code for a in payload.to] + [p.code for p in payload.to_places if p.code]
        return Addressing(payload.sender.code, _unique(to), payload.document_id)
    if isinstance(payload, PeriodicReport):
        return Addressing(
            payload.reporting_agency.code, (payload.recipient_agency.code,), payload.report_id
        )
    if isinstance(payload, PaperExchangeRecord):
        return Addressing(payload.registering_agency, (), payload.record_id)
    if isinstance(payload, StatusNotice):
        if not recipients:
            raise ValidationError(
                "missing_recipient",
                "a status notice goes to the sender of the document it answers: "
                "pass recipients=[that agency]",
                field="recipients",
            )
        return Addressing(payload.from_agency.code, _unique(recipients), payload.document_id)
    raise TypeError(f"not a payload: {type(payload).__name__}")
