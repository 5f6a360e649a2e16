"""The certificate subject: where the agency code and names live, and the CN's 64-byte cap."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography.x509.oid import NameOID

from signing.pki import create_root_ca, generate_key, issue_certificate
from signing.profile import (
    CertRole,
    agency_code_of,
    common_name_of,
    organization_of,
    shorten_utf8,
    subject_for,
)

NOW = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
LABOUR = "Sở Lao động - Thương binh và Xã hội thành phố Hà Nội"  # 52 characters, 69 UTF-8 bytes


def test_a_vietnamese_agency_name_under_64_characters_but_over_64_bytes_is_issued() -> None:
    """cryptography counts the CN in UTF-8 bytes: cutting at 64 characters was not enough, and
    issuing for this agency under its real name failed."""
    root_key = generate_key("ed25519")
    root = create_root_ca(root_key, now=NOW)
    cert = issue_certificate(
        generate_key("ed25519"),
        role=CertRole.AGENCY,
        agency_code="000.00.05.H26",
        agency_name=LABOUR,
        issuer_key=root_key,
        issuer_cert=root,
        now=NOW,
    )
    assert organization_of(cert) == LABOUR  # the full name, in O
    assert agency_code_of(cert) == "000.00.05.H26"
    cn = common_name_of(cert)
    assert cn is not None and cn.endswith("…") and LABOUR.startswith(cn[:-1])
    assert len(cn.encode()) <= 64


@pytest.mark.parametrize("text", ["Hà Nội", "x" * 64, "ệ" * 30, "a" + "ệ" * 30, LABOUR])
def test_shorten_utf8_keeps_whole_characters_within_the_limit(text: str) -> None:
    short = shorten_utf8(text, 64)
    assert len(short.encode()) <= 64
    if len(text.encode()) <= 64:
        assert short == text
    else:
        assert short.endswith("…") and text.startswith(short[:-1])
        assert len((short[:-1] + text[len(short) - 1]).encode()) + 3 > 64  # no room for more


def test_subject_carries_the_code_in_organization_identifier() -> None:
    name = subject_for(
        CertRole.PERSON,
        agency_code="000.00.00.H26",
        agency_name="UBND",
        person_name="Nguyễn Văn An",
    )
    values = {a.oid: a.value for a in name}
    assert values[NameOID.ORGANIZATION_IDENTIFIER] == "VN:000.00.00.H26"
    assert values[NameOID.COMMON_NAME] == "Nguyễn Văn An"
    assert values[NameOID.ORGANIZATION_NAME] == "UBND"
    assert values[NameOID.COUNTRY_NAME] == "VN"
