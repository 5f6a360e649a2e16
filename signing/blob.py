"""Detached signatures over arbitrary bytes (e.g. archive Merkle tree heads)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from signing.algorithms import PrivateKey, algorithm_for_key, sign_raw
from signing.core import PARSE_ERRORS, VerifiedSignature, check_signature, signer_cert
from signing.errors import ReasonCode, SigningError, VerificationError
from signing.profile import CertRole
from signing.tbs import blob_tbs, format_signing_time
from signing.trust import TrustStore

DEFAULT_PURPOSE = "lienthong.blob"


@dataclass(frozen=True, slots=True)
class DetachedSignature:
    """A signature carried apart from the data it covers."""

    purpose: str  # what the bytes are, e.g. "lienthong.archive.tree-head"; signed
    algorithm: str
    certificate_chain: tuple[bytes, ...]  # DER, signer first
    signing_time: str  # ISO 8601, +07:00
    value: bytes


def sign_blob(
    data: bytes,
    *,
    key: PrivateKey,
    chain: Sequence[bytes],
    at: datetime,
    role: CertRole = CertRole.ARCHIVE,
    purpose: str = DEFAULT_PURPOSE,
    rsa_pss: bool = False,
) -> DetachedSignature:
    """Sign bytes for a purpose; the purpose is signed so the signature cannot be reused."""
    cert = signer_cert(key, chain, role)
    algorithm = algorithm_for_key(key, rsa_pss=rsa_pss)
    try:
        signing_time = format_signing_time(at)
    except ValueError as exc:
        raise SigningError(str(exc)) from exc
    tbs = blob_tbs(
        data,
        purpose=purpose,
        algorithm=algorithm,
        signing_time=signing_time,
        signer_certificate=cert.der,
    )
    return DetachedSignature(
        purpose, algorithm, tuple(chain), signing_time, sign_raw(key, algorithm, tbs)
    )


def verify_blob(
    data: bytes,
    signature: DetachedSignature,
    *,
    trust: TrustStore,
    at: datetime,
    role: CertRole = CertRole.ARCHIVE,
    purpose: str = DEFAULT_PURPOSE,
) -> VerifiedSignature:
    """Verify a detached signature for the expected role and purpose, or raise VerificationError."""
    if signature.purpose != purpose:
        raise VerificationError(
            ReasonCode.BAD_SIGNATURE, f"signed for {signature.purpose!r}, expected {purpose!r}"
        )
    if not isinstance(data, bytes):
        raise VerificationError(ReasonCode.MALFORMED, "data is not bytes")

    def tbs(signer_der: bytes) -> bytes:
        return blob_tbs(
            data,
            purpose=purpose,
            algorithm=str(signature.algorithm),
            signing_time=str(signature.signing_time),
            signer_certificate=signer_der,
        )

    try:
        return check_signature(
            role=role,
            algorithm=signature.algorithm,
            chain=signature.certificate_chain,
            signing_time=signature.signing_time,
            value=signature.value,
            tbs=tbs,
            trust=trust,
            at=at,
        )
    except PARSE_ERRORS as exc:
        raise VerificationError(ReasonCode.MALFORMED, str(exc)) from exc
