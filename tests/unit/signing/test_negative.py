"""Every ReasonCode is reachable, and each tampering is reported with the right one."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509

from schemas.envelope import Envelope, Signature, SignerRole
from signing import (
    ReasonCode,
    TrustStore,
    VerificationError,
    generate_key,
    sign_envelope,
    verify_envelope,
)
from signing.algorithms import sign_raw
from signing.pki import (
    RevokedEntry,
    build_crl,
    chain_der,
    create_root_ca,
    issue_certificate,
)
from signing.profile import CertRole
from signing.tbs import envelope_tbs
from tests.unit.signing.conftest import (
    BA_DINH,
    GOV_OFFICE,
    ISSUED_AT,
    SIGN_AT,
    VERIFY_AT,
    Credential,
    FakeAgencies,
    TestPki,
    make_envelope,
)


def _signed(cred: Credential, env: Envelope | None = None, **kw: object) -> Envelope:
    role = kw.pop("role", SignerRole.AGENCY)
    at = kw.pop("at", SIGN_AT)
    return sign_envelope(
        env or make_envelope(**kw),
        key=cred.key,
        chain=cred.chain,
        role=role,  # type: ignore[arg-type]
        at=at,  # type: ignore[arg-type]
        rsa_pss=cred.rsa_pss,
    )


def _reason(
    env: Envelope, trust: TrustStore, agencies: FakeAgencies, at: object = VERIFY_AT
) -> ReasonCode:
    with pytest.raises(VerificationError) as err:
        verify_envelope(env, trust=trust, agencies=agencies, at=at)  # type: ignore[arg-type]
    return err.value.reason


def _with_sig(env: Envelope, **changes: object) -> Envelope:
    return replace(env, signatures=(replace(env.signatures[0], **changes),))


def _flip(data: bytes, index: int = 0) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


@pytest.fixture(scope="module", params=["rsa", "rsa-pss", "ecdsa-p256", "ed25519"])
def signed(request: pytest.FixtureRequest, pki: TestPki) -> Envelope:
    return _signed(pki.issue(CertRole.AGENCY, request.param))


# --- BAD_SIGNATURE -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [
        ("payload", b"Quyet dinh 4612 (tampered)"),
        ("sender", "000.00.00.H27"),
        ("recipients", ("000.00.01.H26",)),
        ("recipients", ("000.00.02.H26", "000.00.01.H26")),
        ("document_id", "000.00.00.H26,2019/08/28,4613/QĐ-UBND"),
        ("message_id", "another"),
        ("payload_schema", "vn.lienthong.v1.OfficialDocument@ffffffffffffffff"),
    ],
)
def test_tampered_field(
    signed: Envelope, field: str, value: object, trust: TrustStore, agencies: FakeAgencies
) -> None:
    assert _reason(replace(signed, **{field: value}), trust, agencies) is ReasonCode.BAD_SIGNATURE


def test_flipped_payload_bit(signed: Envelope, trust: TrustStore, agencies: FakeAgencies) -> None:
    tampered = replace(signed, payload=_flip(signed.payload, 7))
    assert _reason(tampered, trust, agencies) is ReasonCode.BAD_SIGNATURE


def test_created_at_changed(signed: Envelope, trust: TrustStore, agencies: FakeAgencies) -> None:
    tampered = replace(signed, created_at=signed.created_at + timedelta(milliseconds=1))
    assert _reason(tampered, trust, agencies) is ReasonCode.BAD_SIGNATURE


def test_flipped_signature_bit(signed: Envelope, trust: TrustStore, agencies: FakeAgencies) -> None:
    value = signed.signatures[0].value
    for index in (0, len(value) // 2, len(value) - 1):
        tampered = _with_sig(signed, value=_flip(value, index))
        assert _reason(tampered, trust, agencies) is ReasonCode.BAD_SIGNATURE


def test_truncated_signature(signed: Envelope, trust: TrustStore, agencies: FakeAgencies) -> None:
    tampered = _with_sig(signed, value=signed.signatures[0].value[:-1])
    assert _reason(tampered, trust, agencies) is ReasonCode.BAD_SIGNATURE


def test_signing_time_edited(signed: Envelope, trust: TrustStore, agencies: FakeAgencies) -> None:
    tampered = _with_sig(signed, signing_time="2026-03-10T09:00:01+07:00")
    assert _reason(tampered, trust, agencies) is ReasonCode.BAD_SIGNATURE


def test_role_relabelled(signed: Envelope, trust: TrustStore, agencies: FakeAgencies) -> None:
    """The role is signed: an AGENCY signature relabelled PLATFORM no longer verifies."""
    relabelled = _with_sig(signed, role=SignerRole.PLATFORM)
    assert _reason(relabelled, trust, agencies) is ReasonCode.BAD_SIGNATURE


def test_two_agency_signatures(pki: TestPki, trust: TrustStore, agencies: FakeAgencies) -> None:
    env = _signed(pki.issue(CertRole.AGENCY))
    env = _signed(pki.issue(CertRole.AGENCY, "ed25519"), env)
    assert _reason(env, trust, agencies) is ReasonCode.MALFORMED


def test_swapped_chain(pki: TestPki, trust: TrustStore, agencies: FakeAgencies) -> None:
    """Another valid certificate of the same agency: its key did not make this signature."""
    env = _signed(pki.issue(CertRole.AGENCY, "ecdsa-p256"))
    other = generate_key("ecdsa-p256")
    other_chain = pki.issue(CertRole.AGENCY, key=other).chain
    assert (
        _reason(_with_sig(env, certificate_chain=other_chain), trust, agencies)
        is ReasonCode.BAD_SIGNATURE
    )


def test_algorithm_label_swapped(pki: TestPki, trust: TrustStore, agencies: FakeAgencies) -> None:
    env = _signed(pki.issue(CertRole.AGENCY, "rsa"))
    tampered = _with_sig(env, algorithm="rsa-pss-sha256")
    assert _reason(tampered, trust, agencies) is ReasonCode.BAD_SIGNATURE


# --- UNSUPPORTED_ALGORITHM -----------------------------------------------------------------


def test_unknown_algorithm(signed: Envelope, trust: TrustStore, agencies: FakeAgencies) -> None:
    tampered = _with_sig(signed, algorithm="rsa-pkcs1v15-sha1")
    assert _reason(tampered, trust, agencies) is ReasonCode.UNSUPPORTED_ALGORITHM


def test_algorithm_not_matching_key(
    pki: TestPki, trust: TrustStore, agencies: FakeAgencies
) -> None:
    env = _signed(pki.issue(CertRole.AGENCY, "ed25519"))
    assert _reason(_with_sig(env, algorithm="ecdsa-p256-sha256"), trust, agencies) is (
        ReasonCode.UNSUPPORTED_ALGORITHM
    )


def test_p384_certificate_is_refused(
    pki: TestPki, trust: TrustStore, agencies: FakeAgencies
) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    p384 = ec.generate_private_key(ec.SECP384R1())
    cert = x509.CertificateBuilder().subject_name(
        x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "p384")])
    )
    cert = (
        cert.issuer_name(pki.ca.subject)
        .public_key(p384.public_key())
        .serial_number(7)
        .not_valid_before(ISSUED_AT)
        .not_valid_after(ISSUED_AT + timedelta(days=30))
        .sign(pki.ca_key, None)
    )
    env = _signed(pki.issue())
    chain = chain_der([cert, pki.ca])
    assert _reason(_with_sig(env, certificate_chain=chain), trust, agencies) is (
        ReasonCode.UNSUPPORTED_ALGORITHM
    )


# --- UNTRUSTED_CHAIN -----------------------------------------------------------------------


def test_self_made_ca_is_untrusted(trust: TrustStore, agencies: FakeAgencies) -> None:
    rogue_key = generate_key("ecdsa-p256")
    rogue_ca = create_root_ca(rogue_key, now=ISSUED_AT, name="lienthong Issuing CA (dev)")
    leaf_key = generate_key("ed25519")
    leaf = issue_certificate(
        leaf_key,
        role=CertRole.AGENCY,
        agency_code="000.00.00.H26",
        agency_name="Giả mạo",
        issuer_key=rogue_key,
        issuer_cert=rogue_ca,
        now=ISSUED_AT,
    )
    env = _signed(Credential(leaf_key, chain_der([leaf, rogue_ca])))
    assert _reason(env, trust, agencies) is ReasonCode.UNTRUSTED_CHAIN


def test_missing_intermediate(pki: TestPki, trust: TrustStore, agencies: FakeAgencies) -> None:
    cred = pki.issue()
    env = _signed(Credential(cred.key, cred.chain[:1]))
    assert _reason(env, trust, agencies) is ReasonCode.UNTRUSTED_CHAIN


def test_leaf_used_as_issuer(pki: TestPki, trust: TrustStore, agencies: FakeAgencies) -> None:
    """A signing certificate (not a CA) cannot issue another certificate."""
    issuer = pki.issue(CertRole.AGENCY, "ed25519")
    issuer_cert = x509.load_der_x509_certificate(issuer.chain[0])
    leaf_key = generate_key("ecdsa-p256")
    leaf = issue_certificate(
        leaf_key,
        role=CertRole.AGENCY,
        agency_code="000.00.00.H26",
        agency_name="Sub",
        issuer_key=issuer.key,
        issuer_cert=issuer_cert,
        now=ISSUED_AT,
    )
    env = _signed(Credential(leaf_key, (chain_der([leaf])[0], *issuer.chain)))
    assert _reason(env, trust, agencies) is ReasonCode.UNTRUSTED_CHAIN


# --- validity ------------------------------------------------------------------------------


def test_expired_at_signing_time(pki: TestPki, trust: TrustStore, agencies: FakeAgencies) -> None:
    cred = pki.issue(now=ISSUED_AT, days=30)
    env = _signed(cred)  # signed 2026-03-10, certificate ended 2026-01-31
    assert _reason(env, trust, agencies) is ReasonCode.CERT_EXPIRED


def test_expired_after_signing_is_still_valid(
    pki: TestPki, trust: TrustStore, agencies: FakeAgencies
) -> None:
    cred = pki.issue(now=ISSUED_AT, days=69)  # ends 2026-03-11 08:00
    env = _signed(cred)
    later = VERIFY_AT + timedelta(days=400)
    assert verify_envelope(env, trust=trust, agencies=agencies, at=later).agency_code == env.sender


def test_not_yet_valid(pki: TestPki, trust: TrustStore, agencies: FakeAgencies) -> None:
    cred = pki.issue(now=SIGN_AT + timedelta(hours=1))
    assert _reason(_signed(cred), trust, agencies) is ReasonCode.CERT_NOT_YET_VALID


def test_signing_time_in_the_future(
    signed: Envelope, trust: TrustStore, agencies: FakeAgencies
) -> None:
    earlier = SIGN_AT - timedelta(minutes=10)
    assert _reason(signed, trust, agencies, at=earlier) is ReasonCode.SIGNING_TIME_INVALID


def test_signing_time_before_creation(
    pki: TestPki, trust: TrustStore, agencies: FakeAgencies
) -> None:
    env = _signed(pki.issue(), at=SIGN_AT - timedelta(days=1))
    assert _reason(env, trust, agencies) is ReasonCode.SIGNING_TIME_INVALID


# --- WRONG_KEY_USAGE -----------------------------------------------------------------------


def test_person_certificate_signing_as_agency(
    pki: TestPki, trust: TrustStore, agencies: FakeAgencies
) -> None:
    """A PERSON certificate of the right agency, used for an AGENCY signature."""
    key = pki.key("ecdsa-p256")
    person_chain = pki.issue(CertRole.PERSON).chain
    tbs = envelope_tbs(
        make_envelope(),
        role="AGENCY",
        algorithm="ecdsa-p256-sha256",
        signing_time="2026-03-10T09:00:00+07:00",
        signer_certificate=person_chain[0],
        preceding=(),
    )
    sig = Signature(
        SignerRole.AGENCY,
        "ecdsa-p256-sha256",
        person_chain,
        "2026-03-10T09:00:00+07:00",
        sign_raw(key, "ecdsa-p256-sha256", tbs),
    )
    forged = replace(make_envelope(), signatures=(sig,))
    assert _reason(forged, trust, agencies) is ReasonCode.WRONG_KEY_USAGE


def test_certificate_without_non_repudiation(
    pki: TestPki, trust: TrustStore, agencies: FakeAgencies
) -> None:
    key = generate_key("ed25519")
    ku = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "no-nr")]))
        .issuer_name(pki.ca.subject)
        .public_key(key.public_key())
        .serial_number(99)
        .not_valid_before(ISSUED_AT)
        .not_valid_after(ISSUED_AT + timedelta(days=365))
        .add_extension(ku, True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [x509.ObjectIdentifier("2.25.65372934705633870701495983479875647014.1.2")]
            ),
            False,
        )
        .sign(pki.ca_key, None)
    )
    env = _signed(Credential(key, chain_der([cert, pki.ca])))
    assert _reason(env, trust, agencies) is ReasonCode.WRONG_KEY_USAGE


# --- REVOKED -------------------------------------------------------------------------------


def _serial(cred: Credential) -> int:
    return x509.load_der_x509_certificate(cred.chain[0]).serial_number


def test_revoked_before_signing(pki: TestPki, agencies: FakeAgencies) -> None:
    cred = pki.issue()
    trust = pki.trust([RevokedEntry(_serial(cred), SIGN_AT - timedelta(days=1))])
    assert _reason(_signed(cred), trust, agencies) is ReasonCode.REVOKED


def test_revoked_after_signing_keeps_old_signatures(pki: TestPki, agencies: FakeAgencies) -> None:
    cred = pki.issue()
    trust = pki.trust(
        [RevokedEntry(_serial(cred), SIGN_AT + timedelta(days=1), x509.ReasonFlags.superseded)]
    )
    assert verify_envelope(_signed(cred), trust=trust, agencies=agencies, at=VERIFY_AT).agency_code


def test_key_compromise_voids_earlier_signatures(pki: TestPki, agencies: FakeAgencies) -> None:
    cred = pki.issue()
    entry = RevokedEntry(
        _serial(cred), SIGN_AT + timedelta(days=1), x509.ReasonFlags.key_compromise
    )
    assert _reason(_signed(cred), pki.trust([entry]), agencies) is ReasonCode.REVOKED


def test_revoked_intermediate(pki: TestPki, agencies: FakeAgencies) -> None:
    crl = build_crl(
        issuer_key=pki.root_key,
        issuer_cert=pki.root,
        revoked=[RevokedEntry(pki.ca.serial_number, ISSUED_AT)],
        now=ISSUED_AT,
    )
    trust = TrustStore((pki.root,), (crl,))
    assert _reason(_signed(pki.issue()), trust, agencies) is ReasonCode.REVOKED


def test_revocation_unknown_when_the_issuer_crl_is_stale(
    pki: TestPki, agencies: FakeAgencies
) -> None:
    """A store built after the CRL's nextUpdate + grace (signing.crl) refuses the issuer's
    certificates: whether they are revoked cannot be known."""
    crl = build_crl(issuer_key=pki.ca_key, issuer_cert=pki.ca, revoked=[], now=ISSUED_AT)
    trust = TrustStore((pki.root,), (crl,), revocation_unknown=frozenset({pki.ca.subject}))
    assert _reason(_signed(pki.issue()), trust, agencies) is ReasonCode.REVOCATION_UNKNOWN


# --- sender and agency ---------------------------------------------------------------------


def test_sender_mismatch(pki: TestPki, trust: TrustStore, agencies: FakeAgencies) -> None:
    env = _signed(pki.issue(CertRole.AGENCY, code=GOV_OFFICE))  # sender stays H26
    assert _reason(env, trust, agencies) is ReasonCode.SENDER_MISMATCH


def test_person_of_another_agency(pki: TestPki, trust: TrustStore, agencies: FakeAgencies) -> None:
    env = _signed(pki.issue(CertRole.PERSON, code=GOV_OFFICE), role=SignerRole.PERSON)
    env = _signed(pki.issue(CertRole.AGENCY), env)
    assert _reason(env, trust, agencies) is ReasonCode.SENDER_MISMATCH


def test_unknown_agency(pki: TestPki, trust: TrustStore, agencies: FakeAgencies) -> None:
    env = _signed(pki.issue(CertRole.AGENCY, code="000.00.00.H99"), sender="000.00.00.H99")
    assert _reason(env, trust, agencies) is ReasonCode.UNKNOWN_AGENCY


def test_closed_agency(pki: TestPki, trust: TrustStore, agencies: FakeAgencies) -> None:
    env = _signed(pki.issue(CertRole.AGENCY, code=BA_DINH), sender=BA_DINH)
    assert _reason(env, trust, agencies) is ReasonCode.CLOSED_AGENCY


def test_unsigned(trust: TrustStore, agencies: FakeAgencies) -> None:
    assert _reason(make_envelope(), trust, agencies) is ReasonCode.MISSING_SIGNATURE


def test_person_signature_alone(pki: TestPki, trust: TrustStore, agencies: FakeAgencies) -> None:
    env = _signed(pki.issue(CertRole.PERSON), role=SignerRole.PERSON)
    assert _reason(env, trust, agencies) is ReasonCode.MISSING_SIGNATURE


# --- MALFORMED -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"certificate_chain": ()},
        {"certificate_chain": (b"\x30\x03\x02\x01\x01",)},
        {"certificate_chain": (b"not DER at all",)},
        {"signing_time": "10/03/2026 09:00"},
        {"signing_time": "2026-03-10T09:00:00"},  # no offset
        {"signing_time": ""},
        {"value": b""},
        {"role": "CLERK"},
    ],
)
def test_malformed(
    signed: Envelope, changes: dict[str, object], trust: TrustStore, agencies: FakeAgencies
) -> None:
    assert _reason(_with_sig(signed, **changes), trust, agencies) is ReasonCode.MALFORMED


def test_truncated_certificate(signed: Envelope, trust: TrustStore, agencies: FakeAgencies) -> None:
    chain = signed.signatures[0].certificate_chain
    tampered = _with_sig(signed, certificate_chain=(chain[0][:-10], *chain[1:]))
    assert _reason(tampered, trust, agencies) is ReasonCode.MALFORMED


def test_every_reason_code_has_a_test() -> None:
    """Guard: adding a ReasonCode without a negative test in this file fails here."""
    source = Path(__file__).read_text(encoding="utf-8")
    assert [r.name for r in ReasonCode if f"is ReasonCode.{r.name}" not in source] == []


def test_unknown_certificate_version(
    signed: Envelope, trust: TrustStore, agencies: FakeAgencies
) -> None:
    """cryptography raises InvalidVersion (not a ValueError) for this; still MALFORMED."""
    chain = signed.signatures[0].certificate_chain
    leaf = chain[0].replace(b"\xa0\x03\x02\x01\x02", b"\xa0\x03\x02\x01\x07", 1)
    tampered = _with_sig(signed, certificate_chain=(leaf, *chain[1:]))
    assert _reason(tampered, trust, agencies) is ReasonCode.MALFORMED
