"""Detached signatures, key acceptance, PEM round trips and the trust store as configuration."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from schemas.envelope import SignerRole
from signing import (
    CertRole,
    PkiError,
    ReasonCode,
    SigningError,
    TrustStore,
    VerificationError,
    generate_key,
    load_private_key,
    sign_blob,
    sign_envelope,
    verify_blob,
    verify_envelope,
)
from signing.pki import build_crl, certificate_pem, crl_pem, private_key_pem
from signing.tbs import format_signing_time
from tests.unit.signing.conftest import (
    ISSUED_AT,
    SIGN_AT,
    VERIFY_AT,
    FakeAgencies,
    TestPki,
    make_envelope,
)

TREE_HEAD = b"\x00" * 8 + bytes(range(32))
PURPOSE = "lienthong.archive.tree-head"


@pytest.mark.parametrize("algorithm", ["rsa", "rsa-pss", "ecdsa-p256", "ed25519"])
def test_blob_round_trip(algorithm: str, pki: TestPki, trust: TrustStore) -> None:
    cred = pki.issue(CertRole.ARCHIVE, algorithm)
    sig = sign_blob(
        TREE_HEAD, key=cred.key, chain=cred.chain, at=SIGN_AT, purpose=PURPOSE, rsa_pss=cred.rsa_pss
    )
    verified = verify_blob(TREE_HEAD, sig, trust=trust, at=VERIFY_AT, purpose=PURPOSE)
    assert verified.role is CertRole.ARCHIVE
    assert verified.agency_code == "000.00.00.H26"


def test_blob_refusals(pki: TestPki, trust: TrustStore) -> None:
    cred = pki.issue(CertRole.ARCHIVE, "ed25519")
    sig = sign_blob(TREE_HEAD, key=cred.key, chain=cred.chain, at=SIGN_AT, purpose=PURPOSE)
    cases = {
        ReasonCode.BAD_SIGNATURE: [
            (TREE_HEAD[:-1] + b"\x01", sig, PURPOSE),
            (TREE_HEAD, sig, "lienthong.other"),
            (TREE_HEAD, replace(sig, purpose="lienthong.other"), "lienthong.other"),
        ],
        ReasonCode.MALFORMED: [(TREE_HEAD, replace(sig, certificate_chain=(b"junk",)), PURPOSE)],
        ReasonCode.UNSUPPORTED_ALGORITHM: [(TREE_HEAD, replace(sig, algorithm="dsa"), PURPOSE)],
    }
    for reason, inputs in cases.items():
        for data, signature, purpose in inputs:
            with pytest.raises(VerificationError) as err:
                verify_blob(data, signature, trust=trust, at=VERIFY_AT, purpose=purpose)
            assert err.value.reason is reason


def test_blob_needs_the_archive_role(pki: TestPki, trust: TrustStore) -> None:
    agency = pki.issue(CertRole.AGENCY)
    sig = sign_blob(TREE_HEAD, key=agency.key, chain=agency.chain, at=SIGN_AT, role=CertRole.AGENCY)
    with pytest.raises(VerificationError) as err:
        verify_blob(TREE_HEAD, sig, trust=trust, at=VERIFY_AT)  # expects ARCHIVE
    assert err.value.reason is ReasonCode.WRONG_KEY_USAGE
    with pytest.raises(SigningError):
        sign_blob(TREE_HEAD, key=agency.key, chain=agency.chain, at=SIGN_AT)  # not an archive cert


def test_small_rsa_and_other_curves_are_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(SigningError, match="2048"):
        load_private_key(private_key_pem(small))  # type: ignore[arg-type]
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(SigningError, match="P-256"):
        load_private_key(private_key_pem(p384))  # type: ignore[arg-type]
    with pytest.raises(SigningError):
        generate_key("rsa", rsa_bits=1024)
    with pytest.raises(SigningError):
        generate_key("dsa")


def test_encrypted_key_round_trip() -> None:
    key = generate_key("ed25519")
    pem = private_key_pem(key, "mật khẩu".encode())
    assert b"ENCRYPTED PRIVATE KEY" in pem
    loaded = load_private_key(pem, "mật khẩu".encode())
    assert loaded.public_key() == key.public_key()
    with pytest.raises(SigningError):
        load_private_key(pem, b"wrong")


def test_signing_time_is_vietnam_time() -> None:
    utc_moment = SIGN_AT.astimezone(ISSUED_AT.tzinfo).replace(microsecond=987654)
    assert format_signing_time(utc_moment) == "2026-03-10T09:00:00+07:00"
    assert format_signing_time(SIGN_AT - timedelta(hours=12)).endswith("+07:00")


def test_trust_store_from_yaml_config(tmp_path: Path, pki: TestPki, agencies: FakeAgencies) -> None:
    (tmp_path / "anchors").mkdir()
    (tmp_path / "anchors" / "root.pem").write_bytes(certificate_pem(pki.root))
    crl = build_crl(issuer_key=pki.ca_key, issuer_cert=pki.ca, revoked=[], now=ISSUED_AT)
    (tmp_path / "issuing.crl.pem").write_bytes(crl_pem(crl))
    config = tmp_path / "trust.yaml"
    config.write_text("anchors: [anchors/root.pem]\ncrls: [issuing.crl.pem]\n", encoding="utf-8")
    trust = TrustStore.from_config(config)
    cred = pki.issue()
    env = sign_envelope(
        make_envelope(), key=cred.key, chain=cred.chain, role=SignerRole.AGENCY, at=SIGN_AT
    )
    assert verify_envelope(env, trust=trust, agencies=agencies, at=VERIFY_AT).agency_code


def test_trust_store_with_another_anchor_refuses_our_chain(
    tmp_path: Path, pki: TestPki, agencies: FakeAgencies
) -> None:
    """Trusting an external CA instead: our dev certificates are no longer accepted."""
    external = TestPki()
    cred = pki.issue()
    env = sign_envelope(
        make_envelope(), key=cred.key, chain=cred.chain, role=SignerRole.AGENCY, at=SIGN_AT
    )
    with pytest.raises(VerificationError) as err:
        verify_envelope(env, trust=TrustStore((external.root,)), agencies=agencies, at=VERIFY_AT)
    assert err.value.reason is ReasonCode.UNTRUSTED_CHAIN


def test_trust_store_configuration_errors(tmp_path: Path, pki: TestPki) -> None:
    with pytest.raises(PkiError):
        TrustStore(())
    with pytest.raises(PkiError):
        TrustStore.from_files([tmp_path / "missing.pem"])
    (tmp_path / "bad.pem").write_bytes(
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    )
    with pytest.raises(PkiError):
        TrustStore.from_files([tmp_path / "bad.pem"])
    # A CRL claiming to be the root's but signed by another key is a configuration error.
    other = TestPki()
    forged = build_crl(issuer_key=other.root_key, issuer_cert=pki.root, revoked=[], now=ISSUED_AT)
    with pytest.raises(PkiError, match="bad signature"):
        TrustStore((pki.root,), (forged,))


def test_forged_intermediate_crl_is_untrusted(pki: TestPki, agencies: FakeAgencies) -> None:
    other = TestPki()
    forged = build_crl(issuer_key=other.ca_key, issuer_cert=pki.ca, revoked=[], now=ISSUED_AT)
    cred = pki.issue()
    env = sign_envelope(
        make_envelope(), key=cred.key, chain=cred.chain, role=SignerRole.AGENCY, at=SIGN_AT
    )
    with pytest.raises(VerificationError) as err:
        verify_envelope(
            env, trust=TrustStore((pki.root,), (forged,)), agencies=agencies, at=VERIFY_AT
        )
    assert err.value.reason is ReasonCode.UNTRUSTED_CHAIN
