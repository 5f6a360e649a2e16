"""XML-DSig on edXML: a file signed with a key of our PKI verifies against our CA; tampered,
foreign-CA, unsigned and the national samples (no XML-DSig namespace, truncated certificate) do
not, each with its reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from schemas.envelope import SignerRole
from schemas.national import SignatureStatus
from signing.edxml import sign_edxml, verify_edxml
from signing.pkidir import PkiDirectory
from signing.profile import CertRole
from signing.seal import load_credential

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "edxml"
H26 = "000.00.00.H26"


def make_pki(root: Path) -> PkiDirectory:
    d = PkiDirectory(root)
    d.init(now=NOW)
    d.issue(agency_code=H26, role=CertRole.AGENCY, now=NOW)
    return d


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiDirectory:
    return make_pki(tmp_path_factory.mktemp("pki"))


def unsigned() -> bytes:
    """A national sample with its (non-XML-DSig) Signature taken out."""
    data = (FIXTURES / "edoc_new.edxml").read_bytes()
    start, end = data.index(b"<Signature>"), data.index(b"</Signature>") + len(b"</Signature>")
    return data[:start] + data[end:]


@pytest.fixture(scope="module")
def signed(pki: PkiDirectory) -> bytes:
    return sign_edxml(unsigned(), load_credential(pki.root, H26, SignerRole.AGENCY))


def test_a_file_signed_with_our_key_verifies_against_our_ca(
    pki: PkiDirectory, signed: bytes
) -> None:
    check = verify_edxml(signed, anchors=pki.root_cert, at=NOW + timedelta(1))
    assert check.status is SignatureStatus.VALID, check.reason
    assert check.signer_subject and H26 in check.signer_subject


def test_a_changed_byte_of_the_header_is_invalid(pki: PkiDirectory, signed: bytes) -> None:
    tampered = signed.replace(b"74fass22", b"74fass23", 1)
    assert tampered != signed
    check = verify_edxml(tampered, anchors=pki.root_cert, at=NOW + timedelta(1))
    assert check.status is SignatureStatus.INVALID and check.reason


def test_a_signer_under_another_ca_or_no_anchor_is_invalid(signed: bytes, tmp_path: Path) -> None:
    other = make_pki(tmp_path / "other")
    check = verify_edxml(signed, anchors=other.root_cert, at=NOW + timedelta(1))
    assert check.status is SignatureStatus.INVALID and check.reason
    none = verify_edxml(signed, anchors=None, at=NOW)
    assert none.status is SignatureStatus.INVALID and "trust anchor" in (none.reason or "")


def test_an_expired_certificate_is_invalid(pki: PkiDirectory, signed: bytes) -> None:
    later = NOW + timedelta(days=365 * 30)
    check = verify_edxml(signed, anchors=pki.root_cert, at=later)
    assert check.status is SignatureStatus.INVALID


@pytest.mark.parametrize("name", ["edoc_new", "edoc_update", "edoc_replacement", "edoc_revocation"])
def test_the_national_samples_cannot_verify_and_say_why(pki: PkiDirectory, name: str) -> None:
    data = (FIXTURES / f"{name}.edxml").read_bytes()
    check = verify_edxml(data, anchors=pki.root_cert, at=NOW)
    assert check.status is SignatureStatus.INVALID
    assert "not XML-DSig" in (check.reason or "")
    assert "MIIFqTCCBJG" in (check.reason or "")  # the truncated certificate


def test_no_signature_is_unsigned(pki: PkiDirectory) -> None:
    check = verify_edxml(unsigned(), anchors=pki.root_cert, at=NOW)
    assert check.status is SignatureStatus.UNSIGNED
