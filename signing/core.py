"""The checks every signature gets, envelope or detached: algorithm, value, time, chain, usage."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from signing.algorithms import ALGORITHMS, PrivateKey, as_public_key, verify_raw
from signing.certcheck import parse_chain
from signing.errors import ReasonCode, SigningError, VerificationError
from signing.profile import CertRole, roles_of
from signing.tbs import parse_signing_time
from signing.trust import TrustStore

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
    """Verify one signature; `tbs(signer_der)` rebuilds the signed bytes. Raises or returns.

    A chain this trust store already validated for this role skips parsing, path building and
    the profile checks (they cannot change: see TrustStore); the signature, the times, the
    validity of every path certificate at the signing time and revocation are checked on
    every call, in the same order as a full validation.
    """
    if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
        raise VerificationError(ReasonCode.UNSUPPORTED_ALGORITHM, f"algorithm {algorithm!r}")
    if not isinstance(value, bytes) or not value:
        raise VerificationError(ReasonCode.MALFORMED, "signature value is not bytes")
    if not isinstance(signing_time, str):
        raise VerificationError(ReasonCode.MALFORMED, "signing time is not a string")
    cached = trust.cached_chain(chain)
    if cached is not None and role not in cached.roles:
        cached = None  # refused for this role before: redo it all, for the exact reason
    certs = cached.certs if cached is not None else parse_chain(chain)
    try:
        moment = parse_signing_time(signing_time)
    except ValueError as exc:
        raise VerificationError(ReasonCode.MALFORMED, f"bad signing time: {exc}") from exc
    try:
        key = cached.leaf_key if cached is not None else as_public_key(certs[0].public_key())
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
        if cached is not None:
            trust.check_at(cached, moment)
            valid = cached
        else:
            valid = trust.validate_chain(chain, certs, key, role, moment)
    except PARSE_ERRORS as exc:
        # cryptography parses extensions lazily: a bad extension surfaces only here.
        raise VerificationError(ReasonCode.MALFORMED, f"bad certificate: {exc}") from exc
    return VerifiedSignature(
        role=role,
        algorithm=algorithm,
        subject=valid.subject,
        agency_code=valid.agency_code,
        agency_name=valid.agency_name,
        person_name=valid.common_name if role is CertRole.PERSON else None,
        certificate_sha256=valid.certificate_sha256,
        signing_time=moment,
    )


@dataclass(frozen=True, slots=True)
class SignerCert:
    """What signing needs from the chain: the leaf DER and the roles it carries."""

    der: bytes
    roles: frozenset[CertRole]


def signer_cert(key: PrivateKey, chain: Sequence[bytes], role: CertRole) -> SignerCert:
    """Refuse to sign when the chain's first certificate is not this key's or not this role's."""
    try:
        return _checked_signer(key, tuple(chain), role)
    except TypeError:  # an unhashable chain element: let the checks say what is wrong
        return _check_signer(key, chain, role)


# A signing station signs thousands of envelopes with one key and chain: the checks of the last
# few (key, chain, role) that passed are remembered (a refusal raises and is not).
@functools.lru_cache(maxsize=64)
def _checked_signer(key: PrivateKey, chain: tuple[bytes, ...], role: CertRole) -> SignerCert:
    return _check_signer(key, chain, role)


def _check_signer(key: PrivateKey, chain: Sequence[bytes], role: CertRole) -> SignerCert:
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
