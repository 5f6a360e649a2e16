"""PKI recipes: keys, CA and end-entity certificates, CRLs; pure functions, time as a parameter."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from signing.algorithms import PrivateKey, key_problem
from signing.errors import SigningError
from signing.profile import (
    CertRole,
    TransportKind,
    end_entity_ekus,
    subject_for,
    transport_subject,
)

KEY_ALGORITHMS = ("rsa", "rsa-pss", "ecdsa-p256", "ed25519")


def generate_key(algorithm: str = "ecdsa-p256", *, rsa_bits: int = 2048) -> PrivateKey:
    """A fresh key; 'rsa' and 'rsa-pss' give the same RSA key (padding is a signing choice)."""
    if algorithm in ("rsa", "rsa-pss"):
        if rsa_bits < 2048:
            raise SigningError("RSA keys must be at least 2048 bits")
        return rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
    if algorithm == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise SigningError(f"unknown key algorithm {algorithm!r}; choose one of {KEY_ALGORITHMS}")


def _hash_for(issuer_key: PrivateKey) -> hashes.SHA256 | None:
    # Ed25519 signs the certificate without a separate hash; everything else uses SHA-256.
    return None if isinstance(issuer_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def _check_key(key: PrivateKey) -> None:
    problem = key_problem(key)
    if problem is not None:
        raise SigningError(problem)


def _ca_name(name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "lienthong"),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )


def _validity(
    builder: x509.CertificateBuilder, now: datetime, days: int
) -> x509.CertificateBuilder:
    if now.tzinfo is None:
        raise SigningError("'now' must be timezone-aware")
    if days <= 0:
        raise SigningError("validity must be at least one day")
    start = now.replace(microsecond=0)
    return builder.not_valid_before(start).not_valid_after(start + timedelta(days=days))


def _ca_extensions(
    builder: x509.CertificateBuilder, key: PrivateKey, path_length: int | None
) -> x509.CertificateBuilder:
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    return (
        builder.add_extension(x509.BasicConstraints(ca=True, path_length=path_length), True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            True,
        )
        .add_extension(ski, False)
    )


def create_root_ca(
    key: PrivateKey,
    *,
    now: datetime,
    name: str = "lienthong Root CA (dev)",
    days: int = 3650,
    serial: int | None = None,
) -> x509.Certificate:
    """A self-signed root for development and tests; deployments may trust a real CA instead.
    A fixed `serial` (with an Ed25519 key) gives the same bytes every time: published test
    material such as the conformance kit is regenerated and compared byte for byte."""
    _check_key(key)
    subject = _ca_name(name)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(serial if serial is not None else x509.random_serial_number())
    )
    builder = _ca_extensions(_validity(builder, now, days), key, None)
    return builder.sign(key, _hash_for(key))


def _issued_by(
    builder: x509.CertificateBuilder, issuer_key: PrivateKey, issuer_cert: x509.Certificate
) -> x509.CertificateBuilder:
    aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key())
    return builder.issuer_name(issuer_cert.subject).add_extension(aki, False)


def create_intermediate_ca(
    key: PrivateKey,
    *,
    issuer_key: PrivateKey,
    issuer_cert: x509.Certificate,
    now: datetime,
    name: str = "lienthong Issuing CA (dev)",
    days: int = 1825,
) -> x509.Certificate:
    """An issuing CA under the root; path length 0 so it can only issue end entities."""
    _check_key(key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_ca_name(name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
    )
    builder = _ca_extensions(_validity(builder, now, days), key, 0)
    return _issued_by(builder, issuer_key, issuer_cert).sign(issuer_key, _hash_for(issuer_key))


def issue_certificate(
    subject_key: PrivateKey,
    *,
    role: CertRole,
    agency_code: str,
    agency_name: str,
    issuer_key: PrivateKey,
    issuer_cert: x509.Certificate,
    now: datetime,
    person_name: str | None = None,
    days: int = 730,
    serial: int | None = None,
) -> x509.Certificate:
    """An end-entity signing certificate following the profile in docs/signing.md."""
    _check_key(subject_key)
    try:
        subject = subject_for(
            role, agency_code=agency_code, agency_name=agency_name, person_name=person_name
        )
    except ValueError as exc:
        raise SigningError(str(exc)) from exc
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .public_key(subject_key.public_key())
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            True,
        )
        .add_extension(x509.ExtendedKeyUsage(end_entity_ekus(role)), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(subject_key.public_key()), False)
    )
    builder = _validity(builder, now, days)
    return _issued_by(builder, issuer_key, issuer_cert).sign(issuer_key, _hash_for(issuer_key))


def issue_transport_certificate(
    subject_key: PrivateKey,
    *,
    kind: TransportKind,
    name: str,
    issuer_key: PrivateKey,
    issuer_cert: x509.Certificate,
    now: datetime,
    days: int = 397,
    hosts: Sequence[str] = (),
) -> x509.Certificate:
    """A TLS certificate of the transport profile (docs/security.md): clientAuth; a broker also
    serverAuth, another server (PostgreSQL) serverAuth only, with their DNS names and IP
    addresses. No role marker: it signs nothing."""
    _check_key(subject_key)
    try:
        subject = transport_subject(kind, name)
    except ValueError as exc:
        raise SigningError(str(exc)) from exc
    usages = {
        # The broker is also a client: of the other brokers and of the controllers.
        TransportKind.BROKER: [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        TransportKind.SERVER: [ExtendedKeyUsageOID.SERVER_AUTH],
    }.get(kind, [ExtendedKeyUsageOID.CLIENT_AUTH])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .public_key(subject_key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=isinstance(subject_key, rsa.RSAPrivateKey),
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(subject_key.public_key()), False)
    )
    if hosts:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(h) for h in hosts]), False
        )
    builder = _validity(builder, now, days)
    return _issued_by(builder, issuer_key, issuer_cert).sign(issuer_key, _hash_for(issuer_key))


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


@dataclass(frozen=True, slots=True)
class RevokedEntry:
    serial: int
    revoked_at: datetime
    reason: x509.ReasonFlags = x509.ReasonFlags.unspecified


def build_crl(
    *,
    issuer_key: PrivateKey,
    issuer_cert: x509.Certificate,
    revoked: Iterable[RevokedEntry],
    now: datetime,
    next_update_days: int = 7,
    number: int | None = None,
) -> x509.CertificateRevocationList:
    """A CRL listing every revoked serial with its date and reason; `number` is its CRL number
    (RFC 5280 5.2.3), which followers use to refuse an older CRL (signing.crl)."""
    if now.tzinfo is None:
        raise SigningError("'now' must be timezone-aware")
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer_cert.subject)
        .last_update(now)
        .next_update(now + timedelta(days=next_update_days))
    )
    if number is not None:
        builder = builder.add_extension(x509.CRLNumber(number), critical=False)
    for entry in revoked:
        revoked_cert = (
            x509.RevokedCertificateBuilder()
            .serial_number(entry.serial)
            .revocation_date(entry.revoked_at)
            .add_extension(x509.CRLReason(entry.reason), False)
            .build()
        )
        builder = builder.add_revoked_certificate(revoked_cert)
    return builder.sign(issuer_key, _hash_for(issuer_key))


def private_key_pem(key: PrivateKey, passphrase: bytes | None = None) -> bytes:
    """PKCS#8 PEM, encrypted with the best available scheme when a passphrase is given."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def load_private_key(pem: bytes, passphrase: bytes | None = None) -> PrivateKey:
    """Load a PEM private key we are willing to sign with (wrong passphrase -> SigningError)."""
    try:
        key = serialization.load_pem_private_key(pem, password=passphrase or None)
    except (ValueError, TypeError) as exc:
        raise SigningError(f"cannot load private key: {exc}") from exc
    if not isinstance(
        key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    ):
        raise SigningError(f"key type {type(key).__name__} not accepted")
    _check_key(key)
    return key


def certificate_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def crl_pem(crl: x509.CertificateRevocationList) -> bytes:
    return crl.public_bytes(serialization.Encoding.PEM)


def load_certificates(pem: bytes) -> list[x509.Certificate]:
    """All certificates in a PEM bundle, in file order."""
    return x509.load_pem_x509_certificates(pem)


def chain_der(certs: Iterable[x509.Certificate]) -> tuple[bytes, ...]:
    """Certificates as the DER tuple an Envelope Signature carries (signer first)."""
    return tuple(c.public_bytes(serialization.Encoding.DER) for c in certs)
