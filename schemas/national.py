"""What a payload keeps of the national axis (edXML): the national id, trace, receipt flags,
values as received, unmapped elements, the original bytes and its signature check."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

# Rules of validate_document / validate_status that the receipt profile takes (flagged and
# recorded) instead of refusing, when the payload carries the matching flag. Nothing else is
# waived: an imported document is otherwise held to the same rules as any other.
RECEIPT_WAIVABLE = frozenset(
    {
        "bad_due_date",  # a due date before promulgation
        "impossible_date_in_id",  # e.g. 2014/02/30 inside a referenced document id
        "unknown_document_type",  # a type name neither Decree 30 nor the legal list knows
    }
)


class SignatureStatus(enum.StrEnum):
    VALID = "VALID"
    INVALID = "INVALID"
    UNSIGNED = "UNSIGNED"


@dataclass(frozen=True, slots=True)
class ResponseForRef:
    """edXML ResponseFor / ReplyFor: an answered document as the national axis names it."""

    organ_id: str | None = None
    code: str | None = None  # "<number>/<notation>"
    promulgation_date: str | None = None  # as received
    document_id: str | None = None

    def to_record(self) -> dict[str, Any]:
        return {
            "organ_id": self.organ_id,
            "code": self.code,
            "promulgation_date": self.promulgation_date,
            "document_id": self.document_id,
        }

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> ResponseForRef:
        return cls(rec["organ_id"], rec["code"], rec["promulgation_date"], rec["document_id"])


@dataclass(frozen=True, slots=True)
class EdxmlElement:
    """One element's text, by path (e.g. ``MessageHeader/To[2]/OrganId``)."""

    path: str
    value: str


@dataclass(frozen=True, slots=True)
class ReceiptFlag:
    """Something the receipt profile took rather than refused, and why."""

    code: str
    detail: str
    field: str | None = None


@dataclass(frozen=True, slots=True)
class NationalTraceHop:
    organ_id: str | None
    timestamp: str | None  # as received


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """The edXML XML-DSig signature as checked on import."""

    status: SignatureStatus
    reason: str | None = None
    signer_subject: str | None = None


@dataclass(frozen=True, slots=True)
class NationalOrigin:
    document_id: str | None = None  # the national DocumentId exactly as received
    trace: tuple[NationalTraceHop, ...] = ()
    flags: tuple[ReceiptFlag, ...] = ()
    as_received: tuple[EdxmlElement, ...] = ()  # normalised values, as received
    extra: tuple[EdxmlElement, ...] = ()  # elements with no field of their own
    original: bytes | None = None  # the edXML bytes, byte for byte
    signature: SignatureCheck | None = None

    def flagged(self, code: str) -> bool:
        return any(f.code == code for f in self.flags)

    def waives(self, reason: str) -> bool:
        """Whether the receipt profile took this rule's failure (flagged on import)."""
        return reason in RECEIPT_WAIVABLE and self.flagged(reason)

    def to_record(self) -> dict[str, Any]:
        sig = self.signature
        return {
            "document_id": self.document_id,
            "trace": [{"organ_id": h.organ_id, "timestamp": h.timestamp} for h in self.trace],
            "flags": [{"code": f.code, "field": f.field, "detail": f.detail} for f in self.flags],
            "as_received": [{"path": e.path, "value": e.value} for e in self.as_received],
            "extra": [{"path": e.path, "value": e.value} for e in self.extra],
            "original": self.original,
            "signature": None
            if sig is None
            else {
                "status": sig.status.value,
                "reason": sig.reason,
                "signer_subject": sig.signer_subject,
            },
        }

    @classmethod
    def from_record(cls, rec: dict[str, Any] | None) -> NationalOrigin | None:
        if rec is None:
            return None
        sig = rec["signature"]
        return cls(
            document_id=rec["document_id"],
            trace=tuple(NationalTraceHop(h["organ_id"], h["timestamp"]) for h in rec["trace"]),
            flags=tuple(ReceiptFlag(f["code"], f["detail"], f["field"]) for f in rec["flags"]),
            as_received=tuple(EdxmlElement(e["path"], e["value"]) for e in rec["as_received"]),
            extra=tuple(EdxmlElement(e["path"], e["value"]) for e in rec["extra"]),
            original=rec["original"],
            signature=None
            if sig is None
            else SignatureCheck(
                SignatureStatus(sig["status"]), sig["reason"], sig["signer_subject"]
            ),
        )
