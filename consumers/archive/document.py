"""A submission's document row: its metadata by payload type, and its signatures as verified."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any, TypedDict

from consumers.archive.rows import DocumentRow, clean
from schemas.addressing import Payload
from schemas.agency import AgencyDirectory
from schemas.common import AgencyRef, DocumentCode, DocumentType, SecrecyMarking
from schemas.document import OfficialDocument
from schemas.envelope import Envelope
from schemas.paper import PaperExchangeRecord
from schemas.report import PeriodicReport
from signing.envelope import verify_envelope
from signing.errors import VerificationError
from signing.trust import TrustStore

# The body searched is the content's first MAX_BODY_CHARS characters (a 40-page plan is about
# 100 000): enough for every real document, and a bound on what one row costs to index
# (PostgreSQL refuses a tsvector over 1 MB, which would stop the archiver's batch).
MAX_BODY_CHARS = 100_000


def searchable_body(content: str | None, secrecy: SecrecyMarking | str) -> str | None:
    """The body full-text search may keep: none for a secret document, whatever it says."""
    if str(secrecy) != str(SecrecyMarking.NONE) or not content:
        return None
    return clean(content[:MAX_BODY_CHARS]) or None


def party_names(
    parties: Sequence[tuple[str | None, str | None]], agencies: AgencyDirectory
) -> str | None:
    """The names of a document's sender and recipients, one a line: the agency directory's name
    for each code and the name the document itself writes, each once (ignoring case), in the
    document's order."""
    names: dict[str, str] = {}
    for code, written in parties:
        known = agencies.lookup(code) if code else None
        for name in (known.name if known else None, written):
            text = clean(name.strip()) if name else None
            if text:
                names.setdefault(text.casefold(), text)
    return "\n".join(names.values()) or None


def _refs(refs: Iterable[AgencyRef]) -> list[tuple[str | None, str | None]]:
    return [(r.code, r.name) for r in refs]


def document_row(
    envelope: Envelope, payload: Payload, trust: TrustStore, agencies: AgencyDirectory
) -> DocumentRow | None:
    """The searchable metadata of a submitted document, with its signatures as verified."""
    signatures = signature_facts(envelope, trust, agencies)
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
            body=searchable_body(payload.content, payload.secrecy),
            party_names=party_names(
                [
                    (payload.sender.code, payload.sender.name),
                    *_refs(payload.to),
                    *((p.code, p.name) for p in payload.to_places if p.code),
                ],
                agencies,
            ),
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
            party_names=party_names(
                _refs((payload.reporting_agency, payload.recipient_agency)), agencies
            ),
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
            party_names=party_names(_refs((payload.sender, *payload.recipients)), agencies),
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


def signature_facts(
    envelope: Envelope, trust: TrustStore, agencies: AgencyDirectory
) -> list[dict[str, Any]]:
    """Each signature as verified at the envelope's own time; a failure is recorded, not fatal
    (the archive keeps forgeries too, and says so)."""
    try:
        verified = verify_envelope(envelope, trust=trust, agencies=agencies, at=envelope.created_at)
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
