"""The checks every signature gets, envelope or detached: algorithm, value, time, chain, usage."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from signing.algorithms import ALGORITHMS, PrivateKey, as_public_key, verify_raw
from signing.errors import ReasonCode, SigningError, VerificationError
from signing.profile import CertRole, agency_code_of, common_name_of, organization_of, roles_of
from signing.tbs import parse_signing_time
from signing.trust import TrustStore, check_end_entity, parse_chain

# Clocks of agencies' signing stations and of the platform disagree a little; more than this
# and the claimed signing time is not believable.
CLOCK_SKEW = timedelta(minutes=5)
# Parsing garbage can fail in these ways inside cryptography/fastavro; all mean MALFORMED.
PARSE_ERRORS = (
    ValueError,
    TypeError,
    OverflowError,
    UnicodeError,
    UnsupportedAlgorithm,
    x509.InvalidVersion,
    x509.DuplicateExtension,
)


@dataclass(frozen=True, slots=True)
class VerifiedSignature:
    """One signature that passed every check, with the identity its certificate states."""

    role: CertRole
    algorithm: str
    subject: str
    agency_code: str | None
    agency_name: str | None
    person_name: str | None
    certificate_sha256: str  # hex of SHA-256 over the signer certificate's DER
    signing_time: datetime


def _fingerprint(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


def check_signature(
    *,
    role: CertRole,
    algorithm: object,
    chain: Sequence[bytes],
    signing_time: object,
    value: object,
    tbs: Callable[[bytes], bytes],
    trust: TrustStore,
    at: datetime,
    earliest: datetime | None = None,
) -> VerifiedSignature:
    """Verify one signature; `tbs(signer_der)` rebuilds the signed bytes. Raises or returns."""
    if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
        raise VerificationError(ReasonCode.UNSUPPORTED_ALGORITHM, f"algorithm {algorithm!r}")
    if not isinstance(value, bytes) or not value:
        raise VerificationError(ReasonCode.MALFORMED, "signature value is not bytes")
    if not isinstance(signing_time, str):
        raise VerificationError(ReasonCode.MALFORMED, "signing time is not a string")
    certs = parse_chain(chain)
    try:
        moment = parse_signing_time(signing_time)
    except ValueError as exc:
        raise VerificationError(ReasonCode.MALFORMED, f"bad signing time: {exc}") from exc
    leaf = certs[0]
    try:
        key = as_public_key(leaf.public_key())
        signed = tbs(chain[0])
    except PARSE_ERRORS as exc:
        raise VerificationError(ReasonCode.MALFORMED, f"cannot rebuild signed data: {exc}") from exc
    verify_raw(key, algorithm, value, signed)
    if moment > at + CLOCK_SKEW:
        raise VerificationError(
            ReasonCode.SIGNING_TIME_INVALID, f"signing time {signing_time} is in the future"
        )
    if earliest is not None and moment < earliest - CLOCK_SKEW:
        raise VerificationError(
            ReasonCode.SIGNING_TIME_INVALID, f"signing time {signing_time} before creation"
        )
    try:
        trust.validate(certs, moment)
        check_end_entity(leaf, role)
        return VerifiedSignature(
            role=role,
            algorithm=algorithm,
            subject=leaf.subject.rfc4514_string(),
            agency_code=agency_code_of(leaf),
            agency_name=organization_of(leaf),
            person_name=common_name_of(leaf) if role is CertRole.PERSON else None,
            certificate_sha256=_fingerprint(leaf),
            signing_time=moment,
        )
    except PARSE_ERRORS as exc:
        # cryptography parses extensions lazily: a bad extension surfaces only here.
        raise VerificationError(ReasonCode.MALFORMED, f"bad certificate: {exc}") from exc


@dataclass(frozen=True, slots=True)
class SignerCert:
    """What signing needs from the chain: the leaf DER and the roles it carries."""

    der: bytes
    roles: frozenset[CertRole]


def signer_cert(key: PrivateKey, chain: Sequence[bytes], role: CertRole) -> SignerCert:
    """Refuse to sign when the chain's first certificate is not this key's or not this role's."""
    if not chain or not all(isinstance(c, bytes) for c in chain):
        raise SigningError("the certificate chain must be a non-empty sequence of DER bytes")
    try:
        leaf = x509.load_der_x509_certificate(chain[0])
        leaf_key = leaf.public_key()
    except PARSE_ERRORS as exc:
        raise SigningError(f"signer certificate is not valid DER: {exc}") from exc
    der, spki = Encoding.DER, PublicFormat.SubjectPublicKeyInfo
    if leaf_key.public_bytes(der, spki) != key.public_key().public_bytes(der, spki):
        raise SigningError("the private key does not match the first certificate of the chain")
    roles = roles_of(leaf)
    if role not in roles:
        raise SigningError(f"the certificate is not a {role} certificate (has {sorted(roles)})")
    return SignerCert(der=chain[0], roles=roles)
