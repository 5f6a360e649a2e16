"""What a sender refuses before anything leaves the machine: one exception, stable reason codes."""

from __future__ import annotations

from collections.abc import Sequence

from schemas.addressing import Payload
from schemas.common import SecrecyMarking
from schemas.document import OfficialDocument
from schemas.envelope import SignerRole
from schemas.report import PeriodicReport
from signing.certcheck import parse_chain
from signing.errors import VerificationError
from signing.profile import agency_code_of
from signing.seal import Credential

MIB = 1024 * 1024
# Attachments travel inline (docs/large-documents.md): 20 MB must go through end to end, and
# 25 MiB leaves room under the 26 MiB envelope limit (schemas.limits.MAX_ENVELOPE_BYTES) for
# Avro framing, the header fields and the certificate chains of two signatures.
MAX_ATTACHMENT_BYTES = 25 * MIB

REFUSAL_REASONS = frozenset(
    {
        "secret_document",  # Law on State Secrets: never on the ordinary platform
        "too_large",  # attachments over MAX_ATTACHMENT_BYTES, or the envelope over the limit
        "sender_mismatch",  # the payload's sender is not the agency whose key signs
        "missing_agency_credential",  # Decree 30: the agency signs every document
        "not_signed",  # send_envelope got an envelope without signatures
        "signing_failed",  # the key does not match its certificate or role
        "not_document_sender",  # a revocation request (13) from someone else than the sender
        "wrong_recipient",  # an answer addressed to someone else than the document's sender
        # ... plus every schemas ValidationError reason (missing_field, bad_agency_code, ...)
        # and SchemaError reason (invalid_record, ...), passed through as they are.
    }
)


class SendRefused(Exception):
    """The SDK would not send this: invalid, secret, too large, or signed by the wrong agency.

    Never retryable: the same input is refused the same way. ``field`` names the payload field
    when a validation rule broke.
    """

    def __init__(self, reason_code: str, message: str, field: str | None = None) -> None:
        where = f" [{field}]" if field else ""
        super().__init__(f"{reason_code}{where}: {message}")
        self.reason_code = reason_code
        self.message = message
        self.field = field


def secrecy_of(payload: Payload) -> SecrecyMarking:
    """Documents and reports carry a marking; a paper record of a secret document is allowed
    (it is exactly what must go on paper) and statuses carry no content."""
    if isinstance(payload, OfficialDocument | PeriodicReport):
        return payload.secrecy
    return SecrecyMarking.NONE


def attachment_bytes(payload: Payload) -> int:
    if isinstance(payload, OfficialDocument | PeriodicReport):
        return sum(a.size for a in payload.attachments)
    return 0


def check_secrecy(payload: Payload) -> None:
    marking = secrecy_of(payload)
    if marking is not SecrecyMarking.NONE:
        raise SendRefused(
            "secret_document",
            f"documents marked {marking.value} must not use the exchange platform; "
            "send them on paper and register them with `lienthong paper register`",
            "secrecy",
        )


def check_attachment_size(total: int, limit: int = MAX_ATTACHMENT_BYTES) -> None:
    if total > limit:
        raise SendRefused(
            "too_large",
            f"attachments total {total:,} bytes, over the {limit:,}-byte limit "
            "(docs/large-documents.md)",
            "attachments",
        )


def credential_agency(credential: Credential) -> str:
    """The agency code in the credential's certificate (organizationIdentifier)."""
    try:
        leaf = parse_chain(credential.chain)[0]
    except VerificationError as exc:
        raise SendRefused("signing_failed", f"{credential.role} certificate: {exc}") from exc
    code = agency_code_of(leaf)
    if code is None:
        raise SendRefused("signing_failed", f"{credential.role} certificate names no agency code")
    return code


def signing_agency(credentials: Sequence[Credential]) -> str:
    """The one agency every credential belongs to; an AGENCY (or PLATFORM) key must be there."""
    if not any(c.role in (SignerRole.AGENCY, SignerRole.PLATFORM) for c in credentials):
        raise SendRefused(
            "missing_agency_credential",
            "Decree 30: an electronic document is signed by the agency; pass its AGENCY credential",
        )
    codes = {credential_agency(c) for c in credentials}
    if len(codes) > 1:
        raise SendRefused(
            "sender_mismatch", f"credentials of several agencies: {', '.join(sorted(codes))}"
        )
    return codes.pop()


def check_sender(payload_sender: str, agency: str) -> None:
    if payload_sender != agency:
        raise SendRefused(
            "sender_mismatch",
            f"the payload is from {payload_sender} but the keys are {agency}'s",
            "sender",
        )
