"""Which credential signs at a time (signing.credentials), CRL numbers and renewal in a PKI
directory (signing.pkidir). Every time is given; no clock is read."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from schemas.envelope import SignerRole
from signing.credentials import FixedCredentials, PkiCredentials, as_source
from signing.crl import crl_number, load_crl
from signing.errors import PkiError
from signing.pkidir import PkiDirectory
from signing.profile import CertRole, organization_of
from signing.seal import Credential, load_credential

T0 = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
PLATFORM = "000.00.10.H26"
H26 = "000.00.00.H26"


@pytest.fixture
def pki(tmp_path: Path) -> PkiDirectory:
    pki = PkiDirectory(tmp_path / "pki")
    pki.init(now=T0, intermediate=True)
    return pki


def _not_after(credential: Credential) -> datetime:
    return x509.load_der_x509_certificate(credential.chain[0]).not_valid_after_utc


def test_a_fixed_set_never_gives_an_expired_or_future_certificate(pki: PkiDirectory) -> None:
    pki.issue(agency_code=PLATFORM, role=CertRole.PLATFORM, now=T0, days=30)
    old = load_credential(pki.root, PLATFORM, SignerRole.PLATFORM)
    pki.issue(agency_code=PLATFORM, role=CertRole.PLATFORM, now=T0 + timedelta(days=20))
    new = load_credential(pki.root, PLATFORM, SignerRole.PLATFORM)
    source = FixedCredentials([old, new])
    assert source.credential_at(T0 + timedelta(days=1)) == old  # the renewal is not valid yet
    assert source.credential_at(T0 + timedelta(days=25)) == new  # both valid: the newest
    assert source.credential_at(T0 + timedelta(days=40)) == new  # the old one expired
    assert source.credential_at(T0 - timedelta(days=1)) is None
    only_old = as_source(old)
    assert only_old.credential_at(T0 + timedelta(days=29)) == old
    assert only_old.credential_at(T0 + timedelta(days=31)) is None
    held = only_old.held_at(T0)
    assert held is not None and held.not_after == _not_after(old)


def test_a_pki_source_takes_up_a_renewal_without_being_rebuilt(pki: PkiDirectory) -> None:
    first = pki.issue(agency_code=PLATFORM, role=CertRole.PLATFORM, now=T0, days=30)
    source = PkiCredentials(pki.root, PLATFORM, SignerRole.PLATFORM)
    late = T0 + timedelta(days=31)
    assert source.credential_at(T0 + timedelta(days=1)) is not None
    assert source.credential_at(late) is None  # expired, nothing else: sign nothing
    renewed = pki.renew(first.serial, now=T0 + timedelta(days=29))
    got = source.credential_at(late)
    assert got is not None and got.role is SignerRole.PLATFORM
    assert x509.load_der_x509_certificate(got.chain[0]).serial_number == int(renewed.serial, 16)
    # A revoked certificate is no longer offered, even while valid.
    pki.revoke(renewed.serial, reason="keyCompromise", now=T0 + timedelta(days=30))
    assert source.credential_at(late) is None
    assert source.credential_at(T0 + timedelta(days=1)) is not None  # the first, still valid


def test_a_pki_source_needs_a_certificate_to_start(pki: PkiDirectory) -> None:
    with pytest.raises(PkiError, match="no PLATFORM certificate"):
        PkiCredentials(pki.root, PLATFORM, SignerRole.PLATFORM)


def test_renew_keeps_the_identity(pki: PkiDirectory) -> None:
    person = pki.issue(
        agency_code=H26,
        role=CertRole.PERSON,
        person_name="Nguyễn Văn Sửu",
        agency_name="Ủy ban nhân dân thành phố Hà Nội",
        algorithm="ed25519",
        now=T0,
    )
    renewed = pki.renew(person.serial[:16], now=T0 + timedelta(days=700), days=365)
    old_cert = x509.load_pem_x509_certificate(person.certificate.read_bytes())
    new_cert = x509.load_pem_x509_certificate(renewed.certificate.read_bytes())
    assert new_cert.subject == old_cert.subject
    assert organization_of(new_cert) == "Ủy ban nhân dân thành phố Hà Nội"
    assert new_cert.public_key() != old_cert.public_key()
    assert new_cert.not_valid_after_utc == T0 + timedelta(days=1065)
    found = pki.find(agency_code=H26, role=CertRole.PERSON, person_name="Nguyễn Văn Sửu")
    assert [e.serial for e in found] == [person.serial, renewed.serial]  # both valid, newest last
    assert {e.algorithm for e in found} == {"ed25519"}
    pki.revoke(person.serial, reason="superseded", now=T0 + timedelta(days=701))
    with pytest.raises(PkiError, match="revoked"):
        pki.renew(person.serial, now=T0 + timedelta(days=702))


def test_every_crl_is_numbered_one_more_than_the_last(pki: PkiDirectory) -> None:
    assert crl_number(load_crl(pki.crl.read_bytes())) == 1  # from init
    issued = pki.issue(agency_code=H26, role=CertRole.AGENCY, now=T0)
    pki.revoke(issued.serial, reason="superseded", now=T0 + timedelta(hours=1))
    crl = load_crl(pki.crl_der())
    assert crl_number(crl) == 2 and len(crl) == 1
    pki.publish_crl(now=T0 + timedelta(days=6), next_update_days=3)
    crl = load_crl(pki.crl_der())
    assert crl_number(crl) == 3 and len(crl) == 1  # same revocations, signed again
    assert crl.last_update_utc == T0 + timedelta(days=6)
    assert crl.next_update_utc == T0 + timedelta(days=9)
    assert json.loads(pki.index.read_text(encoding="utf-8"))["crl_number"] == 3
    assert crl.issuer == pki.crl_issuer().subject  # the issuing CA, not the root
    assert pki.crl_issuer_chain().startswith(b"-----BEGIN CERTIFICATE-----")


def test_an_index_from_before_numbering_starts_at_one(pki: PkiDirectory) -> None:
    body = json.loads(pki.index.read_text(encoding="utf-8"))
    del body["crl_number"]
    pki.index.write_text(json.dumps(body), encoding="utf-8")
    pki.publish_crl(now=T0 + timedelta(days=1))
    assert crl_number(load_crl(pki.crl_der())) == 1
