"""What a refusal leaves behind: a dead letter (the original bytes only when they decoded and are
not secret) and, for a proven sender, a status 02 signed by the platform."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import structlog

from consumers.router.routing import Rejected
from schemas.agency import AgencyDirectory
from schemas.common import AgencyRef
from schemas.envelope import Envelope
from schemas.errors import SchemaError, ValidationError
from schemas.status import StatusCode, StatusNotice
from signing.credentials import CredentialSource, as_source
from signing.errors import SigningError
from signing.seal import Credential, seal

log = structlog.get_logger()

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    key: bytes | None
    value: bytes
    headers: Headers


def dead_letter(
    raw: bytes, key: bytes | None, rejected: Rejected, source: str, at: datetime
) -> DeadLetter:
    """Keep the original bytes with the reason, so the message can be investigated or replayed,
    but only when the router could decode them and saw that they are not secret (nor too large
    to keep). Otherwise the digest, the size and the reason: no key either, since a document's
    key is its id, which names its number and notation."""
    headers: Headers = [
        ("lt-reason", rejected.reason.encode()),
        ("lt-detail", rejected.detail.encode()),
        ("lt-source", source.encode()),
        ("lt-sha256", rejected.digest.encode()),
        ("lt-size", str(len(raw)).encode()),
        # When the router refused it, by the router's clock (the record's own timestamp is the
        # broker's append time).
        ("lt-at", at.isoformat().encode()),
        # Whether the sender named below signed it (else it is only what the bytes claim).
        ("lt-sender-verified", b"true" if rejected.sender_verified else b"false"),
    ]
    if rejected.sender:
        headers.append(("lt-sender", rejected.sender.encode()))
    if not rejected.keep_content:
        return DeadLetter(None, b"", headers)
    if rejected.message_id:
        headers.append(("lt-message-id", rejected.message_id.encode()))
    if rejected.payload_type:
        headers.append(("lt-payload-type", rejected.payload_type.encode()))
    return DeadLetter(key, raw, headers)


def rejection_notice(
    rejected: Rejected,
    *,
    platform: AgencyRef,
    credential: Credential | CredentialSource,
    agencies: AgencyDirectory,
    now: datetime,
) -> Envelope | None:
    """A status 02 for the sender, or None when nobody is to be told: the sender is not proven
    (anyone can claim one), the document is secret or the bytes a resent copy (see
    Rejected.notify_sender), or the sender has no open inbox here; or None, logged, when no
    platform certificate is valid at `now` (the source counts it): never sign outside a
    validity."""
    if not rejected.notify_sender or not rejected.sender or not rejected.document_id:
        return None
    if not agencies.is_open(rejected.sender, now) or rejected.sender == platform.code:
        return None
    notice = StatusNotice(
        document_id=rejected.document_id,
        from_agency=platform,
        code=StatusCode.REJECTED,
        timestamp=now,
        description=f"{rejected.reason}: {rejected.detail}",
    )
    signer = as_source(credential).credential_at(now)
    if signer is None:
        log.error(
            "router.notice_unsigned",
            document_id=rejected.document_id,
            reason=rejected.reason,
            detail="no PLATFORM certificate valid now; the dead letter records the refusal",
        )
        return None
    try:
        return seal(notice, credentials=[signer], at=now, recipients=[rejected.sender])
    except (ValidationError, SchemaError, SigningError):
        # e.g. a document id that is not of the standard form: the dead letter still says why.
        return None
