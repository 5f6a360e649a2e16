"""The transport profile: TLS identities per principal, under a transport CA, apart from the
signing certificates."""

from __future__ import annotations

import ipaddress
import re
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from signing.errors import PkiError
from signing.pki import load_certificates
from signing.pkidir import PkiDirectory
from signing.profile import KAFKA_PRINCIPAL_RULES, TransportKind, roles_of
from signing.transportpki import TransportPki

NOW = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def tp(tmp_path: Path) -> TransportPki:
    pki = PkiDirectory(tmp_path / "pki")
    pki.init(now=NOW - timedelta(days=1))
    return TransportPki(pki)


def _cert(tp: TransportPki, rel: str) -> x509.Certificate:
    return load_certificates(tp.path(rel).read_bytes())[0]


def _principal(dn: str) -> str:
    """What Kafka's ssl.principal.mapping.rules make of an RFC 2253 subject (Java's regex
    dialect agrees with Python's on these rules)."""
    assert KAFKA_PRINCIPAL_RULES.endswith(",DEFAULT")
    for pattern, replacement in re.findall(r"RULE:(.*?)/(.*?)/", KAFKA_PRINCIPAL_RULES):
        match = re.match(pattern, dn)
        if match:
            return match.expand(replacement.replace("$1", r"\1"))
    return dn


def test_agency_certificate_names_its_principal_and_signs_nothing(tp: TransportPki) -> None:
    entry = tp.issue(TransportKind.AGENCY, "000.00.31.H26", now=NOW)
    cert = _cert(tp, entry.certificate)
    assert entry.principal == "User:000.00.31.H26"
    assert cert.subject.rfc4514_string() == "CN=000.00.31.H26,OU=agency,O=lienthong,C=VN"
    assert _principal(cert.subject.rfc4514_string()) == "000.00.31.H26"
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert roles_of(cert) == frozenset()  # no role marker: it can never sign a document
    # issued by the transport CA, not by the root that issues signing certificates
    assert cert.issuer == _cert(tp, "transport/ca.crt.pem").subject
    assert cert.issuer != load_certificates(tp.pki.root_cert.read_bytes())[0].subject


def test_broker_certificate_has_its_addresses_and_both_usages(tp: TransportPki) -> None:
    entry = tp.issue(
        TransportKind.BROKER, "lienthong-broker", now=NOW, hosts=("127.0.0.1", "localhost")
    )
    cert = _cert(tp, entry.certificate)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    keystore = tp.path(entry.keystore).read_text()
    assert keystore.startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8, unencrypted
    assert keystore.count("BEGIN CERTIFICATE") == 2  # leaf + transport CA
    assert tp.path(entry.keystore).stat().st_mode & 0o077 == 0
    server = _cert(tp, tp.issue(TransportKind.SERVER, "lienthong-postgres", now=NOW).certificate)
    eku = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]  # no Kafka client identity
    with pytest.raises(PkiError, match="unencrypted"):
        tp.issue(TransportKind.BROKER, "lienthong-broker", now=NOW, passphrase=b"x")


def test_a_lookalike_subject_is_not_the_agency() -> None:
    assert _principal("CN=000.00.31.H26,OU=agency,O=lienthong,C=VN") == "000.00.31.H26"
    assert _principal("CN=lienthong-router,OU=service,O=lienthong,C=VN") == "lienthong-router"
    for dn in (
        "CN=000.00.31.H26,O=Evil,C=VN",
        "CN=000.00.31.H26,OU=agency,O=Other,C=VN",
        "CN=lienthong-router,OU=agency,O=lienthong,C=VN",
    ):
        assert _principal(dn) == dn  # DEFAULT: the whole DN, which no ACL names


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        (TransportKind.AGENCY, "lienthong-router"),
        (TransportKind.SERVICE, "000.00.31.H26"),
        (TransportKind.SERVICE, "router"),
    ],
)
def test_names_follow_the_kind(tp: TransportPki, kind: TransportKind, name: str) -> None:
    with pytest.raises(PkiError):
        tp.issue(kind, name, now=NOW)


def test_an_encrypted_client_key_loads_into_tls_with_its_passphrase(tp: TransportPki) -> None:
    tp.issue(TransportKind.SERVICE, "lienthong-router", now=NOW, passphrase=b"mat-khau")
    security = tp.client_security("lienthong-router", key_password="mat-khau")
    assert isinstance(security.ssl_context(), ssl.SSLContext)
    assert "ENCRYPTED" in security.key_file.read_text()  # type: ignore[union-attr]


def test_revoked_principals_and_renewal(tp: TransportPki) -> None:
    tp.issue(TransportKind.AGENCY, "000.00.31.H26", now=NOW)
    tp.issue(TransportKind.AGENCY, "000.00.32.H26", now=NOW)
    tp.revoke("000.00.31.H26", now=NOW)
    assert tp.revoked_names() == {"000.00.31.H26"}
    assert tp.current("000.00.31.H26") is None
    with pytest.raises(PkiError, match="no valid transport"):
        tp.client_security("000.00.31.H26")
    tp.issue(TransportKind.AGENCY, "000.00.31.H26", now=NOW + timedelta(days=1))
    assert tp.revoked_names() == set()  # a fresh certificate reopens the door
