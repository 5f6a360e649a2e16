"""Checks of one certificate or one path step, with no state: parsing, validity at a time,
CA constraints, the end-entity profile, revocation entries. TrustStore composes them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from signing.errors import PkiError, ReasonCode, VerificationError
from signing.profile import CertRole, roles_of

MAX_CHAIN_DEPTH = 6
_INVALID = (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm)
# cryptography's x509 exceptions that do not derive from ValueError.
X509_PARSE_ERRORS = (ValueError, x509.InvalidVersion, x509.DuplicateExtension)


def parse_chain(chain: Sequence[bytes]) -> tuple[x509.Certificate, ...]:
    """DER certificates, signer first; MALFORMED when empty, oversized or not DER."""
    if not isinstance(chain, tuple | list) or not chain:
        raise VerificationError(ReasonCode.MALFORMED, "empty certificate chain")
    if len(chain) > MAX_CHAIN_DEPTH:
        raise VerificationError(ReasonCode.MALFORMED, f"chain longer than {MAX_CHAIN_DEPTH}")
    certs = []
    for i, der in enumerate(chain):
        if not isinstance(der, bytes):
            raise VerificationError(ReasonCode.MALFORMED, f"chain[{i}] is not bytes")
        try:
            certs.append(x509.load_der_x509_certificate(der))
        except X509_PARSE_ERRORS as exc:
            raise VerificationError(ReasonCode.MALFORMED, f"chain[{i}] is not DER: {exc}") from exc
    return tuple(certs)


def issued_by(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(issuer)
    except _INVALID:
        return False
    return True


def check_validity(cert: x509.Certificate, at: datetime) -> None:
    if at < cert.not_valid_before_utc:
        raise VerificationError(
            ReasonCode.CERT_NOT_YET_VALID,
            f"{cert.subject.rfc4514_string()} valid from {cert.not_valid_before_utc}",
        )
    if at > cert.not_valid_after_utc:
        raise VerificationError(
            ReasonCode.CERT_EXPIRED,
            f"{cert.subject.rfc4514_string()} expired {cert.not_valid_after_utc}",
        )


def check_critical_extensions(cert: x509.Certificate) -> None:
    # RFC 5280 4.2: a certificate with a critical extension we do not understand is refused.
    for ext in cert.extensions:
        if ext.critical and isinstance(ext.value, x509.UnrecognizedExtension):
            raise VerificationError(
                ReasonCode.UNTRUSTED_CHAIN, f"unknown critical extension {ext.oid.dotted_string}"
            )


def check_issuer_is_ca(issuer: x509.Certificate, intermediates_below: int) -> None:
    name = issuer.subject  # rendered only in messages
    try:
        bc = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        raise VerificationError(ReasonCode.UNTRUSTED_CHAIN, f"{name} is not a CA") from None
    if not bc.ca:
        raise VerificationError(ReasonCode.UNTRUSTED_CHAIN, f"{name} is not a CA")
    if bc.path_length is not None and intermediates_below > bc.path_length:
        raise VerificationError(ReasonCode.UNTRUSTED_CHAIN, f"{name} path length exceeded")
    try:
        ku = issuer.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not ku.key_cert_sign:
        raise VerificationError(ReasonCode.UNTRUSTED_CHAIN, f"{name} may not sign certificates")


def check_end_entity(cert: x509.Certificate, role: CertRole) -> None:
    """The signer certificate may sign in this role: key usage, not a CA, role marker."""
    name = cert.subject  # rendered only in messages
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        if bc.ca:
            raise VerificationError(ReasonCode.WRONG_KEY_USAGE, f"{name} is a CA certificate")
    except x509.ExtensionNotFound:
        pass
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise VerificationError(ReasonCode.WRONG_KEY_USAGE, f"{name} has no key usage") from None
    # Documents are commitments (Decree 30): person and agency keys need nonRepudiation too.
    needs_commitment = role in (CertRole.PERSON, CertRole.AGENCY)
    if not ku.digital_signature or (needs_commitment and not ku.content_commitment):
        raise VerificationError(ReasonCode.WRONG_KEY_USAGE, f"{name} key usage forbids signing")
    if role not in roles_of(cert):
        raise VerificationError(ReasonCode.WRONG_KEY_USAGE, f"{name} is not a {role} certificate")


def allowed_roles(cert: x509.Certificate) -> frozenset[CertRole]:
    allowed = set()
    for role in CertRole:
        try:
            check_end_entity(cert, role)
        except (VerificationError, *X509_PARSE_ERRORS, TypeError):
            continue
        allowed.add(role)
    return frozenset(allowed)


def refuse_if_revoked(serial: int, entry: x509.RevokedCertificate, at: datetime) -> None:
    revoked_at = entry.revocation_date_utc
    try:
        reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except x509.ExtensionNotFound:
        reason = x509.ReasonFlags.unspecified
    # A compromised key could have produced any back-dated signature, so its signing
    # time cannot save it; other reasons only void signatures made after revocation.
    if revoked_at <= at or reason is x509.ReasonFlags.key_compromise:
        raise VerificationError(
            ReasonCode.REVOKED,
            f"serial {serial:x} revoked {revoked_at.isoformat()} ({reason.value})",
        )


@dataclass(frozen=True, slots=True)
class Validity:
    """When one certificate stops being valid, and whose it is."""

    subject: str  # RFC 4514
    not_after: datetime  # UTC

    @classmethod
    def of(cls, cert: x509.Certificate) -> Validity:
        return cls(cert.subject.rfc4514_string(), cert.not_valid_after_utc)


def certificates_in_file(path: Path) -> list[Validity]:
    """Every certificate of a PEM file (a chain, a CA bundle) or of one DER certificate;
    PkiError naming the file when it is missing or holds none."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PkiError(f"cannot read certificate file {path}: {exc.strerror or exc}") from None
    try:
        if b"-----BEGIN" in data:
            certs = x509.load_pem_x509_certificates(data)
        else:
            certs = [x509.load_der_x509_certificate(data)]
    except X509_PARSE_ERRORS as exc:
        raise PkiError(f"{path} holds no readable certificate: {exc}") from None
    return [Validity.of(c) for c in certs]


def chain_validity(chain: Sequence[bytes]) -> list[Validity]:
    """The certificates of a DER chain (a credential's), signer first."""
    try:
        return [Validity.of(x509.load_der_x509_certificate(der)) for der in chain]
    except X509_PARSE_ERRORS as exc:
        raise PkiError(f"unreadable certificate chain: {exc}") from None
