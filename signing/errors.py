"""The one error the verifier raises, and the reason codes it carries."""

from __future__ import annotations

import enum


class ReasonCode(enum.StrEnum):
    """Why a signature was refused; stable strings, used as dead-letter reasons."""

    BAD_SIGNATURE = "BAD_SIGNATURE"
    UNTRUSTED_CHAIN = "UNTRUSTED_CHAIN"
    CERT_EXPIRED = "CERT_EXPIRED"
    CERT_NOT_YET_VALID = "CERT_NOT_YET_VALID"
    WRONG_KEY_USAGE = "WRONG_KEY_USAGE"
    REVOKED = "REVOKED"
    # The issuer's CRL is past its nextUpdate by more than the grace the verifier allows
    # (signing.crl): whether the certificate is revoked cannot be known, so it is refused.
    REVOCATION_UNKNOWN = "REVOCATION_UNKNOWN"
    SENDER_MISMATCH = "SENDER_MISMATCH"
    UNKNOWN_AGENCY = "UNKNOWN_AGENCY"
    CLOSED_AGENCY = "CLOSED_AGENCY"
    MISSING_SIGNATURE = "MISSING_SIGNATURE"
    UNSUPPORTED_ALGORITHM = "UNSUPPORTED_ALGORITHM"
    # signing_time in the future (beyond skew) or before the envelope was created: the
    # signature is well-formed but its claimed time cannot be true.
    SIGNING_TIME_INVALID = "SIGNING_TIME_INVALID"
    MALFORMED = "MALFORMED"


class VerificationError(Exception):
    """A signature or envelope failed verification; never retryable."""

    def __init__(self, reason: ReasonCode, detail: str, *, signature_index: int | None = None):
        self.reason = reason
        self.detail = detail
        self.signature_index = signature_index
        where = f" (signature #{signature_index})" if signature_index is not None else ""
        super().__init__(f"{reason.value}{where}: {detail}")


class SigningError(ValueError):
    """The caller asked for something we refuse to sign with (bad key, bad time, bad chain)."""


class PkiError(Exception):
    """A PKI directory operation could not be carried out (missing CA, overwrite, bad serial)."""
